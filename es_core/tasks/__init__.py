"""Long work as rows in ``tasks``: the row is the truth, the broker only carries the wake-up."""
