"""The embedded engine's sync of a connection into the lake (`type: s3`), from Airflow's side.

Resolves the declaration (the connector's executable and config, the catalog, the secrets to
redact) and hands the run to the runtime's lake destination (include/airbyte_runtime/lake.py),
whose connector process code is the warehouse's.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from include.airbyte_runtime import lake
from include.airbyte_runtime.lake import (
    LakeSync,
    S3DestinationError,
    client_for,
    discover,
    load_state,
    object_key,
    run_connector,
)
from include.airbyte_runtime.parquet import StreamLayout
from include.pipeline.ingest.declaration import FILE_COLUMNS, FILE_CURSOR, load_catalog
from include.pipeline.ingest.embedded import EmbeddedSyncError, child_env, connector_executable, secret_redactor


def configured_catalog(connection, discovered: dict[str, dict]) -> dict:
    """The configured catalog of the connection's streams (append into the lake)."""
    streams = []
    for s in connection.streams:
        if s.name not in discovered:
            raise S3DestinationError(
                f"connection '{connection.name}': the source does not offer stream {s.name!r} (it offers {sorted(discovered)})"
            )
        stream = discovered[s.name]
        incremental = s.sync_mode.startswith("incremental")
        entry = {
            "stream": stream,
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "overwrite" if s.sync_mode == "full_refresh_overwrite" else "append",
        }
        if incremental:
            entry["cursor_field"] = [s.cursor_field] if s.cursor_field else stream.get("default_cursor_field") or []
        if s.primary_key:
            entry["primary_key"] = [[k] for k in s.primary_key]
        streams.append(entry)
    return {"streams": streams}


def sync_to_lake(
    connection,
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
    environ: dict[str, str] | None = None,
    rows_per_group: int | None = None,
    rows_per_object: int | None = None,
    config_overrides: dict | None = None,
) -> dict:
    """Run the connection's source and land its records in the lake; return the figures per stream.
    `config_overrides`: source settings over the declared ones (a test's bucket)."""
    destination = connection.destination
    if destination.type != "s3" or destination.s3 is None:
        raise S3DestinationError(f"connection '{connection.name}' does not go to an s3 destination")
    s3 = destination.s3.resolved(environ)
    executable = connector_executable(connection.source.connector)
    if not executable.exists():
        raise EmbeddedSyncError(
            f"the connector {connection.source.connector} is not installed ({executable}): run `make setup`"
        )
    config = {**connection.source.resolved_config(environ), **(config_overrides or {})}
    redact = secret_redactor(connection.source.connector, config, [s3.secret_access_key, s3.access_key_id])

    def say(line: str) -> None:
        log(redact(line))

    client = client_for(s3)
    if not client.bucket_exists(s3.bucket):
        client.make_bucket(s3.bucket)
    started = time.monotonic()
    tail: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"lake-sync-{connection.name}-") as private:  # mode 0700
        config_path = Path(private) / "config.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        env = child_env()
        discovered = declared_catalog(connection.source) or discover(executable, config_path, env, say, tail)
        catalog = configured_catalog(connection, discovered)
        catalog_path = Path(private) / "catalog.json"
        catalog_path.write_text(json.dumps(catalog))
        args = ["read", "--config", str(config_path), "--catalog", str(catalog_path)]
        state = None if full_refresh else load_state(client, s3, connection.name)
        if state:
            state_path = Path(private) / "state.json"
            state_path.write_text(json.dumps(state))
            args += ["--state", str(state_path)]
        say(
            f"embedded engine: '{connection.name}' with {connection.source.connector} into s3://{s3.bucket}/{s3.path_prefix}/"
            f" ({len(catalog['streams'])} streams, {'from its saved state' if state else 'from the start'})"
        )
        layouts = {
            s["stream"]["name"]: StreamLayout.of(s["stream"].get("json_schema") or {}) for s in catalog["streams"]
        }
        overwrite = {s.name for s in connection.streams if s.sync_mode == "full_refresh_overwrite"}
        sink = LakeSync(s3, connection.name, client, layouts, overwrite, rows_per_group=rows_per_group or lake.ROWS_PER_GROUP,
                        rows_per_object=rows_per_object or lake.ROWS_PER_OBJECT, log=say,
                        schema_policy=connection.non_breaking_schema_updates_behavior)  # fmt: skip
        messages = run_connector(executable, args, env, say, tail)
        try:
            sink.consume(messages)
            figures = sink.commit()
        finally:
            messages.close()  # a failed upload stops the connector too: nothing left running
            sink.close()
    seconds = round(time.monotonic() - started, 3)
    total = sum(f["records"] for f in figures.values())
    say(f"embedded engine: '{connection.name}' done in {seconds} s, {total} records into the lake")
    streams = {
        s.name: {  # `table`: where metrics.syncs' destination_table points for this stream
            "records": 0,
            "bytes": 0,
            **figures.get(s.name, {}),
            "table": f"s3://{s3.bucket}/{object_key(s3, s.name, None, sink.started, 0).rsplit('/', 1)[0]}/",
        }  # fmt: skip
        for s in connection.streams
    }
    return {"connection": connection.name, "streams": streams, "seconds": seconds, "engine": "embedded",
            "destination": f"s3://{s3.bucket}/{s3.path_prefix}/", "bytes": sink.uploaded_bytes,
            "schema_changes": sink.schema_changes, "bad_files": []}  # fmt: skip


def declared_catalog(source) -> dict[str, dict] | None:
    """The streams of a file-based source from its declaration (each `input_schema` plus the
    columns source-s3 adds), or of the connector's committed catalog snapshot: what `discover`
    would answer, without starting the connector once more (a start costs seconds). None: unknown."""
    streams = source.config.get("streams")
    if not isinstance(streams, list):
        return load_catalog(source.connector) or None
    catalog = {}
    for item in streams:
        schema = item.get("input_schema")
        if isinstance(schema, str):
            schema = json.loads(schema)
        if not isinstance(schema, dict) or not schema:
            return None  # inferred by the connector: ask it
        properties = {column: {"type": ["null", str(kind).strip().lower()]} for column, kind in schema.items()}
        catalog[item["name"]] = {
            "name": item["name"],
            "json_schema": {"type": "object", "properties": {**properties, **FILE_COLUMNS}},
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": True,
            "default_cursor_field": [FILE_CURSOR],
        }
    return catalog
