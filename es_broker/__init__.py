"""The message broker's side of tasks: the Celery client every process sends wake-ups with."""
