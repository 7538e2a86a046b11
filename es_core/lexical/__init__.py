"""Lexical relevance: BM25 over PostgreSQL full-text analysis, statistics kept in PostgreSQL."""
