"""Query suggestions: a phrase dictionary, completed word by word as the user types."""
