"""Turning text into vectors: in-process sentence-transformers, or Triton when configured."""
