"""What server and workers share to be watched: the request a line of work belongs to, JSON
logs, and the trace context carried from a request into the tasks it creates."""
