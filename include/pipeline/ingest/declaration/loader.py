"""Read include/airbyte/connections.yaml, the one declaration of what is ingested, for both engines.

The file is read with the line of every node (declaration/yaml_lines.py), and each block is
validated by its model (declaration/models.py) where its lines are known, so every problem is
reported with the file, the line and the fix, all at once (declaration/problems.py), and a bad
edit never half-applies. What a block alone cannot know (a source or destination that does not
exist, a stream the connector does not offer, a literal secret, a duplicate name) is checked
after, with its line (declaration/checks.py; the lake's destination: declaration/s3.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import yaml

from include.pipeline import settings
from include.pipeline.ingest.declaration.checks import (
    check_connection_streams_for_s3,
    check_secrets,
    check_simulator_filetype,
    check_streams,
    file_catalog,
)
from include.pipeline.ingest.declaration.models import (
    DESTINATION,
    DESTINATION_TYPES,
    Connection,
    ConnectionBlock,
    FileBlock,
    IngestionConfig,
    Simulator,
    Source,
    plain,
)
from include.pipeline.ingest.declaration.problems import Problems
from include.pipeline.ingest.declaration.values import ConnectionsConfigError, valid_connector
from include.pipeline.ingest.declaration.yaml_lines import LineMap, load_yaml

CATALOG_DIR = settings.REPO_ROOT / "include" / "airbyte" / "catalogs"


def load_catalog(connector: str) -> dict[str, dict]:
    """Streams a connector offers, from the catalog snapshot committed in include/airbyte/catalogs."""
    if not valid_connector(connector):
        return {}
    path = CATALOG_DIR / f"{connector}.json"
    if not path.exists():
        return {}
    return {s["name"]: s for s in json.loads(path.read_text())["streams"]}


def load_connections(path: Path | str | None = None) -> IngestionConfig:
    """Read and validate connections.yaml; raise ConnectionsConfigError listing every problem."""
    path = Path(path or settings.CONNECTIONS_FILE)
    try:
        doc = load_yaml(path)
    except FileNotFoundError:
        raise ConnectionsConfigError([f"{path}: file not found. Fix: create it (see docs/ingest.md)"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConnectionsConfigError(
            [f"{path}:{mark.line + 1 if mark else '?'}: {exc.problem}. Fix: correct the YAML syntax"]
        ) from None
    except RecursionError:
        raise ConnectionsConfigError([f"{path}: the YAML is nested too deeply. Fix: flatten it"]) from None

    check = Problems(path)
    top = check.mapping(doc, 1, "the file")
    if top is None:
        raise ConnectionsConfigError(check.problems)
    file = check.block(FileBlock.model_validate, FileBlock.keys(), top, "the file")
    workspace = file.workspace if file is not None else None

    # declared: every block with a valid name; a connection naming an invalid one only fails
    # with that block's own problems, not with a second "unknown" one
    declared: set[tuple[str, str]] = set()
    destinations: dict[str, Any] = {}
    dests = top.get("destinations")
    for dname, d in dests.items() if isinstance(dests, LineMap) else ():
        where = f"destination '{dname}'"
        line = dests.key_lines[dname]
        if not check.name(dname, line, "destination") or check.mapping(d, line, where) is None:
            continue
        declared.add(("destination", dname))
        lake = d.get("type") == "s3"  # the lake: its keys and secrets hold its S3 credentials
        if lake:
            check_secrets(check, "destination-s3", d, where, d.line)
        keys = destination_keys(d.get("type"))
        destination = check.block(DESTINATION.validate_python, keys, d, where, {"name": dname})
        overrides = d.get("airbyte")
        if isinstance(overrides, LineMap) and (destination is not None or lake):
            kind = destination.type if destination is not None else "s3"
            check_secrets(check, f"destination-{kind}", overrides, f"{where} airbyte", overrides.line)
        if destination is not None:
            destinations[dname] = destination

    sources: dict[str, Source] = {}
    catalogs: dict[str, dict[str, dict]] = {}
    srcs = top.get("sources")
    for sname, s in srcs.items() if isinstance(srcs, LineMap) else ():
        where = f"source '{sname}'"
        line = srcs.key_lines[sname]
        if not check.name(sname, line, "source") or check.mapping(s, line, where) is None:
            continue
        declared.add(("source", sname))
        simulator = s.get("simulator")
        if isinstance(simulator, LineMap):
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
        config = s.get("config") or LineMap()
        check_secrets(check, source.connector, config, f"{where} config", config.line)
        if isinstance(config.get("streams"), list):  # a file-based connector: streams declared in its config
            catalogs[sname] = file_catalog(check, config, where)
            if isinstance(simulator, LineMap):
                check_simulator_filetype(check, simulator, config["streams"], where)
        else:
            catalogs[sname] = load_catalog(source.connector)
        if isinstance(simulator, LineMap):
            source = source.model_copy(update={"simulator": plain(simulator)})
        sources[sname] = source

    connections: list[Connection] = []
    seen: dict[str, int] = {}
    conns = top.get("connections")
    for index, c in enumerate(conns if isinstance(conns, list) else ()):
        if check.mapping(c, getattr(conns, "line", 1), f"connection #{index + 1}") is None:
            continue
        cname = c.get("name", f"#{index + 1}")
        where = f"connection '{cname}'" if isinstance(cname, str) else f"connection #{index + 1}"
        block = check.block(ConnectionBlock.model_validate, ConnectionBlock.keys(), c, where)
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
        streams = check_streams(check, c, where, catalogs.get(block.source, {}))
        if destination and destination.type == "s3" and streams:
            check_connection_streams_for_s3(check, c.key_lines["streams"], where, streams)
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


def destination_keys(kind: Any) -> tuple[str, ...]:
    """The keys a destination of type `kind` may have (every type's, if `kind` is unknown)."""
    models = [m for m in DESTINATION_TYPES if kind in get_args(m.model_fields["type"].annotation)]
    keys: list[str] = []
    for model in models or DESTINATION_TYPES:
        keys += [k for k in model.keys() if k not in keys]
    return tuple(keys)
