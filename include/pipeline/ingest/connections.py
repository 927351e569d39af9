"""include/airbyte/connections.yaml: the one declaration of what is ingested, for both engines.

Loaded into typed objects and validated before anything runs. Every problem is reported with
the file, the line and the fix, all at once, so a bad edit never half-applies.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from include.pipeline import settings

SYNC_MODES = (
    "full_refresh_overwrite",
    "full_refresh_append",
    "incremental_append",
    "incremental_deduped_history",
)
ENGINES = ("embedded", "platform")
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


@dataclass(frozen=True)
class Stream:
    name: str
    sync_mode: str
    cursor_field: str | None
    primary_key: tuple[str, ...]

    @property
    def incremental(self) -> bool:
        return self.sync_mode.startswith("incremental")

    @property
    def deduplicated(self) -> bool:
        return self.sync_mode == "incremental_deduped_history"


@dataclass(frozen=True)
class Source:
    name: str
    connector: str
    config: dict[str, Any]
    # The simulated shop that writes this source's files (include/pipeline/ingest/shop.py), or None
    simulator: dict[str, Any] | None = None

    def resolved_config(self, environ: dict[str, str] | None = None) -> dict[str, Any]:
        """The config with `${ENV_VAR}` references filled in, at run time only. A file-based
        stream's `input_schema` written as a YAML mapping is sent as the JSON string it must be."""
        environ = os.environ if environ is None else environ
        config = self._resolved(environ)
        for stream in config.get("streams") or []:
            if isinstance(stream, dict) and isinstance(stream.get("input_schema"), dict):
                stream["input_schema"] = json.dumps(stream["input_schema"], sort_keys=True)
        return config

    def _resolved(self, environ) -> dict[str, Any]:

        def resolve(value: Any, path: str) -> Any:
            if isinstance(value, dict):
                return {k: resolve(v, f"{path}.{k}") for k, v in value.items()}
            if isinstance(value, list):
                return [resolve(v, f"{path}[{i}]") for i, v in enumerate(value)]
            if isinstance(value, str) and (match := _ENV_REF.match(value)):
                if match.group(1) not in environ:
                    raise KeyError(
                        f"source '{self.name}' config {path} needs the environment variable "
                        f"{match.group(1)}; export it (or put it in .env)"
                    )
                return environ[match.group(1)]
            return value

        return resolve(_plain(self.config), "config")


def _plain(value: Any) -> Any:
    """Plain dicts and lists (the loader's line-aware mappings copied away)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Destination:
    name: str
    type: str
    schema: str
    airflow_conn_id: str
    # Platform engine only: settings of the Airbyte server's destination that differ from the
    # Airflow connection (e.g. the host as seen from inside Airbyte's cluster). `${ENV}` allowed.
    airbyte: dict[str, Any] = field(default_factory=dict)
    # `type: s3` only: bucket, path prefix, format, endpoint and keys (include/pipeline/ingest/s3_destination.py)
    s3: Any = None


@dataclass(frozen=True)
class Connection:
    name: str
    source: Source
    destination: Destination
    streams: tuple[Stream, ...]


@dataclass(frozen=True)
class IngestionConfig:
    path: Path
    sources: dict[str, Source]
    destinations: dict[str, Destination]
    connections: tuple[Connection, ...] = field(default=())
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


# -- validation ------------------------------------------------------------------------------
class _Checker:
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
        ok = True
        for key in m:
            if key not in required + optional:
                self.fail(
                    m.key_lines[key],
                    f"unknown key {key!r} in {where}",
                    f"use one of: {', '.join(required + optional)}",
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

    def pattern(self, value: Any, regex: re.Pattern, line: int, what: str, fix: str) -> bool:
        """`value` is text matching `regex`; otherwise one problem naming `what`."""
        if not isinstance(value, str) or not regex.match(value):
            self.fail(line, f"{what} {value!r} is not allowed", fix)
            return False
        return True


def load_connections(path: Path | str | None = None) -> IngestionConfig:
    """Read and validate connections.yaml; raise ConnectionsConfigError listing every problem."""
    path = Path(path or settings.CONNECTIONS_FILE)
    try:
        doc = _load_yaml(path)
    except FileNotFoundError:
        raise ConnectionsConfigError([f"{path}: file not found. Fix: create it (see README, Ingest)"]) from None
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
    check.keys(top, "the file", ("version", "sources", "destinations", "connections"), ("workspace",))
    workspace = top.get("workspace")
    if workspace is not None and (not isinstance(workspace, str) or not workspace.strip()):
        check.fail(top.key_lines["workspace"], f"workspace {workspace!r} is not a name", "write `workspace: <name>`")
        workspace = None
    if top.get("version") not in (1, None):
        check.fail(top.key_lines["version"], f"version {top['version']!r} is not supported", "use `version: 1`")

    destinations: dict[str, Destination] = {}
    dests = check.mapping(top.get("destinations", _Map()), top.key_lines.get("destinations", 1), "destinations")
    for dname, d in (dests or {}).items():
        where = f"destination '{dname}'"
        line = dests.key_lines[dname]
        if not check.name(dname, line, "destination") or check.mapping(d, line, where) is None:
            continue
        if d.get("type") == "s3":  # the lake (Airbyte's S3 destination): its own keys and checks
            from include.pipeline.ingest.s3_destination import check_destination

            if (lake_destination := check_destination(check, dname, d, where)) is not None:
                destinations[dname] = lake_destination
            continue
        if not check.keys(d, where, ("type", "schema", "airflow_conn_id"), ("airbyte",)):
            continue
        if d["type"] != "postgres":
            check.fail(d.key_lines["type"], f"{where} has type {d['type']!r}", "use `type: postgres` or `type: s3`")
        schema_ok = check.pattern(
            d["schema"], _SCHEMA, d.key_lines["schema"], f"{where} schema",
            "use lowercase letters, digits and _ (at most 63), e.g. `schema: raw`",
        )  # fmt: skip
        conn_id_ok = check.pattern(
            d["airflow_conn_id"], _CONN_ID, d.key_lines["airflow_conn_id"], f"{where} airflow_conn_id",
            "use letters, digits, _, . and - (an Airflow connection id)",
        )  # fmt: skip
        if not (schema_ok and conn_id_ok):
            continue
        overrides = d.get("airbyte") or _Map()
        if check.mapping(overrides, d.key_lines.get("airbyte", d.line), f"{where} airbyte") is None:
            continue
        _check_secrets(check, f"destination-{d['type']}", overrides, f"{where} airbyte", overrides.line)
        destinations[dname] = Destination(
            dname, d["type"], str(d["schema"]), str(d["airflow_conn_id"]), dict(overrides)
        )

    sources: dict[str, Source] = {}
    catalogs: dict[str, dict[str, dict]] = {}
    srcs = check.mapping(top.get("sources", _Map()), top.key_lines.get("sources", 1), "sources")
    for sname, s in (srcs or {}).items():
        where = f"source '{sname}'"
        line = srcs.key_lines[sname]
        if not check.name(sname, line, "source") or check.mapping(s, line, where) is None:
            continue
        if not check.keys(s, where, ("connector",), ("config", "simulator")):
            continue
        connector = s["connector"]
        if not valid_connector(connector):
            check.fail(
                s.key_lines["connector"],
                f"{where} connector {connector!r} is not a connector name",
                "write `source-<name>` in lowercase letters, digits and - (it names a folder: no / or ..)",
            )
            continue
        requirements = settings.AIRBYTE_REQUIREMENTS_DIR / f"{connector}.txt"
        if not requirements.exists():
            check.fail(
                s.key_lines["connector"],
                f"{where} uses connector {connector!r}, which has no pinned requirements file {requirements}",
                f"add {connector}.in with the connector's PyPI package, then `make lock`",
            )
        config = s.get("config") or _Map()
        if check.mapping(config, s.key_lines.get("config", s.line), f"{where} config") is None:
            continue
        _check_secrets(check, connector, config, f"{where} config", config.line)
        if isinstance(config.get("streams"), list):  # a file-based connector: streams declared in its config
            catalogs[sname] = _file_streams(check, config, where)
        else:
            catalogs[sname] = load_catalog(connector)
        simulator = s.get("simulator")
        if simulator is not None:
            _check_simulator(check, simulator, s.key_lines["simulator"], where)
        sources[sname] = Source(sname, connector, dict(config), _plain(simulator) if simulator is not None else None)

    connections: list[Connection] = []
    seen: dict[str, int] = {}
    conns = top.get("connections", _Seq())
    if not isinstance(conns, list):
        check.fail(top.key_lines.get("connections", 1), "connections must be a list", "write `- name: ...` items")
        conns = []
    for index, c in enumerate(conns):
        if check.mapping(c, getattr(conns, "line", 1), f"connection #{index + 1}") is None:
            continue
        cname = c.get("name", f"#{index + 1}")
        where = f"connection '{cname}'" if isinstance(cname, str) else f"connection #{index + 1}"
        if not check.keys(c, where, ("name", "source", "destination", "streams")):
            continue
        refs_ok = check.name(c["source"], c.key_lines["source"], f"{where} source")
        refs_ok = check.name(c["destination"], c.key_lines["destination"], f"{where} destination") and refs_ok
        if not check.name(cname, c.key_lines["name"], "connection") or not refs_ok:
            continue
        if cname in seen:
            check.fail(
                c.key_lines["name"],
                f"duplicate connection name {cname!r} (first declared on line {seen[cname]})",
                "give every connection a unique name: Airbyte looks connections up by name",
            )
        seen.setdefault(cname, c.key_lines["name"])
        source = sources.get(c["source"])
        if source is None:
            check.fail(
                c.key_lines["source"],
                f"{where} uses unknown source {c['source']!r}",
                f"declare it under `sources:` or use one of: {', '.join(sources) or '(none declared)'}",
            )
        destination = destinations.get(c["destination"])
        if destination is None:
            check.fail(
                c.key_lines["destination"],
                f"{where} uses unknown destination {c['destination']!r}",
                f"declare it under `destinations:` or use one of: {', '.join(destinations) or '(none)'}",
            )
        catalog = catalogs.get(c["source"], {})
        streams = _streams(check, c, where, catalog)
        if destination and destination.type == "s3" and streams:
            from include.pipeline.ingest.s3_destination import check_connection_streams

            check_connection_streams(check, c.key_lines["streams"], where, streams)
        if source and destination and streams is not None:
            connections.append(Connection(cname, source, destination, streams))

    if check.problems:
        raise ConnectionsConfigError(check.problems)
    return IngestionConfig(path, sources, destinations, tuple(connections), workspace)


def _check_secrets(check: _Checker, connector: str, config: _Map, where: str, line: int) -> None:
    """A secret field (include/airbyte/secret_fields.json, from the connector's spec) holds only
    a `${ENV_VAR}` reference: a literal secret in the file would end up in git."""
    from include.pipeline.ingest.secret_fields import secret_values

    for path, value, holder in secret_values(connector, config):
        if value is None or value == "" or (isinstance(value, str) and _ENV_REF.match(value)):
            continue
        key = path[-1]
        check.fail(
            getattr(holder, "key_lines", {}).get(key, line),
            f"{where} {'.'.join(path)} is a secret written in the file (the {connector} spec marks it secret)",
            f'write `{key}: "${{ENV_VAR}}"` and export ENV_VAR (or put it in .env)',
        )


def _streams(check: _Checker, c: _Map, where: str, catalog: dict[str, dict]) -> tuple[Stream, ...] | None:
    items = c["streams"]
    if not isinstance(items, list) or not items:
        check.fail(c.key_lines["streams"], f"{where} declares no streams", "list at least one `- name: <stream>`")
        return None
    streams: list[Stream] = []
    names: set[str] = set()
    for s in items:
        if check.mapping(s, items.line, f"a stream of {where}") is None:
            continue
        sname = s.get("name", "?")
        swhere = f"stream '{sname}' of {where}" if isinstance(sname, str) else f"a stream of {where}"
        if not check.keys(s, swhere, ("name", "sync_mode"), ("cursor_field", "primary_key")):
            continue
        if not check.name(sname, s.key_lines["name"], f"a stream of {where}:"):
            continue
        if sname in names:
            check.fail(s.key_lines["name"], f"duplicate {swhere}", "declare each stream once per connection")
        names.add(sname)
        known = catalog.get(sname)
        if catalog and known is None:
            check.fail(
                s.key_lines["name"],
                f"unknown {swhere}: the connector offers no such stream",
                f"use one of: {', '.join(sorted(catalog))}",
            )
        mode = s["sync_mode"]
        if not isinstance(mode, str) or mode not in SYNC_MODES:
            check.fail(
                s.key_lines["sync_mode"],
                f"unknown sync_mode {mode!r} in {swhere}",
                f"use one of: {', '.join(SYNC_MODES)}",
            )
            continue
        columns = set((known or {}).get("json_schema", {}).get("properties", {}))
        cursor = s.get("cursor_field")
        if cursor is not None and not check.pattern(
            cursor, _COLUMN, s.key_lines["cursor_field"], f"cursor_field of {swhere}",
            "write one column name: letters, digits and _ (at most 63)",
        ):  # fmt: skip
            continue
        if mode.startswith("incremental") and not cursor:
            hint = (
                f" (the connector's cursor is {known['default_cursor_field']!r})"
                if known and known.get("default_cursor_field")
                else ""
            )
            check.fail(s.line, f"{swhere} is {mode} but has no cursor_field", f"add `cursor_field: <column>`{hint}")
        elif cursor and columns and cursor not in columns:
            check.fail(
                s.key_lines["cursor_field"],
                f"cursor_field {cursor!r} is not a column of {swhere}",
                f"use one of: {', '.join(sorted(columns))}",
            )
        pk = s.get("primary_key") or []
        pk = [pk] if isinstance(pk, str) else pk
        if not isinstance(pk, list) or not all(
            check.pattern(
                column,
                _COLUMN,
                s.key_lines["primary_key"],
                f"primary_key column of {swhere}",
                "write `primary_key: [<column>, ...]` with column names of letters, digits and _",
            )  # fmt: skip
            for column in (pk if isinstance(pk, list) else [pk])
        ):
            continue
        pk = list(pk)
        if mode == "incremental_deduped_history" and not pk:
            check.fail(s.line, f"{swhere} is deduplicated but has no primary_key", "add `primary_key: [<column>, ...]`")
        for column in pk:
            if columns and column not in columns:
                check.fail(
                    s.key_lines["primary_key"],
                    f"primary_key column {column!r} is not a column of {swhere}",
                    f"use one of: {', '.join(sorted(columns))}",
                )
        streams.append(Stream(sname, mode, cursor, tuple(pk)))
    return tuple(streams)


# -- file-based sources (source-s3): the streams are declared in the source's config ----------------
# Columns source-s3 adds to every record; the file's last-modified time is its cursor.
FILE_COLUMNS = {
    "_ab_source_file_last_modified": {"type": "string"},
    "_ab_source_file_url": {"type": "string"},
}
FILE_CURSOR = "_ab_source_file_last_modified"
# the types source-s3 accepts in an input_schema (airbyte_cdk file_based schema_helpers)
FILE_TYPES = ("string", "integer", "number", "float", "boolean", "object", "array", "null")
FILE_STREAM_KEYS = (
    "name", "globs", "format", "input_schema", "validation_policy", "schemaless",
    "days_to_sync_if_history_is_full", "recent_n_files_to_read_for_schema_discovery",
)  # fmt: skip


def _file_streams(check: _Checker, config: _Map, where: str) -> dict[str, dict]:
    """The catalog of a file-based source from its `streams:` config, checked line by line."""
    catalog: dict[str, dict] = {}
    items = config["streams"]
    for item in items:
        if check.mapping(item, getattr(items, "line", config.line), f"a stream of {where} config") is None:
            continue
        name = item.get("name")
        swhere = f"config stream {name!r} of {where}"
        if not check.keys(item, swhere, ("name", "format"), FILE_STREAM_KEYS[2:] + ("globs",)):
            continue
        if not isinstance(name, str) or not _NAME.match(name):
            check.fail(
                item.key_lines["name"], f"{swhere}: not a valid stream name", "use lowercase letters, digits and _"
            )
            continue
        if name in catalog:
            check.fail(item.key_lines["name"], f"duplicate {swhere}", "declare each stream once in the config")
        fmt = item["format"]
        if not isinstance(fmt, dict) or fmt.get("filetype") not in ("jsonl", "parquet", "csv", "avro", "excel"):
            check.fail(
                item.key_lines["format"],
                f"{swhere} has no supported format",
                "write `format: {filetype: parquet}` (or jsonl, csv, avro, excel)",
            )
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


# The `simulator:` block of a source (include/pipeline/ingest/shop.py ShopSettings; kept here so
# the DAG's parse does not import numpy)
SIMULATOR_KEYS = (
    "bucket",
    "format",
    "seed",
    "customers",
    "orders",
    "products",
    "daily_new",
    "daily_changed",
    "chunk_rows",
)
SIMULATOR_FORMATS = ("jsonl", "parquet")


def _check_simulator(check: _Checker, simulator: Any, line: int, where: str) -> None:
    block = check.mapping(simulator, line, f"{where} simulator")
    if block is None:
        return
    if not check.keys(block, f"{where} simulator", (), SIMULATOR_KEYS):
        return
    if block.get("format", "jsonl") not in SIMULATOR_FORMATS:
        check.fail(
            block.key_lines["format"],
            f"{where} simulator format {block['format']!r}",
            f"use one of: {', '.join(SIMULATOR_FORMATS)}",
        )
    for key in ("customers", "orders", "products", "seed", "chunk_rows"):
        if key in block and (not isinstance(block[key], int) or block[key] < (0 if key == "seed" else 1)):
            check.fail(
                block.key_lines[key],
                f"{where} simulator {key} {block[key]!r} is not a positive integer",
                f"write `{key}: <n>`",
            )
    for key in ("daily_new", "daily_changed"):
        if key in block and (not isinstance(block[key], (int, float)) or not 0 <= block[key] <= 1):
            check.fail(
                block.key_lines[key],
                f"{where} simulator {key} {block[key]!r} is not a share",
                f"write `{key}: 0.01` (1% a day)",
            )
