"""The Triton inference process: serves every deployed model version of the catalogue."""
