"""The async gRPC server: one servicer module per service, translating proto <-> es_core."""
