"""OpenLineage: the transport that keeps events as JSON lines, the extractors of our own tasks,
and the settings that turn it on (docs/operations.md, "Lineage")."""
