"""Reading a collection: nearest items by vector, items by payload, counts."""
