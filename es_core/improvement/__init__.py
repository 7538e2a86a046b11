"""Learning from feedback: per-user adjustment of item vectors from clicks."""
