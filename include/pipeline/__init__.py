"""The stack's shared code, one folder per stage: ingest, transform (and the services and CLI)."""
