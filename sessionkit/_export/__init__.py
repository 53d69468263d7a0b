"""The export side: the exporter factory, the bounded pipeline, the local store."""
