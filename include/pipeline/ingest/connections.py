"""include/airbyte/connections.yaml: the one declaration of what is ingested, for both engines.

The schema is a set of pydantic models (one per kind of block: source, destination, connection,
stream, a source's simulator, a file-based stream), each with `extra="forbid"`, `Literal` types
for the closed sets and validators for every name. The file is read with the line of every node
(from `yaml.compose`), and each block is validated where its lines are known, so every problem
is reported with the file, the line and the fix, all at once, and a bad edit never half-applies.
What a block alone cannot know (a source or destination that does not exist, a stream the
connector does not offer, a literal secret, a duplicate name) is checked after, with its line.

Destinations are a union discriminated by `type` (`DESTINATION_TYPES`): a new kind of
destination is one more model with its own `type: Literal[...]`, added to that tuple.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

from include.pipeline import settings

SyncMode = Literal[
    "full_refresh_overwrite",
    "full_refresh_append",
    "incremental_append",
    "incremental_deduped_history",
]
SYNC_MODES: tuple[str, ...] = get_args(SyncMode)
# A connection's answer to a new column, a type change or a removed column: the Airbyte API's
# nonBreakingSchemaUpdatesBehavior (include/pipeline/ingest/schema_changes.py), and to a file the
# connector cannot read whole (bad_files.py). The first of each is the default.
SchemaChangePolicy = Literal["propagate_columns", "propagate_fully", "ignore", "disable_connection"]
SCHEMA_CHANGE_POLICIES: tuple[str, ...] = get_args(SchemaChangePolicy)
BadFilePolicy = Literal["fail", "skip"]
BAD_FILE_POLICIES: tuple[str, ...] = get_args(BadFilePolicy)
Engine = Literal["embedded", "platform"]
ENGINES: tuple[str, ...] = get_args(Engine)
# Every name from the file reaches SQL (schemas, tables, columns), file paths (connector venvs,
# requirements, catalogs) or the Airbyte API, so each is checked against a strict pattern here,
# catalog or not. 63 bytes: Postgres's identifier limit (a longer name is silently truncated).
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # sources, destinations, connections, streams
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")  # a Postgres schema, unquoted-safe
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")  # cursor and primary-key columns
_CONNECTOR = re.compile(r"^source-[a-z0-9]+(-[a-z0-9]+)*$")  # a folder-safe connector name
_CONN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")  # an Airflow connection id
_ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")
# Limits of the YAML itself: a declaration is a few KB; an alias bomb (`&a [*b, *b, ...]`) is
# tiny on disk and expands to billions of nodes in every walk over it.
MAX_FILE_BYTES = 1 << 20
MAX_EXPANDED_NODES = 100_000


def valid_connector(name: Any) -> bool:
    """A connector name that stays inside its folder: `source-<lowercase words>`, nothing else."""
    return isinstance(name, str) and bool(_CONNECTOR.match(name))


CATALOG_DIR = settings.REPO_ROOT / "include" / "airbyte" / "catalogs"


class ConnectionsConfigError(ValueError):
    """connections.yaml is invalid; `problems` holds one 'file:line: what. Fix: how' per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the Airbyte connections declaration; nothing was applied:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


class MissingEnvironmentVariable(KeyError):
    """A `${VAR}` of the declaration is not set when it is needed (at run time, never at load)."""

    def __str__(self) -> str:  # the message as written (KeyError's own str quotes it)
        return str(self.args[0]) if self.args else ""


def is_env_ref(value: Any) -> bool:
    """Whether `value` is a whole `${ENV_VAR}` reference (the only way a secret may be written)."""
    return isinstance(value, str) and bool(_ENV_REF.match(value))


def resolve_env(value: Any, where: str, environ: dict[str, str] | None = None) -> Any:
    """`value` with every `${ENV_VAR}` (a whole string) replaced by the variable, at any depth.

    The one resolver of the declaration: source configs (embedded and platform engines) and a
    destination's `airbyte:` overrides. `where` names the block in the error."""
    environ = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: resolve_env(v, f"{where}.{k}", environ) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, f"{where}[{i}]", environ) for i, v in enumerate(value)]
    if isinstance(value, str) and (match := _ENV_REF.match(value)):
        if match.group(1) not in environ:
            raise MissingEnvironmentVariable(
                f"{where} needs the environment variable {match.group(1)}; export it (or put it in .env)"
            )
        return environ[match.group(1)]
    return value


# -- validated values ---------------------------------------------------------------------------
# A value's error names the block it is in: `label` is formatted with the validation context
# ({where}: this block, {parent}: the block around it), which the loader passes per block.
def _problem(what: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("declaration", "{what}. Fix: {fix}", {"what": what, "fix": fix})


def _label(label: str, info: ValidationInfo) -> str:
    context = info.context or {}
    return label.format(where=context.get("where", "this block"), parent=context.get("parent", "the file"))


def _named(label: str) -> BeforeValidator:
    """A name of the file (source, destination, connection, stream): `_NAME`."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or not _NAME.match(value):
            raise _problem(
                f"{_label(label, info)} name {value!r} is not a valid name",
                "use lowercase letters, digits and _ (starting with a letter, at most 63)",
            )
        return value

    return BeforeValidator(check)


def _matching(regex: re.Pattern, label: str, fix: str) -> BeforeValidator:
    """Text matching `regex`; otherwise one problem naming `label`."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or not regex.match(value):
            raise _problem(f"{_label(label, info)} {value!r} is not allowed", fix)
        return value

    return BeforeValidator(check)


def _one_of(choices: tuple[str, ...], what: str) -> BeforeValidator:
    """One of a `Literal`'s values, with the file's words rather than pydantic's."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or value not in choices:
            raise _problem(what.format(value=value, where=_label("{where}", info)), f"use one of: {', '.join(choices)}")
        return value

    return BeforeValidator(check)


def _mapping(label: str) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            where = _label(label, info)
            raise _problem(f"{where} must be a mapping", f"write {where} as `key: value` lines")
        return value

    return BeforeValidator(check)


class _Block(BaseModel):
    """A block of the file: unknown keys are errors, and a loaded block never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)
    # keys the loader fills in (a block's name is its key in the file), not written in the block
    INJECTED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys a block may have in the file, in the order the errors list them."""
        return tuple(name for name in cls.model_fields if name not in cls.INJECTED)


# -- the blocks ---------------------------------------------------------------------------------
def _primary_key(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    """`primary_key: id` or `[id, ...]`: column names only."""
    value = value or []
    value = [value] if isinstance(value, str) else value
    columns = list(value) if isinstance(value, (list, tuple)) else [value]
    for column in columns:
        if not isinstance(column, str) or not _COLUMN.match(column):
            raise _problem(
                f"primary_key column of {_label('{where}', info)} {column!r} is not allowed",
                "write `primary_key: [<column>, ...]` with column names of letters, digits and _",
            )
    return tuple(columns)


class Stream(_Block):
    """A stream of a connection: how it is synced."""

    name: Annotated[str, _named("a stream of {parent}:")]
    sync_mode: Annotated[SyncMode, _one_of(SYNC_MODES, "unknown sync_mode {value!r} in {where}")]
    cursor_field: Annotated[
        str | None,
        _matching(_COLUMN, "cursor_field of {where}", "write one column name: letters, digits and _ (at most 63)"),
    ] = None
    primary_key: Annotated[tuple[str, ...], BeforeValidator(_primary_key)] = ()

    @_model_validator(mode="after")
    def _modes_have_their_keys(self, info: ValidationInfo) -> Stream:
        where = _label("{where}", info)
        if self.incremental and not self.cursor_field:
            known = (info.context or {}).get("known") or {}
            hint = (
                f" (the connector's cursor is {known['default_cursor_field']!r})"
                if known.get("default_cursor_field")
                else ""
            )
            raise _problem(
                f"{where} is {self.sync_mode} but has no cursor_field", f"add `cursor_field: <column>`{hint}"
            )
        if self.deduplicated and not self.primary_key:
            raise _problem(f"{where} is deduplicated but has no primary_key", "add `primary_key: [<column>, ...]`")
        return self

    @property
    def incremental(self) -> bool:
        return self.sync_mode.startswith("incremental")

    @property
    def deduplicated(self) -> bool:
        return self.sync_mode == "incremental_deduped_history"


# The `simulator:` block of a source (include/pipeline/ingest/shop.py ShopSettings; kept here so
# the DAG's parse does not import numpy)
SimulatorFormat = Literal["jsonl", "jsonl.gz", "parquet"]
SIMULATOR_FORMATS: tuple[str, ...] = get_args(SimulatorFormat)


def _count(minimum: int) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, int) or value < minimum:
            raise _problem(
                f"{_label('{where}', info)} {info.field_name} {value!r} is not a positive integer",
                f"write `{info.field_name}: <n>`",
            )
        return value

    return BeforeValidator(check)


def _share(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise _problem(
            f"{_label('{where}', info)} {info.field_name} {value!r} is not a share",
            f"write `{info.field_name}: 0.01` (1% a day)",
        )
    return value


def _simulator_format(value: Any, info: ValidationInfo) -> Any:
    if value not in SIMULATOR_FORMATS:
        raise _problem(f"{_label('{where}', info)} format {value!r}", f"use one of: {', '.join(SIMULATOR_FORMATS)}")
    return value


class Simulator(_Block):
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
        raise _problem(
            f"{_label('{where}', info)} has no supported format",
            "write `format: {filetype: parquet}` (or jsonl, csv, avro, excel)",
        )
    return value


def _file_stream_name(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _problem(f"{_label('{where}', info)}: not a valid stream name", "use lowercase letters, digits and _")
    return value


class FileStream(_Block):
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
        raise _problem(
            f"{_label('{where}', info)} connector {value!r} is not a connector name",
            "write `source-<name>` in lowercase letters, digits and - (it names a folder: no / or ..)",
        )
    return value


class Source(_Block):
    """A source: a connector and its settings. `config` may hold `${ENV_VAR}` references."""

    INJECTED = ("name",)
    name: Annotated[str, _named("source")]
    connector: Annotated[str, BeforeValidator(_connector)]
    config: Annotated[dict[str, Any], _mapping("{where} config")] = Field(default_factory=dict)
    # The simulated shop that writes this source's files (include/pipeline/ingest/shop.py), or None
    simulator: dict[str, Any] | None = None

    def resolved_config(self, environ: dict[str, str] | None = None) -> dict[str, Any]:
        """The config with `${ENV_VAR}` references filled in, at run time only. A file-based
        stream's `input_schema` written as a YAML mapping is sent as the JSON string it must be."""
        config = resolve_env(_plain(self.config), f"source '{self.name}' config", environ)
        for stream in config.get("streams") or []:
            if isinstance(stream, dict) and isinstance(stream.get("input_schema"), dict):
                stream["input_schema"] = json.dumps(stream["input_schema"], sort_keys=True)
        return config


def _check_simulator_filetype(check: _Checker, simulator: _Map, streams: list, where: str) -> None:
    """The simulator must write files of the type each stream reads (jsonl.gz is read as jsonl).
    Without a `format:` it writes the streams' own filetype (daily.shop_settings)."""
    written = simulator.get("format")
    if written not in SIMULATOR_FORMATS:
        return  # none (the streams' filetype is written), or reported with its line by the simulator's check
    filetype = written.split(".")[0]
    for stream in streams:
        fmt = stream.get("format") if isinstance(stream, _Map) else None
        if isinstance(fmt, dict) and fmt.get("filetype") in FILE_FORMATS and fmt["filetype"] != filetype:
            check.fail(
                stream.key_lines["format"],
                f"{where} stream {stream.get('name')!r} reads filetype {fmt['filetype']!r} but the simulator"
                f" writes {written!r} files",
                f"write `format: {{filetype: {filetype}}}` or set the simulator's `format:` to match",
            )


def _plain(value: Any) -> Any:
    """Plain dicts and lists (the loader's line-aware mappings copied away)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _Destination(_Block):
    """What every destination has: its name (its key in the file) and its `type`."""

    INJECTED = ("name",)
    name: Annotated[str, _named("destination")]


with warnings.catch_warnings():
    # `schema` is the key of the file and the attribute every caller reads; the only thing it
    # hides is BaseModel's deprecated `schema()` classmethod (pydantic warns about that).
    warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)

    class PostgresDestination(_Destination):
        """A Postgres schema that both engines write the raw tables into (Destinations-V2 shape)."""

        type: Literal["postgres"] = "postgres"
        schema: Annotated[
            str,
            _matching(
                _SCHEMA, "{where} schema", "use lowercase letters, digits and _ (at most 63), e.g. `schema: raw`"
            ),
        ]
        airflow_conn_id: Annotated[
            str,
            _matching(
                _CONN_ID, "{where} airflow_conn_id", "use letters, digits, _, . and - (an Airflow connection id)"
            ),
        ]
        # Platform engine only: settings of the Airbyte server's destination that differ from the
        # Airflow connection (e.g. the host as seen from inside Airbyte's cluster). `${ENV}` allowed.
        airbyte: Annotated[dict[str, Any], _mapping("{where} airbyte")] = Field(default_factory=dict)

    class S3Destination(_Destination):
        """Airbyte's S3 destination: the streams as Parquet files in a bucket (the lake's raw history).

        Its keys (bucket, path_prefix, format, endpoint, region, keys, path_format) are checked line
        by line in include/pipeline/ingest/s3_destination.py, which builds this model; `s3` holds
        them. It has no warehouse schema and no Airflow connection (empty strings)."""

        type: Literal["s3"] = "s3"
        s3: Any
        airbyte: dict[str, Any] = Field(default_factory=dict)
        schema: str = ""
        airflow_conn_id: str = ""


# Every kind of destination, told apart by `type`. Another kind: a model like PostgresDestination
# with its own `type: Literal[...]`, added here (the loader and the error messages follow).
DESTINATION_TYPES: tuple[type[_Destination], ...] = (PostgresDestination, S3Destination)
Destination = Annotated[Union[DESTINATION_TYPES], Field(discriminator="type")]  # noqa: UP007 (a runtime tuple)
_DESTINATION = TypeAdapter(Destination)


def destination_type_names() -> tuple[str, ...]:
    return tuple(get_args(model.model_fields["type"].annotation)[0] for model in DESTINATION_TYPES)


def _some_streams(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, list) or not value:
        raise _problem(f"{_label('{where}', info)} declares no streams", "list at least one `- name: <stream>`")
    return value


class _ConnectionBlock(_Block):
    """A connection as written: names of its source and destination, its streams."""

    name: Annotated[str, _named("connection")]
    source: Annotated[str, _named("{where} source")]
    destination: Annotated[str, _named("{where} destination")]
    streams: Annotated[list[Any], BeforeValidator(_some_streams)]
    non_breaking_schema_updates_behavior: Annotated[
        SchemaChangePolicy,
        _one_of(SCHEMA_CHANGE_POLICIES, "unknown non_breaking_schema_updates_behavior {value!r} in {where}"),
    ] = "propagate_columns"
    on_bad_file: Annotated[BadFilePolicy, _one_of(BAD_FILE_POLICIES, "unknown on_bad_file {value!r} in {where}")] = (
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
        raise _problem(f"version {value!r} is not supported", "use `version: 1`")
    return value


def _connection_list(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, list):
        raise _problem("connections must be a list", "write `- name: ...` items")
    return value


def _workspace(value: Any, info: ValidationInfo) -> Any:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _problem(f"workspace {value!r} is not a name", "write `workspace: <name>`")
    return value


class _FileBlock(_Block):
    """The top of the file."""

    version: Annotated[int | None, BeforeValidator(_version)]
    sources: Annotated[dict[Any, Any], _mapping("sources")]
    destinations: Annotated[dict[Any, Any], _mapping("destinations")]
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


# -- YAML with line numbers ------------------------------------------------------------------
class _Map(dict):
    """A mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _Seq(list):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):  # noqa: D102
        mapping = _Map()
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.MarkedYAMLError(
                    problem=f"a key must be plain text, not {type(key).__name__}", problem_mark=key_node.start_mark
                ) from None
            if key in mapping:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping

    def construct_sequence(self, node, deep=False):  # noqa: D102
        seq = _Seq(self.construct_object(child, deep=True) for child in node.value)
        seq.line = node.start_mark.line + 1
        return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _LineLoader.construct_sequence)


def _expanded_size(root: yaml.Node, limit: int) -> tuple[int, yaml.Node | None]:
    """How many nodes the document has once every alias is expanded (counting stops past `limit`),
    and the smallest node past the limit (where the bomb is). Memoised per node: linear time."""
    sizes: dict[int, int] = {}
    culprit: list[yaml.Node] = []

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            if sizes[key] < 0:
                raise yaml.MarkedYAMLError(problem="an alias refers to its own anchor", problem_mark=node.start_mark)
            return sizes[key]
        sizes[key] = -1  # in progress: meeting it again is a cycle
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1
        for child in children:
            total = min(total + size(child), limit + 1)
        if total > limit and not culprit:
            culprit.append(node)
        sizes[key] = total
        return total

    return size(root), (culprit[0] if culprit else None)


def _load_yaml(path: Path) -> Any:
    """The document, within the limits above; raise ConnectionsConfigError naming the line otherwise."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConnectionsConfigError([
            f"{path}: the file is {path.stat().st_size:,} bytes, over the limit of {MAX_FILE_BYTES:,}. "
            "Fix: a declaration is a few KB; split it or remove what is not a source, destination or connection"
        ])  # fmt: skip
    loader = _LineLoader(path.read_text())
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        total, culprit = _expanded_size(node, MAX_EXPANDED_NODES)
        if total > MAX_EXPANDED_NODES:
            line = culprit.start_mark.line + 1 if culprit is not None else 1
            raise ConnectionsConfigError([
                f"{path}:{line}: YAML aliases (*name) expand this document to more than "
                f"{MAX_EXPANDED_NODES:,} values. Fix: write the values out, or reuse an anchor fewer times"
            ])  # fmt: skip
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_catalog(connector: str) -> dict[str, dict]:
    """Streams a connector offers, from the catalog snapshot committed in include/airbyte/catalogs."""
    if not valid_connector(connector):
        return {}
    path = CATALOG_DIR / f"{connector}.json"
    if not path.exists():
        return {}
    return {s["name"]: s for s in json.loads(path.read_text())["streams"]}


# -- loading: each block validated where its lines are known -------------------------------------
class _Checker:
    """Collects every problem as 'file:line: what. Fix: how'."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def fail(self, line: int, what: str, fix: str) -> None:
        self.problems.append(f"{self.path}:{line}: {what}. Fix: {fix}")

    def mapping(self, value: Any, line: int, where: str) -> _Map | None:
        if not isinstance(value, _Map):
            self.fail(line, f"{where} must be a mapping", f"write {where} as `key: value` lines")
            return None
        return value

    def keys(self, m: _Map, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> bool:
        """Unknown and missing keys of a block checked by hand (the s3 destination's, see
        include/pipeline/ingest/s3_destination.py), with the same messages as the models'."""
        ok = True
        for key in m:
            if key not in required + optional:
                self.fail(
                    m.key_lines[key], f"unknown key {key!r} in {where}", f"use one of: {', '.join(required + optional)}"
                )
                ok = False
        for key in required:
            if key not in m:
                self.fail(m.line, f"{where} is missing the key {key!r}", f"add `{key}:` to {where}")
                ok = False
        return ok

    def name(self, value: Any, line: int, where: str) -> bool:
        if not isinstance(value, str) or not _NAME.match(value):
            self.fail(
                line,
                f"{where} name {value!r} is not a valid name",
                "use lowercase letters, digits and _ (starting with a letter, at most 63)",
            )
            return False
        return True

    def block(
        self,
        validate: Callable[..., Any],
        keys: tuple[str, ...],
        node: _Map,
        where: str,
        injected: dict[str, Any] | None = None,
        separate: tuple[str, ...] = (),
        **context: Any,
    ) -> Any | None:
        """`node` validated by `validate` (a model's or TypeAdapter's validate_python); each error
        becomes a problem on the line of the key it is about. None if the block is invalid.
        `injected`: keys the loader fills in; `separate`: keys of sub-blocks checked on their own."""
        injected = injected or {}
        ok = True
        for key in injected:
            if key in node:  # a block's name is its key in the file, never a key inside it
                self.fail(node.key_lines[key], f"unknown key {key!r} in {where}", f"use one of: {', '.join(keys)}")
                ok = False
        try:
            value = validate(
                {**{k: v for k, v in node.items() if k not in separate}, **injected},
                context={"where": where, **context},
            )
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self._report(error, keys, node, where)
            return None
        return value if ok else None

    @staticmethod
    def keys_ok(model: type[_Block], node: _Map) -> bool:
        """Whether `node` has every key `model` requires and no other (what its errors would say first)."""
        required = {n for n, f in model.model_fields.items() if f.is_required() and n not in model.INJECTED}
        return required <= set(node) and set(node) <= set(model.keys())

    def _report(self, error: Any, keys: tuple[str, ...], node: _Map, where: str) -> None:
        # a discriminated union puts the member's tag first: ('postgres', 'schema')
        loc = [part for part in error["loc"] if part not in destination_type_names()]
        key = loc[0] if loc else None
        line = node.key_lines.get(key, node.line) if isinstance(key, str) else node.line
        kind, ctx = error["type"], error.get("ctx") or {}
        if kind == "declaration":
            self.fail(line, ctx["what"], ctx["fix"])
        elif kind == "extra_forbidden":
            self.fail(line, f"unknown key {key!r} in {where}", f"use one of: {', '.join(keys)}")
        elif kind in ("missing", "union_tag_not_found"):
            key = key if kind == "missing" else "type"
            self.fail(node.line, f"{where} is missing the key {key!r}", f"add `{key}:` to {where}")
        elif kind == "union_tag_invalid":
            types = destination_type_names()
            self.fail(
                node.key_lines.get("type", node.line),
                f"{where} has type {ctx.get('tag')!r}",
                "use " + " or ".join(f"`type: {t}`" for t in types),
            )
        else:  # a type pydantic checks itself (e.g. `format: 3` where a mapping is expected)
            self.fail(line, f"{where} {'.'.join(map(str, loc)) or 'block'}: {error['msg']}", "see docs/ingest.md")


def load_connections(path: Path | str | None = None) -> IngestionConfig:
    """Read and validate connections.yaml; raise ConnectionsConfigError listing every problem."""
    path = Path(path or settings.CONNECTIONS_FILE)
    try:
        doc = _load_yaml(path)
    except FileNotFoundError:
        raise ConnectionsConfigError([f"{path}: file not found. Fix: create it (see docs/ingest.md)"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConnectionsConfigError(
            [f"{path}:{mark.line + 1 if mark else '?'}: {exc.problem}. Fix: correct the YAML syntax"]
        ) from None
    except RecursionError:
        raise ConnectionsConfigError([f"{path}: the YAML is nested too deeply. Fix: flatten it"]) from None

    check = _Checker(path)
    top = check.mapping(doc, 1, "the file")
    if top is None:
        raise ConnectionsConfigError(check.problems)
    file = check.block(_FileBlock.model_validate, _FileBlock.keys(), top, "the file")
    workspace = file.workspace if file is not None else None

    # declared: every block with a valid name; a connection naming an invalid one only fails
    # with that block's own problems, not with a second "unknown" one
    declared: set[tuple[str, str]] = set()
    destinations: dict[str, Any] = {}
    dests = top.get("destinations")
    for dname, d in dests.items() if isinstance(dests, _Map) else ():
        where = f"destination '{dname}'"
        line = dests.key_lines[dname]
        if not check.name(dname, line, "destination") or check.mapping(d, line, where) is None:
            continue
        declared.add(("destination", dname))
        if d.get("type") == "s3":  # the lake (Airbyte's S3 destination): its own keys and checks
            from include.pipeline.ingest.s3_destination import check_destination

            if (lake_destination := check_destination(check, dname, d, where)) is not None:
                destinations[dname] = lake_destination
            continue
        keys = _destination_keys(d.get("type"))
        destination = check.block(_DESTINATION.validate_python, keys, d, where, {"name": dname})
        if destination is None:
            continue
        overrides = d.get("airbyte") or _Map()
        _check_secrets(check, f"destination-{destination.type}", overrides, f"{where} airbyte", overrides.line)
        destinations[dname] = destination

    sources: dict[str, Source] = {}
    catalogs: dict[str, dict[str, dict]] = {}
    srcs = top.get("sources")
    for sname, s in srcs.items() if isinstance(srcs, _Map) else ():
        where = f"source '{sname}'"
        line = srcs.key_lines[sname]
        if not check.name(sname, line, "source") or check.mapping(s, line, where) is None:
            continue
        declared.add(("source", sname))
        simulator = s.get("simulator")
        if isinstance(simulator, _Map):
            check.block(Simulator.model_validate, Simulator.keys(), simulator, f"{where} simulator")
        elif simulator is not None:
            check.mapping(simulator, s.key_lines["simulator"], f"{where} simulator")
        source = check.block(Source.model_validate, Source.keys(), s, where, {"name": sname}, ("simulator",))
        if source is None:
            continue
        requirements = settings.AIRBYTE_REQUIREMENTS_DIR / f"{source.connector}.txt"
        if not requirements.exists():
            check.fail(
                s.key_lines["connector"],
                f"{where} uses connector {source.connector!r}, which has no pinned requirements file {requirements}",
                f"add {source.connector}.in with the connector's PyPI package, then `make lock`",
            )
        config = s.get("config") or _Map()
        _check_secrets(check, source.connector, config, f"{where} config", config.line)
        if isinstance(config.get("streams"), list):  # a file-based connector: streams declared in its config
            catalogs[sname] = _file_catalog(check, config, where)
            if isinstance(simulator, _Map):
                _check_simulator_filetype(check, simulator, config["streams"], where)
        else:
            catalogs[sname] = load_catalog(source.connector)
        if isinstance(simulator, _Map):
            source = source.model_copy(update={"simulator": _plain(simulator)})
        sources[sname] = source

    connections: list[Connection] = []
    seen: dict[str, int] = {}
    conns = top.get("connections")
    for index, c in enumerate(conns if isinstance(conns, list) else ()):
        if check.mapping(c, getattr(conns, "line", 1), f"connection #{index + 1}") is None:
            continue
        cname = c.get("name", f"#{index + 1}")
        where = f"connection '{cname}'" if isinstance(cname, str) else f"connection #{index + 1}"
        block = check.block(_ConnectionBlock.model_validate, _ConnectionBlock.keys(), c, where)
        if block is None:
            continue
        if cname in seen:
            check.fail(
                c.key_lines["name"],
                f"duplicate connection name {cname!r} (first declared on line {seen[cname]})",
                "give every connection a unique name: Airbyte looks connections up by name",
            )
        seen.setdefault(cname, c.key_lines["name"])
        source = sources.get(block.source)
        if source is None and ("source", block.source) not in declared:
            check.fail(
                c.key_lines["source"],
                f"{where} uses unknown source {block.source!r}",
                f"declare it under `sources:` or use one of: {', '.join(sources) or '(none declared)'}",
            )
        destination = destinations.get(block.destination)
        if destination is None and ("destination", block.destination) not in declared:
            check.fail(
                c.key_lines["destination"],
                f"{where} uses unknown destination {block.destination!r}",
                f"declare it under `destinations:` or use one of: {', '.join(destinations) or '(none)'}",
            )
        streams = _streams(check, c, where, catalogs.get(block.source, {}))
        if destination and destination.type == "s3" and streams:
            from include.pipeline.ingest.s3_destination import check_connection_streams

            check_connection_streams(check, c.key_lines["streams"], where, streams)
        if source and destination and streams is not None:
            policies = {"non_breaking_schema_updates_behavior": block.non_breaking_schema_updates_behavior}
            policies["on_bad_file"] = block.on_bad_file
            connections.append(
                Connection(name=cname, source=source, destination=destination, streams=streams, **policies)
            )

    if check.problems:
        raise ConnectionsConfigError(check.problems)
    return IngestionConfig(
        path=path, sources=sources, destinations=destinations, connections=tuple(connections), workspace=workspace
    )


def _destination_keys(kind: Any) -> tuple[str, ...]:
    """The keys a destination of type `kind` may have (every type's, if `kind` is unknown)."""
    models = [m for m in DESTINATION_TYPES if kind in get_args(m.model_fields["type"].annotation)]
    keys: list[str] = []
    for model in models or DESTINATION_TYPES:
        keys += [k for k in model.keys() if k not in keys]
    return tuple(keys)


def _check_secrets(check: _Checker, connector: str, config: _Map, where: str, line: int) -> None:
    """A secret field (include/airbyte/secret_fields.json, from the connector's spec) holds only
    a `${ENV_VAR}` reference: a literal secret in the file would end up in git."""
    from include.pipeline.ingest.secret_fields import secret_values

    for path, value, holder in secret_values(connector, config):
        if value is None or value == "" or is_env_ref(value):
            continue
        key = path[-1]
        check.fail(
            getattr(holder, "key_lines", {}).get(key, line),
            f"{where} {'.'.join(path)} is a secret written in the file (the {connector} spec marks it secret)",
            f'write `{key}: "${{ENV_VAR}}"` and export ENV_VAR (or put it in .env)',
        )


def _streams(check: _Checker, c: _Map, where: str, catalog: dict[str, dict]) -> tuple[Stream, ...] | None:
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


def _file_catalog(check: _Checker, config: _Map, where: str) -> dict[str, dict]:
    """The catalog of a file-based source from its `streams:` config, checked line by line."""
    catalog: dict[str, dict] = {}
    items = config["streams"]
    for item in items:
        if check.mapping(item, getattr(items, "line", config.line), f"a stream of {where} config") is None:
            continue
        name = item.get("name")
        swhere = f"config stream {name!r} of {where}"
        stream = check.block(FileStream.model_validate, FileStream.keys(), item, swhere)
        if stream is None and not (check.keys_ok(FileStream, item) and isinstance(name, str) and _NAME.match(name)):
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
                if not isinstance(column, str) or not _COLUMN.match(column):
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
