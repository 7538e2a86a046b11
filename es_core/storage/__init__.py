"""PostgreSQL + pgvector: the one system of record."""
