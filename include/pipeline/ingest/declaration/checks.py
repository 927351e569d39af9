"""What a block alone cannot know, checked with its line after the block is validated: a literal
secret where the connector's spec marks a field secret, a stream the connector does not offer
(from its committed catalog, or a file-based source's own `streams:` config), a cursor or key
that is not a column, a simulator writing files of another type than its streams read.
"""

from __future__ import annotations

import json
from typing import Any

from include.pipeline.ingest.declaration.models import (
    FILE_COLUMNS,
    FILE_CURSOR,
    FILE_FORMATS,
    FILE_TYPES,
    SIMULATOR_FORMATS,
    FileStream,
    Stream,
)
from include.pipeline.ingest.declaration.problems import Problems
from include.pipeline.ingest.declaration.s3 import SYNC_MODES as S3_SYNC_MODES
from include.pipeline.ingest.declaration.values import COLUMN, NAME, is_env_ref
from include.pipeline.ingest.declaration.yaml_lines import LineMap
from include.pipeline.ingest.secret_fields import secret_values


def check_secrets(check: Problems, connector: str, config: LineMap, where: str, line: int) -> None:
    """A secret field (include/airbyte/secret_fields.json, from the connector's spec) holds only
    a `${ENV_VAR}` reference: a literal secret in the file would end up in git."""
    for path, value, holder in secret_values(connector, config):
        if value is None or value == "" or is_env_ref(value):
            continue
        key = path[-1]
        check.fail(
            getattr(holder, "key_lines", {}).get(key, line),
            f"{where} {'.'.join(path)} is a secret written in the file (the {connector} spec marks it secret)",
            f'write `{key}: "${{ENV_VAR}}"` and export ENV_VAR (or put it in .env)',
        )


def check_streams(check: Problems, c: LineMap, where: str, catalog: dict[str, dict]) -> tuple[Stream, ...] | None:
    """The connection's streams, each validated as a Stream, then against the connector's catalog."""
    items = c["streams"]
    streams: list[Stream] = []
    names: set[str] = set()
    for s in items:
        if check.mapping(s, items.line, f"a stream of {where}") is None:
            continue
        sname = s.get("name", "?")
        swhere = f"stream '{sname}' of {where}" if isinstance(sname, str) else f"a stream of {where}"
        known = catalog.get(sname) if isinstance(sname, str) else None
        stream = check.block(Stream.model_validate, Stream.keys(), s, swhere, parent=where, known=known)
        if stream is None:
            continue
        if stream.name in names:
            check.fail(s.key_lines["name"], f"duplicate {swhere}", "declare each stream once per connection")
        names.add(stream.name)
        if catalog and known is None:
            check.fail(
                s.key_lines["name"],
                f"unknown {swhere}: the connector offers no such stream",
                f"use one of: {', '.join(sorted(catalog))}",
            )
        columns = set((known or {}).get("json_schema", {}).get("properties", {}))
        if stream.cursor_field and columns and stream.cursor_field not in columns:
            check.fail(
                s.key_lines["cursor_field"],
                f"cursor_field {stream.cursor_field!r} is not a column of {swhere}",
                f"use one of: {', '.join(sorted(columns))}",
            )
        for column in stream.primary_key:
            if columns and column not in columns:
                check.fail(
                    s.key_lines["primary_key"],
                    f"primary_key column {column!r} is not a column of {swhere}",
                    f"use one of: {', '.join(sorted(columns))}",
                )
        streams.append(stream)
    return tuple(streams)


def file_catalog(check: Problems, config: LineMap, where: str) -> dict[str, dict]:
    """The catalog of a file-based source from its `streams:` config, checked line by line."""
    catalog: dict[str, dict] = {}
    items = config["streams"]
    for item in items:
        if check.mapping(item, getattr(items, "line", config.line), f"a stream of {where} config") is None:
            continue
        name = item.get("name")
        swhere = f"config stream {name!r} of {where}"
        stream = check.block(FileStream.model_validate, FileStream.keys(), item, swhere)
        if stream is None and not (check.keys_ok(FileStream, item) and isinstance(name, str) and NAME.match(name)):
            continue  # no usable name or keys: nothing for a connection's stream to be checked against
        if name in catalog:
            check.fail(item.key_lines["name"], f"duplicate {swhere}", "declare each stream once in the config")
        properties: dict[str, Any] = {}
        schema = item.get("input_schema")
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError:
                schema = None
        if not isinstance(schema, dict) or not schema:
            check.fail(
                item.key_lines.get("input_schema", item.line),
                f"{swhere} has no explicit input_schema",
                "add `input_schema:` with one `column: type` line per column, so no type is inferred",
            )
        else:
            for column, kind in schema.items():
                lines = getattr(schema, "key_lines", {})
                if not isinstance(column, str) or not COLUMN.match(column):
                    check.fail(
                        lines.get(column, item.key_lines["input_schema"]),
                        f"{swhere}: input_schema column {column!r} is not allowed",
                        "use letters, digits and _ (at most 63): it becomes a column of the raw table",
                    )
                elif not isinstance(kind, str) or kind.strip().lower() not in FILE_TYPES:
                    check.fail(
                        lines.get(column, item.key_lines["input_schema"]),
                        f"{swhere}: input_schema type {kind!r} of column {column!r} is not a source-s3 type",
                        f"use one of: {', '.join(FILE_TYPES)} (source-s3 takes a flat column: type mapping)",
                    )
                else:
                    properties[column] = {"type": kind.strip().lower()}
        catalog[name] = {
            "name": name,
            "json_schema": {"properties": {**properties, **FILE_COLUMNS}},
            "default_cursor_field": [FILE_CURSOR],
        }
    return catalog


def check_simulator_filetype(check: Problems, simulator: LineMap, streams: list, where: str) -> None:
    """The simulator must write files of the type each stream reads (jsonl.gz is read as jsonl).
    Without a `format:` it writes the streams' own filetype (daily.shop_settings)."""
    written = simulator.get("format")
    if written not in SIMULATOR_FORMATS:
        return  # none (the streams' filetype is written), or reported with its line by the simulator's check
    filetype = written.split(".")[0]
    for stream in streams:
        fmt = stream.get("format") if isinstance(stream, LineMap) else None
        if isinstance(fmt, dict) and fmt.get("filetype") in FILE_FORMATS and fmt["filetype"] != filetype:
            check.fail(
                stream.key_lines["format"],
                f"{where} stream {stream.get('name')!r} reads filetype {fmt['filetype']!r} but the simulator"
                f" writes {written!r} files",
                f"write `format: {{filetype: {filetype}}}` or set the simulator's `format:` to match",
            )


def check_connection_streams_for_s3(check: Problems, line: int, where: str, streams: tuple[Stream, ...]) -> None:
    """A connection into an s3 destination uses only the sync modes Airbyte's S3 destination has."""
    for stream in streams:
        if stream.sync_mode not in S3_SYNC_MODES:
            check.fail(
                line, f"stream '{stream.name}' of {where} is {stream.sync_mode}, which an s3 destination cannot do",
                f"use one of: {', '.join(S3_SYNC_MODES)} (the lake keeps history; deduplicate when reading)",
            )  # fmt: skip
