"""API keys: who calls, with which role, for which app."""
