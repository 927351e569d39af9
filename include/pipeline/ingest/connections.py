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
# Keys of an Airbyte destination's settings that are secrets: only `${ENV_VAR}` may be written.
PLATFORM_SECRET_KEYS = frozenset({"password", "secret_access_key", "access_key_id", "ssh_key", "tunnel_user_password"})
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")

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

    def resolved_config(self, environ: dict[str, str] | None = None) -> dict[str, Any]:
        """The config with `${ENV_VAR}` references filled in, at run time only."""
        environ = os.environ if environ is None else environ

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

        return resolve(self.config, "config")


@dataclass(frozen=True)
class Destination:
    name: str
    type: str
    schema: str
    airflow_conn_id: str
    # Platform engine only: settings of the Airbyte server's destination that differ from the
    # Airflow connection (e.g. the host as seen from inside Airbyte's cluster). `${ENV}` allowed.
    airbyte: dict[str, Any] = field(default_factory=dict)


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


def load_catalog(connector: str) -> dict[str, dict]:
    """Streams a connector offers, from the catalog snapshot committed in include/airbyte/catalogs."""
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
            self.fail(line, f"{where} name {value!r} is not a valid name", "use lowercase letters, digits and _")
            return False
        return True


def load_connections(path: Path | str | None = None) -> IngestionConfig:
    """Read and validate connections.yaml; raise ConnectionsConfigError listing every problem."""
    path = Path(path or settings.CONNECTIONS_FILE)
    try:
        doc = yaml.load(path.read_text(), Loader=_LineLoader)  # noqa: S506 (a SafeLoader subclass)
    except FileNotFoundError:
        raise ConnectionsConfigError([f"{path}: file not found. Fix: create it (see README, Ingest)"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConnectionsConfigError(
            [f"{path}:{mark.line + 1 if mark else '?'}: {exc.problem}. Fix: correct the YAML syntax"]
        ) from None

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
        if not check.keys(d, where, ("type", "schema", "airflow_conn_id"), ("airbyte",)):
            continue
        if d["type"] != "postgres":
            check.fail(d.key_lines["type"], f"{where} has type {d['type']!r}", "use `type: postgres`")
        overrides = d.get("airbyte") or _Map()
        if check.mapping(overrides, d.key_lines.get("airbyte", d.line), f"{where} airbyte") is None:
            continue
        for key, value in overrides.items():
            if key in PLATFORM_SECRET_KEYS and not (isinstance(value, str) and _ENV_REF.match(value)):
                check.fail(
                    overrides.key_lines[key],
                    f"{where} airbyte.{key} is a secret written in the file",
                    f'write `{key}: "${{ENV_VAR}}"` and export ENV_VAR, or leave it to the Airflow connection',
                )
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
        if not check.keys(s, where, ("connector",), ("config",)):
            continue
        connector = s["connector"]
        requirements = settings.AIRBYTE_REQUIREMENTS_DIR / f"{connector}.txt"
        if not requirements.exists():
            check.fail(
                s.key_lines["connector"],
                f"{where} uses connector {connector!r}, which has no pinned requirements file {requirements}",
                f"add {connector}.in with the connector's PyPI package, then `make lock`",
            )
        catalogs[sname] = load_catalog(connector)
        sources[sname] = Source(sname, connector, dict(s.get("config") or {}))

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
        where = f"connection '{cname}'"
        if not check.keys(c, where, ("name", "source", "destination", "streams")):
            continue
        check.name(cname, c.key_lines["name"], "connection")
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
        if source and destination and streams is not None:
            connections.append(Connection(cname, source, destination, streams))

    if check.problems:
        raise ConnectionsConfigError(check.problems)
    return IngestionConfig(path, sources, destinations, tuple(connections), workspace)


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
        swhere = f"stream '{sname}' of {where}"
        if not check.keys(s, swhere, ("name", "sync_mode"), ("cursor_field", "primary_key")):
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
        if mode not in SYNC_MODES:
            check.fail(
                s.key_lines["sync_mode"],
                f"unknown sync_mode {mode!r} in {swhere}",
                f"use one of: {', '.join(SYNC_MODES)}",
            )
            continue
        columns = set((known or {}).get("json_schema", {}).get("properties", {}))
        cursor = s.get("cursor_field")
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
        pk = [pk] if isinstance(pk, str) else list(pk)
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
