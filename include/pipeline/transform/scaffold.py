"""`make scaffold-source SOURCE=<name>`: the dbt staging layer of a source, from connections.yaml.

dbt-codegen writes the same boilerplate from tables that already exist in a warehouse; here the
declaration is the truth (the columns each stream declares, the connection's primary keys), so
the models can be written before the first sync. Under include/dbt/models/staging/<source>/:

- `_<source>__sources.yml`: the dbt source (same name as in connections.yaml) over the raw schema
  of the connection's Postgres destination, freshness on `_airbyte_extracted_at`;
- `stg_<source>__<stream>.sql`, one per stream: the latest clean extraction of each key (macro
  `latest_clean_records`), each column cast to the type its declaration gives (a date or time
  string parsed with the macro `parse_as`, declared `parse_as` in the sources yml), incremental,
  merged on the key; a stream without a primary key is keyed on Airbyte's `_airbyte_raw_id`;
- `stg_<source>__quarantined_records.sql`: the records staging leaves out (a value the loader
  could not fit to its declared type, flagged in `_airbyte_meta`; a date or time that does not
  parse; a missing key), with the reason;
- `_<source>__models.yml`: `not_null` on every key (its uniqueness is the model's unique index), the
  quarantine's accepted values.

It never overwrites a file: an existing one is reported as skipped, so it can be run again after a
stream is added (delete a file to have it written again).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.pipeline import settings
from include.pipeline.ingest.declaration import FILE_COLUMNS, IngestionConfig, load_catalog

# JSON-schema types (connections.yaml's input_schema, a connector's catalog) -> the raw column's
# type as both engines load it -> the staging cast.
CASTS = {
    "integer": "bigint",
    "number": "numeric",
    "float": "numeric",
    "boolean": "boolean",
    "object": "jsonb",
    "array": "jsonb",
    "string": "varchar",
    "null": "varchar",
    "date-time": "timestamptz",  # a connector's catalog only: a file source's input_schema has no formats
    "date": "date",
}
# Types staging parses from a string with the dbt macro parse_as (null and quarantined when a value
# does not parse, instead of failing the build); the others are typed and checked by the loader.
PARSED = {"date-time": "timestamptz", "date": "date"}
RAW_KEY = "_airbyte_raw_id"  # the key of a stream declared without a primary key
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
# Postgres words that cannot stand bare as a column name in a select list.
_RESERVED = frozenset(
    "all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create"
    " current_catalog current_date current_role current_time current_timestamp current_user default deferrable"
    " desc distinct do else end except false fetch for foreign from grant group having in initially intersect"
    " into lateral leading limit localtime localtimestamp not null offset on only or order placing primary"
    " references returning select session_user some symmetric table then to trailing true union unique user"
    " using variadic when where window with".split()
)


class ScaffoldError(ValueError):
    """The source cannot be scaffolded: the message says why and what to do."""


@dataclass(frozen=True)
class StagedStream:
    """One stream of a source as its staging model sees it."""

    source: str
    name: str
    schema: str  # the raw schema its Postgres destination writes
    primary_key: tuple[str, ...]  # () when the connection declares none
    columns: dict[str, str]  # raw column -> JSON type, as declared

    @property
    def model(self) -> str:
        return f"stg_{self.source}__{self.name}"

    @property
    def key(self) -> tuple[str, ...]:
        """The raw table's key columns (loaders lowercase column names)."""
        return tuple(k.lower() for k in self.primary_key) or (RAW_KEY,)

    @property
    def model_key(self) -> tuple[str, ...]:
        """The staging model's key columns: plain names (dbt's merge and indexes write them bare)."""
        return tuple("raw_record_id" if k == RAW_KEY else plain(k) for k in self.key)


def warehouse_streams(config: IngestionConfig) -> list[StagedStream]:
    """Every (source, stream) that a connection lands in a Postgres destination, with its
    declared columns and primary key: what the dbt staging layer must cover. Test suites derive
    their expectations from this too."""
    out: dict[tuple[str, str], StagedStream] = {}
    for conn in config.connections:
        if conn.destination.type != "postgres":
            continue
        for stream in conn.streams:
            out.setdefault(
                (conn.source.name, stream.name),
                StagedStream(
                    source=conn.source.name,
                    name=stream.name,
                    schema=conn.destination.schema,
                    primary_key=tuple(stream.primary_key),
                    columns=declared_columns(conn.source, stream.name),
                ),
            )
    return list(out.values())


def declared_columns(source: Any, stream: str) -> dict[str, str]:
    """{raw column: JSON type} of a stream: a file source's input_schema, else the connector's
    committed catalog (include/airbyte/catalogs)."""
    streams = source.config.get("streams")
    if isinstance(streams, list):
        item = next((s for s in streams if isinstance(s, dict) and s.get("name") == stream), {})
        schema = item.get("input_schema") or {}
        if isinstance(schema, str):
            schema = json.loads(schema)
        # source-s3's own columns (FILE_COLUMNS: the file's URL and time) stay in raw only
        return {str(c): str(t).strip().lower() for c, t in schema.items() if c not in FILE_COLUMNS}
    properties = load_catalog(source.connector).get(stream, {}).get("json_schema", {}).get("properties", {})
    return {column: _json_type(spec) for column, spec in properties.items()}


def _json_type(spec: dict) -> str:
    """A catalog property's type; a string with a date or time format keeps it (the loaders type
    those columns: `date-time` as a timestamp, `date` as a date)."""
    kinds = spec.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else [k for k in kinds if k != "null"] or ["null"]
    if kinds[0] == "string" and spec.get("format") in ("date-time", "date"):
        return spec["format"]
    return kinds[0]


def raw_table_sql(stream: StagedStream) -> str:
    """`create table if not exists` for the raw table a stream lands as (both engines' shape: the
    declared columns in their loaded types, then Airbyte's). For tests and benchmarks that fill
    raw by SQL: every other declared stream gets its (empty) table, so `dbt build` finds them."""
    columns = [f"{column(name)} {CASTS.get(kind, 'varchar')}" for name, kind in stream.columns.items()]
    columns += ["_airbyte_raw_id varchar", "_airbyte_extracted_at timestamp", "_airbyte_meta jsonb"]
    return f"create table if not exists {column(stream.schema)}.{column(stream.name)} ({', '.join(columns)})"


def plain(name: str) -> str:
    """A key column's name in a model: as declared when it is a plain word, else made one
    (`order` -> `order_key`, `Line No` -> `line_no`)."""
    name = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "key"
    return name if _PLAIN.match(name) and name not in _RESERVED else f"{name}_key"


def column(name: str) -> str:
    """The raw column as SQL: loaders lowercase names; anything else is quoted."""
    name = name.lower()
    return name if _PLAIN.match(name) and name not in _RESERVED else '"' + name.replace('"', '""') + '"'


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def staging_sql(stream: StagedStream) -> str:
    key = stream.key
    model_key = stream.model_key
    relation = f"source('{stream.source}', '{stream.name}')"
    unique_key = f"'{model_key[0]}'" if len(model_key) == 1 else _list(tuple(model_key))
    casts = []
    if not stream.primary_key:
        casts.append(f"{RAW_KEY}::varchar as raw_record_id")
    keys_first = sorted(stream.columns.items(), key=lambda item: item[0] not in stream.primary_key)
    for name, kind in keys_first:
        alias = plain(name) if name in stream.primary_key else column(name)
        if kind in PARSED:
            casts.append(f"{{{{ parse_as('{name.lower()}', '{PARSED[kind]}') }}}} as {alias}")
        else:
            casts.append(f"{column(name)}::{CASTS.get(kind, 'varchar')} as {alias}")
    casts.append("_airbyte_extracted_at::timestamp as extracted_at")
    select = ",\n        ".join(casts)
    return f"""{{#-
    {stream.source}.{stream.name}, one row per key (the latest clean extraction wins), typed as
    connections.yaml declares it. Written by `make scaffold-source`: rename and retype freely.
-#}}
{{{{
    config(
        unique_key={unique_key},
        indexes=[{{'columns': {_list(model_key)}, 'unique': true}}, {{'columns': ['extracted_at']}}],
        pre_hook="{{{{ delete_newly_quarantined({relation}, {_list(model_key)}, key_columns={_list(key)}) }}}}",
    )
}}}}

with

source as (
    {{{{ latest_clean_records(
        {relation},
        key_columns={_list(key)},
        since_column='extracted_at'
    ) }}}}
),

renamed as (
    select
        {select}
    from source
)

select * from renamed
"""  # noqa: S608 (dbt SQL written to a file, never executed here)


def quarantine_sql(source: str, streams: list[StagedStream]) -> str:
    entries = "\n".join(f"    '{s.name}': {_list(s.key)}," for s in streams)
    return f"""{{#-
    The raw records of {source} that staging leaves out, with the reason (macro
    quarantined_records): every stream of the source with its key, as connections.yaml declares it.
-#}}
{{{{ config(materialized='table') }}}}

{{{{ quarantined_records('{source}', {{
{entries}
}}) }}}}
"""


def sources_yml(source: str, streams: list[StagedStream]) -> str:
    lines = [
        "version: 2",
        "",
        "sources:",
        f"  - name: {source}",
        "    description: >",
        f"      The raw tables of the source `{source}` in connections.yaml, landed by Airbyte in the",
        "      Destinations-V2 shape (`_airbyte_*` columns added). Written by `make scaffold-source`.",
        f"    schema: {streams[0].schema}",
        "    config:",
        "      loaded_at_field: _airbyte_extracted_at",
        "      freshness:",
        "        warn_after: {count: 26, period: hour}",
        "        error_after: {count: 50, period: hour}",
        "    tables:",
    ]
    for s in streams:
        lines += [f"      - name: {s.name}", "        columns:"]
        for name, kind in s.columns.items():
            lines.append(f"          - name: {name.lower()}")
            lines.append(f"            description: Declared as {kind} in connections.yaml.")
            if column(name) != name.lower():  # a SQL word or an odd name: tests must quote it
                lines.append("            quote: true")
            if kind in PARSED:  # a value that does not parse is quarantined (macro parse_as)
                lines.append(f"            config: {{meta: {{parse_as: {PARSED[kind]}}}}}")
            if name in s.primary_key:  # a record without its key is quarantined: warn, go on
                lines += [
                    "            data_tests:",
                    "              - not_null:",
                    "                  config: {severity: warn}",
                ]
        lines += [
            "          - name: _airbyte_extracted_at",
            "            description: When Airbyte read the record (freshness is measured on it).",
            "          - name: _airbyte_meta",
            "            description: Airbyte's per-record report; non-empty `changes` mean a value was nulled.",
        ]
    return "\n".join(lines) + "\n"


def models_yml(source: str, streams: list[StagedStream]) -> str:
    lines = ["version: 2", "", "models:"]
    for s in streams:
        lines += [
            f"  - name: {s.model}",
            f"    description: One row per key of {source}.{s.name} (the latest clean extraction).",
        ]
        # unique: the model's unique index on its key (model_sql); Postgres refuses a duplicate
        lines += ["    columns:"]
        lines += [f"      - name: {k}\n        data_tests: [not_null]" for k in s.model_key]
    quarantine = f"stg_{source}__quarantined_records"
    lines += [
        f"  - name: {quarantine}",
        f"    description: Raw records of {source} left out of staging, with the reason (one row per record).",
        "    columns:",
        "      - name: raw_record_id",
        "        data_tests: [unique, not_null]",
        "      - name: source_name",
        "        data_tests:",
        "          - accepted_values:",
        f"              arguments: {{values: [{source}]}}",
        "      - name: stream_name",
        "        data_tests:",
        "          - accepted_values:",
        f"              arguments: {{values: [{', '.join(s.name for s in streams)}]}}",
        "      - name: problem",
        "        data_tests:",
        "          - accepted_values:",
        "              arguments: {values: [missing_primary_key, airbyte_changes, airbyte_errors, unparseable_value]}",
    ]
    return "\n".join(lines) + "\n"


def plan(config: IngestionConfig, source: str) -> dict[Path, str]:
    """{path: content} of every file the source's staging layer needs."""
    if source not in config.sources:
        known = ", ".join(sorted(config.sources)) or "none"
        raise ScaffoldError(f"{config.path}: no source named {source!r} (declared: {known})")
    streams = [s for s in warehouse_streams(config) if s.source == source]
    if not streams:
        raise ScaffoldError(
            f"{config.path}: no connection lands source {source!r} in a Postgres destination. "
            f"Fix: add a connection with `source: {source}` and `destination: <a type: postgres destination>`"
        )
    file_source = isinstance(config.sources[source].config.get("streams"), list)
    for s in streams:
        if not s.columns:
            fix = (
                "give the stream an `input_schema:` in the source's config (one `column: type` per column)"
                if file_source
                else "run `make catalogs` to snapshot the connector's catalog (include/airbyte/catalogs/)"
            )
            raise ScaffoldError(
                f"{config.path}: stream {s.name!r} of source {source!r} declares no columns. Fix: {fix}"
            )
    folder = settings.DBT_PROJECT_DIR / "models" / "staging" / source
    files = {folder / f"_{source}__sources.yml": sources_yml(source, streams)}
    files.update({folder / f"{s.model}.sql": staging_sql(s) for s in streams})
    files[folder / f"stg_{source}__quarantined_records.sql"] = quarantine_sql(source, streams)
    files[folder / f"_{source}__models.yml"] = models_yml(source, streams)
    return files


def write(files: dict[Path, str]) -> tuple[list[Path], list[Path]]:
    """Write each file that does not exist yet; returns (written, skipped)."""
    written, skipped = [], []
    for path, content in files.items():
        if path.exists():
            skipped.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    return written, skipped
