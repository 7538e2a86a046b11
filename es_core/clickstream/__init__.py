"""Search sessions and user events: what was shown, and what people did with it."""
