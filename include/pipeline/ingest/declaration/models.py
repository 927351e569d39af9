"""The schema of connections.yaml: one pydantic model per kind of block (source, destination,
connection, stream, a source's simulator, a file-based stream), each with `extra="forbid"`,
`Literal` types for the closed sets and validators for every name (declaration/values.py).

Destinations are a union discriminated by `type` (`DESTINATION_TYPES`): a new kind of
destination is one more model with its own `type: Literal[...]`, added to that tuple.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationInfo
from pydantic import model_validator as _model_validator

from include.pipeline.ingest.declaration.s3 import S3Destination
from include.pipeline.ingest.declaration.values import (
    BAD_FILE_POLICIES,
    COLUMN,
    CONN_ID,
    NAME,
    SCHEMA,
    SCHEMA_CHANGE_POLICIES,
    SYNC_MODES,
    BadFilePolicy,
    Block,
    DestinationBlock,
    SchemaChangePolicy,
    SyncMode,
    label_of,
    mapping,
    matching,
    named,
    one_of,
    problem,
    resolve_env,
    valid_connector,
)


def _primary_key(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    """`primary_key: id` or `[id, ...]`: column names only."""
    value = value or []
    value = [value] if isinstance(value, str) else value
    columns = list(value) if isinstance(value, (list, tuple)) else [value]
    for column in columns:
        if not isinstance(column, str) or not COLUMN.match(column):
            raise problem(
                f"primary_key column of {label_of('{where}', info)} {column!r} is not allowed",
                "write `primary_key: [<column>, ...]` with column names of letters, digits and _",
            )
    return tuple(columns)


class Stream(Block):
    """A stream of a connection: how it is synced."""

    name: Annotated[str, named("a stream of {parent}:")]
    sync_mode: Annotated[SyncMode, one_of(SYNC_MODES, "unknown sync_mode {value!r} in {where}")]
    cursor_field: Annotated[
        str | None,
        matching(COLUMN, "cursor_field of {where}", "write one column name: letters, digits and _ (at most 63)"),
    ] = None
    primary_key: Annotated[tuple[str, ...], BeforeValidator(_primary_key)] = ()

    @_model_validator(mode="after")
    def _modes_have_their_keys(self, info: ValidationInfo) -> Stream:
        where = label_of("{where}", info)
        if self.incremental and not self.cursor_field:
            known = (info.context or {}).get("known") or {}
            hint = (
                f" (the connector's cursor is {known['default_cursor_field']!r})"
                if known.get("default_cursor_field")
                else ""
            )
            raise problem(f"{where} is {self.sync_mode} but has no cursor_field", f"add `cursor_field: <column>`{hint}")
        if self.deduplicated and not self.primary_key:
            raise problem(f"{where} is deduplicated but has no primary_key", "add `primary_key: [<column>, ...]`")
        return self

    @property
    def incremental(self) -> bool:
        return self.sync_mode.startswith("incremental")

    @property
    def deduplicated(self) -> bool:
        return self.sync_mode == "incremental_deduped_history"


# The `simulator:` block of a source (include/simulator/shop.py ShopSettings; kept here so
# the DAG's parse does not import numpy)
SimulatorFormat = Literal["jsonl", "jsonl.gz", "parquet"]
SIMULATOR_FORMATS: tuple[str, ...] = get_args(SimulatorFormat)


def _count(minimum: int) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, int) or value < minimum:
            raise problem(
                f"{label_of('{where}', info)} {info.field_name} {value!r} is not a positive integer",
                f"write `{info.field_name}: <n>`",
            )
        return value

    return BeforeValidator(check)


def _share(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise problem(
            f"{label_of('{where}', info)} {info.field_name} {value!r} is not a share",
            f"write `{info.field_name}: 0.01` (1% a day)",
        )
    return value


def _simulator_format(value: Any, info: ValidationInfo) -> Any:
    if value not in SIMULATOR_FORMATS:
        raise problem(f"{label_of('{where}', info)} format {value!r}", f"use one of: {', '.join(SIMULATOR_FORMATS)}")
    return value


class Simulator(Block):
    """The simulated shop that writes a source's export files; every key is optional."""

    bucket: str | None = None
    format: Annotated[SimulatorFormat, BeforeValidator(_simulator_format)] = "jsonl.gz"
    # None: ShopSettings's default (an explicit null is refused, as any other non-number)
    seed: Annotated[int | None, _count(0)] = None
    customers: Annotated[int | None, _count(1)] = None
    orders: Annotated[int | None, _count(1)] = None
    products: Annotated[int | None, _count(1)] = None
    daily_new: Annotated[float | None, BeforeValidator(_share)] = None
    daily_changed: Annotated[float | None, BeforeValidator(_share)] = None
    chunk_rows: Annotated[int | None, _count(1)] = None


SIMULATOR_KEYS = Simulator.keys()


# -- file-based sources (source-s3): the streams are declared in the source's config ----------------
# Columns source-s3 adds to every record; the file's last-modified time is its cursor.
FILE_COLUMNS = {
    "_ab_source_file_last_modified": {"type": "string"},
    "_ab_source_file_url": {"type": "string"},
}
FILE_CURSOR = "_ab_source_file_last_modified"
# the types source-s3 accepts in an input_schema (airbyte_cdk file_based schema_helpers)
FILE_TYPES = ("string", "integer", "number", "float", "boolean", "object", "array", "null")
FILE_FORMATS = ("jsonl", "parquet", "csv", "avro", "excel")


def _file_format(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, dict) or value.get("filetype") not in FILE_FORMATS:
        raise problem(
            f"{label_of('{where}', info)} has no supported format",
            "write `format: {filetype: parquet}` (or jsonl, csv, avro, excel)",
        )
    return value


def _file_stream_name(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str) or not NAME.match(value):
        raise problem(f"{label_of('{where}', info)}: not a valid stream name", "use lowercase letters, digits and _")
    return value


class FileStream(Block):
    """A stream of a file-based source (source-s3), declared in the source's `config.streams`.

    Only the keys are checked here; `input_schema` is checked column by column, with each
    column's line, by the loader (`_file_catalog`)."""

    name: Annotated[str, BeforeValidator(_file_stream_name)]
    format: Annotated[dict[str, Any], BeforeValidator(_file_format)]
    input_schema: Any = None
    validation_policy: Any = None
    schemaless: Any = None
    days_to_sync_if_history_is_full: Any = None
    recent_n_files_to_read_for_schema_discovery: Any = None
    globs: Any = None


FILE_STREAM_KEYS = FileStream.keys()


def _connector(value: Any, info: ValidationInfo) -> Any:
    if not valid_connector(value):
        raise problem(
            f"{label_of('{where}', info)} connector {value!r} is not a connector name",
            "write `source-<name>` in lowercase letters, digits and - (it names a folder: no / or ..)",
        )
    return value


class Source(Block):
    """A source: a connector and its settings. `config` may hold `${ENV_VAR}` references."""

    INJECTED = ("name",)
    name: Annotated[str, named("source")]
    connector: Annotated[str, BeforeValidator(_connector)]
    config: Annotated[dict[str, Any], mapping("{where} config")] = Field(default_factory=dict)
    # The simulated shop that writes this source's files (include/simulator/shop.py), or None
    simulator: dict[str, Any] | None = None

    def resolved_config(self, environ: dict[str, str] | None = None) -> dict[str, Any]:
        """The config with `${ENV_VAR}` references filled in, at run time only. A file-based
        stream's `input_schema` written as a YAML mapping is sent as the JSON string it must be."""
        config = resolve_env(plain(self.config), f"source '{self.name}' config", environ)
        for stream in config.get("streams") or []:
            if isinstance(stream, dict) and isinstance(stream.get("input_schema"), dict):
                stream["input_schema"] = json.dumps(stream["input_schema"], sort_keys=True)
        return config


def plain(value: Any) -> Any:
    """Plain dicts and lists (the loader's line-aware mappings copied away)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


with warnings.catch_warnings():
    # `schema` is the key of the file and the attribute every caller reads; the only thing it
    # hides is BaseModel's deprecated `schema()` classmethod (pydantic warns about that).
    warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)

    class PostgresDestination(DestinationBlock):
        """A Postgres schema that both engines write the raw tables into (Destinations-V2 shape)."""

        type: Literal["postgres"] = "postgres"
        schema: Annotated[
            str,
            matching(SCHEMA, "{where} schema", "use lowercase letters, digits and _ (at most 63), e.g. `schema: raw`"),
        ]
        airflow_conn_id: Annotated[
            str,
            matching(CONN_ID, "{where} airflow_conn_id", "use letters, digits, _, . and - (an Airflow connection id)"),
        ]
        # Platform engine only: settings of the Airbyte server's destination that differ from the
        # Airflow connection (e.g. the host as seen from inside Airbyte's cluster). `${ENV}` allowed.
        airbyte: Annotated[dict[str, Any], mapping("{where} airbyte")] = Field(default_factory=dict)


# Every kind of destination, told apart by `type`. Another kind: a model like PostgresDestination
# with its own `type: Literal[...]`, added here (the loader and the error messages follow).
DESTINATION_TYPES: tuple[type[DestinationBlock], ...] = (PostgresDestination, S3Destination)
Destination = Annotated[Union[DESTINATION_TYPES], Field(discriminator="type")]  # noqa: UP007 (a runtime tuple)
DESTINATION = TypeAdapter(Destination)


def destination_type_names() -> tuple[str, ...]:
    return tuple(get_args(model.model_fields["type"].annotation)[0] for model in DESTINATION_TYPES)


def _some_streams(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, list) or not value:
        raise problem(f"{label_of('{where}', info)} declares no streams", "list at least one `- name: <stream>`")
    return value


class ConnectionBlock(Block):
    """A connection as written: names of its source and destination, its streams."""

    name: Annotated[str, named("connection")]
    source: Annotated[str, named("{where} source")]
    destination: Annotated[str, named("{where} destination")]
    streams: Annotated[list[Any], BeforeValidator(_some_streams)]
    non_breaking_schema_updates_behavior: Annotated[
        SchemaChangePolicy,
        one_of(SCHEMA_CHANGE_POLICIES, "unknown non_breaking_schema_updates_behavior {value!r} in {where}"),
    ] = "propagate_columns"
    on_bad_file: Annotated[BadFilePolicy, one_of(BAD_FILE_POLICIES, "unknown on_bad_file {value!r} in {where}")] = (
        "fail"
    )


class Connection(BaseModel):
    """A connection with its source, destination and streams resolved (what the engines run)."""

    model_config = ConfigDict(frozen=True)
    name: str
    source: Source
    destination: Destination
    streams: tuple[Stream, ...]
    non_breaking_schema_updates_behavior: SchemaChangePolicy = "propagate_columns"
    on_bad_file: BadFilePolicy = "fail"


def _version(value: Any, info: ValidationInfo) -> Any:
    if value not in (1, None):
        raise problem(f"version {value!r} is not supported", "use `version: 1`")
    return value


def _connection_list(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, list):
        raise problem("connections must be a list", "write `- name: ...` items")
    return value


def _workspace(value: Any, info: ValidationInfo) -> Any:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise problem(f"workspace {value!r} is not a name", "write `workspace: <name>`")
    return value


class FileBlock(Block):
    """The top of the file."""

    version: Annotated[int | None, BeforeValidator(_version)]
    sources: Annotated[dict[Any, Any], mapping("sources")]
    destinations: Annotated[dict[Any, Any], mapping("destinations")]
    connections: Annotated[list[Any], BeforeValidator(_connection_list)]
    workspace: Annotated[str | None, BeforeValidator(_workspace)] = None


class IngestionConfig(BaseModel):
    """The whole declaration, checked: what both engines and plan/apply read."""

    model_config = ConfigDict(frozen=True)
    path: Path
    sources: dict[str, Source]
    destinations: dict[str, Destination]
    connections: tuple[Connection, ...] = ()
    # Platform engine: the Airbyte workspace the declaration is applied to (None: the only one).
    workspace: str | None = None

    def connection(self, name: str) -> Connection:
        for conn in self.connections:
            if conn.name == name:
                return conn
        raise KeyError(f"no connection named {name!r} in {self.path}")
