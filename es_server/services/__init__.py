"""One servicer module per service of embedding_studio.v1."""
