"""Ingest: Airbyte connections declared in include/airbyte/connections.yaml, run by an engine."""
