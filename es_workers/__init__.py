"""Celery workers: one task module per kind of long work."""
