"""include/airbyte/connections.yaml: the one declaration of what is ingested, for both engines.

- values.py: the closed sets, name patterns, errors and the one `${ENV_VAR}` resolver
- models.py: the pydantic models of the blocks (source, destination, connection, stream, ...)
- yaml_lines.py: YAML with the line of every node, within size limits
- problems.py: pydantic's validation errors as 'file:line: what. Fix: how'
- checks.py: what a block alone cannot know (secrets, catalogs, columns)
- s3.py: the lake's `type: s3` destination (its checks, its Airbyte server configuration)
- loader.py: `load_connections`, which puts them together

This package reads and checks; it never runs a sync (the engines import it, not the reverse).
"""

from include.pipeline.ingest.declaration.loader import CATALOG_DIR, load_catalog, load_connections
from include.pipeline.ingest.declaration.models import (
    DESTINATION_TYPES,
    FILE_COLUMNS,
    FILE_CURSOR,
    SIMULATOR_FORMATS,
    SIMULATOR_KEYS,
    Connection,
    Destination,
    IngestionConfig,
    PostgresDestination,
    S3Destination,
    Simulator,
    Source,
    Stream,
    destination_type_names,
)
from include.pipeline.ingest.declaration.values import (
    ENGINES,
    SCHEMA_CHANGE_POLICIES,
    SYNC_MODES,
    ConnectionsConfigError,
    MissingEnvironmentVariable,
    is_env_ref,
    resolve_env,
    valid_connector,
)

__all__ = [
    "CATALOG_DIR",
    "DESTINATION_TYPES",
    "ENGINES",
    "FILE_COLUMNS",
    "FILE_CURSOR",
    "SCHEMA_CHANGE_POLICIES",
    "SIMULATOR_FORMATS",
    "SIMULATOR_KEYS",
    "SYNC_MODES",
    "Connection",
    "ConnectionsConfigError",
    "Destination",
    "IngestionConfig",
    "MissingEnvironmentVariable",
    "PostgresDestination",
    "S3Destination",
    "Simulator",
    "Source",
    "Stream",
    "destination_type_names",
    "is_env_ref",
    "load_catalog",
    "load_connections",
    "resolve_env",
    "valid_connector",
]
