"""plan / apply of include/airbyte/connections.yaml to an Airbyte server, by NAME in one workspace.

`python -m include.pipeline.ingest.airbyte_server.apply plan|apply` inside Airflow's environment (the
Makefile's `airbyte-plan` / `airbyte-apply` go through the project CLI). Secrets are never in
the YAML: source settings use `${ENV_VAR}`, the warehouse destination takes host, user and
password from its Airflow connection. The Airbyte server is the Airflow connection
`airbyte_default` (AIRBYTE_CONN_ID to change it). Applying twice changes nothing the second time.

Only what is declared is touched: sources, destinations and connections of the workspace with
other names are left alone (listed as "not managed").
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from include.pipeline.ingest import secret_fields
from include.pipeline.ingest.airbyte_server.api import AirbyteApi, AirbyteApiError
from include.pipeline.ingest.declaration import (
    Connection,
    ConnectionsConfigError,
    IngestionConfig,
    PostgresDestination,
    Source,
    load_connections,
    resolve_env,
)
from include.pipeline.ingest.declaration.s3 import platform_config
from include.pipeline.ingest.engine import PlatformSettings

SECRET_MASK = secret_fields.MASK  # what Airbyte shows instead of a secret
STATE_LOST = (
    "state lost: the new connection starts with no sync state (cursors), so its first sync reads "
    "every stream in full; the old connection's job history goes with it"
)


def airbyte_conn_id() -> str:
    return PlatformSettings.from_env().conn_id


def workspace_name(config: IngestionConfig) -> str | None:
    return PlatformSettings.from_env().workspace or config.workspace


def airflow_connection(conn_id: str) -> Any:
    """An Airflow connection from the secrets backends (AIRFLOW_CONN_* variables, then the metadata DB)."""
    from airflow.models.connection import Connection as AirflowConnection

    try:
        return AirflowConnection.get_connection_from_secrets(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        raise AirbyteApiError(
            f"Airflow connection {conn_id!r} is not defined ({type(exc).__name__}). Fix: export "
            f"AIRFLOW_CONN_{conn_id.upper()} (JSON form, see README: Airbyte platform engine) or add it in the UI"
        ) from None


def api_from_airflow(conn_id: str | None = None) -> AirbyteApi:
    return AirbyteApi.from_airflow_connection(airflow_connection(conn_id or airbyte_conn_id()))


# -- desired state ----------------------------------------------------------------------------
def source_config(source: Source, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The Airbyte source configuration: sourceType from the connector name + the declared config.

    source-s3: the public API's schema (api_sdk.yaml `source-s3`) has the keys at the top level
    (`aws_access_key_id`, `aws_secret_access_key`), while the connector we pin (4.16.1) requires
    them in a `credentials` block; both are sent, so either version of the connector accepts it.
    `input_schema` goes as the JSON string both expect (Source.resolved_config)."""
    config = {"sourceType": source.connector.removeprefix("source-"), **source.resolved_config(environ)}
    credentials = config.get("credentials")
    if config["sourceType"] == "s3" and isinstance(credentials, dict) and credentials.get("auth_type") == "iam_user":
        for key in ("aws_access_key_id", "aws_secret_access_key"):
            if key in credentials:
                config.setdefault(key, credentials[key])
    return config


def destination_config(destination: PostgresDestination, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The Airbyte Postgres destination: the Airflow connection's facts, then the declared overrides."""
    environ = dict(os.environ) if environ is None else environ
    if destination.type == "s3":  # the lake: destination-s3 (include/pipeline/ingest/declaration/s3.py)
        return platform_config(destination, environ)
    conn = airflow_connection(destination.airflow_conn_id)
    config: dict[str, Any] = {
        "destinationType": "postgres",
        "host": conn.host,
        "port": int(conn.port or 5432),
        "database": conn.schema,
        "schema": destination.schema,
        "username": conn.login,
        "password": conn.password,
    }
    config.update(resolve_env(destination.airbyte, f"destination '{destination.name}' airbyte", environ))
    missing = [k for k in ("host", "database", "username") if not config.get(k)]
    if missing:
        raise AirbyteApiError(
            f"destination '{destination.name}': the Airflow connection {destination.airflow_conn_id!r} has no "
            f"{', '.join(missing)}; fill it in (or set them under `airbyte:` in connections.yaml)"
        )
    return config


def uses_cursor(sync_mode: str) -> bool:
    """Whether Airbyte keeps the cursor a client sends for this sync mode (incremental only)."""
    return sync_mode.startswith("incremental")


def uses_primary_key(sync_mode: str) -> bool:
    """Whether the primary key matters for this sync mode (the deduplicating ones)."""
    return sync_mode in ("incremental_deduped_history", "full_refresh_overwrite_deduped")


def connection_streams(connection: Connection) -> list[dict[str, Any]]:
    """The streams as sent to Airbyte: the cursor and primary key only where the sync mode uses
    them. For the rest the server fills in the connector's defaults whatever is sent (see
    `_stream_diff`)."""
    streams = []
    for s in connection.streams:
        stream: dict[str, Any] = {"name": s.name, "syncMode": s.sync_mode}
        if uses_cursor(s.sync_mode) and s.cursor_field:
            stream["cursorField"] = [s.cursor_field]
        if uses_primary_key(s.sync_mode) and s.primary_key:
            stream["primaryKey"] = [[k] for k in s.primary_key]
        streams.append(stream)
    return streams


# -- plan -------------------------------------------------------------------------------------
@dataclass
class Change:
    action: str  # create | update | unchanged | replace
    kind: str  # source | destination | connection
    name: str
    details: list[str] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)
    current_id: str | None = None

    def line(self) -> str:
        sign = {"create": "+", "update": "~", "replace": "-/+", "unchanged": "="}[self.action]
        text = f"  {sign} {self.action} {self.kind} '{self.name}'"
        return text + ("".join(f"\n        {d}" for d in self.details))


@dataclass
class Plan:
    server: str
    workspace_id: str
    workspace: str
    changes: list[Change]
    unmanaged: list[str]

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "replace": 0, "unchanged": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    def render(self) -> str:
        lines = [f"Airbyte {self.server}, workspace '{self.workspace}' ({self.workspace_id}):"]
        lines += [c.line() for c in self.changes]
        if self.unmanaged:
            lines.append(f"  not managed (left alone): {', '.join(self.unmanaged)}")
        n = self.counts()
        lines.append(
            f"Plan: {n['create']} to create, {n['update']} to update, {n['replace']} to replace, {n['unchanged']} unchanged."
        )
        return "\n".join(lines)


def _diff(desired: Any, current: Any, path: str = "", connector: str = "") -> list[str]:
    """Differences of `desired` against `current`, for keys `desired` declares (server defaults ignored).

    Every field `connector`'s spec marks secret (secret_fields: at any depth) is masked on both
    sides, lists and nested blocks included; a masked secret on the server counts as equal:
    secrets cannot be read back. `path` starts with `configuration` for an actor's settings."""
    fields = tuple(path.split(".")[1:]) if path.startswith("configuration") else tuple(path.split("."))
    secret = bool(connector) and secret_fields.is_secret(connector, fields)
    if isinstance(desired, dict):
        current = current if isinstance(current, dict) else {}
        out: list[str] = []
        for key, value in desired.items():
            out += _diff(value, current.get(key), f"{path}.{key}" if path else key, connector)
        return out
    if secret and (current == SECRET_MASK or desired == current):
        return []
    if desired != current:
        show = (
            (lambda v: SECRET_MASK if v is not None else None)
            if secret
            else (lambda v: secret_fields.mask(connector, v, fields) if connector else v)
        )
        return [f"{path}: {show(current)!r} -> {show(desired)!r}"]
    return []


def _by_name(items: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if item["name"] in out:
            raise AirbyteApiError(
                f"two Airbyte {kind}s are named {item['name']!r} in the workspace: apply works by name; "
                f"delete or rename one of them ({out[item['name']][f'{kind}Id']}, {item[f'{kind}Id']})"
            )
        out[item["name"]] = item
    return out


def make_plan(config: IngestionConfig, api: AirbyteApi, environ: dict[str, str] | None = None) -> Plan:
    environ = dict(os.environ) if environ is None else environ
    ws_name = workspace_name(config)
    ws_id = api.workspace_id(ws_name)
    ws_label = ws_name or next(w["name"] for w in api.workspaces() if w["workspaceId"] == ws_id)
    sources = _by_name(api.sources(ws_id), "source")
    destinations = _by_name(api.destinations(ws_id), "destination")
    connections = _by_name(api.connections(ws_id), "connection")
    changes: list[Change] = []
    used_sources = {c.source.name for c in config.connections}
    used_destinations = {c.destination.name for c in config.connections}

    for name, source in config.sources.items():
        if name not in used_sources:
            continue
        desired = source_config(source, environ)
        changes.append(_actor_change("source", name, desired, sources.get(name), ws_id))
    for name, destination in config.destinations.items():
        if name not in used_destinations:
            continue
        desired = destination_config(destination, environ)
        changes.append(_actor_change("destination", name, desired, destinations.get(name), ws_id))

    for conn in config.connections:
        current = connections.get(conn.name)
        src, dst = sources.get(conn.source.name), destinations.get(conn.destination.name)
        body = {
            "name": conn.name,
            "schedule": {"scheduleType": "manual"},  # Airflow decides when to sync
            "status": "active",
            "namespaceDefinition": "destination",
            # what the server does with a new column, a type change, a removed column (schema_changes.py)
            "nonBreakingSchemaUpdatesBehavior": conn.non_breaking_schema_updates_behavior,
            "configurations": {"streams": connection_streams(conn)},
        }
        refs = {"source": conn.source.name, "destination": conn.destination.name}
        if current is None:
            changes.append(
                Change(
                    "create",
                    "connection",
                    conn.name,
                    [f"{len(conn.streams)} streams, manual schedule"],
                    {**body, "_refs": refs},
                )
            )
            continue
        details = []
        if (
            src is None
            or current["sourceId"] != src["sourceId"]
            or dst is None
            or current["destinationId"] != dst["destinationId"]
        ):
            changes.append(
                Change(
                    "replace",
                    "connection",
                    conn.name,
                    ["source or destination changed: create the new connection, then delete the old one", STATE_LOST],
                    {**body, "_refs": refs},
                    current["connectionId"],
                )
            )
            continue
        replaced = [
            f"{kind} '{name}'"
            for kind, name in (("source", conn.source.name), ("destination", conn.destination.name))
            if any(c.kind == kind and c.name == name and c.action == "replace" for c in changes)
        ]
        if replaced:  # deleting an actor deletes its connections: this one moves to the new actor
            changes.append(
                Change(
                    "replace",
                    "connection",
                    conn.name,
                    [
                        f"{' and '.join(replaced)} replaced: create the new connection, then delete the old one",
                        STATE_LOST,
                    ],
                    {**body, "_refs": refs},
                    current["connectionId"],
                )
            )
            continue
        for key in ("schedule", "status", "namespaceDefinition", "nonBreakingSchemaUpdatesBehavior"):
            details += _diff(
                {key: body[key]},
                {key: {"scheduleType": current["schedule"]["scheduleType"]} if key == "schedule" else current.get(key)},
            )
        details += _stream_diff(
            body["configurations"]["streams"], current.get("configurations", {}).get("streams") or []
        )
        changes.append(
            Change(
                "update" if details else "unchanged", "connection", conn.name, details, body, current["connectionId"]
            )
        )

    managed = (
        {("source", n) for n in used_sources}
        | {("destination", n) for n in used_destinations}
        | {("connection", c.name) for c in config.connections}
    )
    unmanaged = [
        f"{kind} '{name}'"
        for kind, items in (("source", sources), ("destination", destinations), ("connection", connections))
        for name in items
        if (kind, name) not in managed
    ]
    return Plan(api.server_url, ws_id, ws_label, changes, unmanaged)


def _actor_change(kind: str, name: str, desired: dict, current: dict | None, ws_id: str) -> Change:
    type_key = f"{kind}Type"
    body = {"name": name, "workspaceId": ws_id, "configuration": desired}
    if current is None:
        return Change("create", kind, name, [f"{type_key} {desired[type_key]}"], body)
    if current.get(type_key) not in (None, desired[type_key]):
        return Change(
            "replace",
            kind,
            name,
            [f"{type_key} {current.get(type_key)!r} -> {desired[type_key]!r}"],
            body,
            current[f"{kind}Id"],
        )
    connector = f"{kind}-{desired[type_key]}"
    details = _diff(
        {k: v for k, v in desired.items() if k != type_key},
        current.get("configuration") or {},
        "configuration",
        connector,
    )
    return Change("update" if details else "unchanged", kind, name, details, body, current[f"{kind}Id"])


def _stream_diff(desired: list[dict], current: list[dict]) -> list[str]:
    """Stream differences that a PATCH would change. Airbyte answers a full-refresh stream with
    the connector's default cursor and primary key, and an incremental one with the source's
    primary key where it defines one, whatever the client sent: only the fields the desired
    stream carries (those its sync mode uses, see `connection_streams`) are compared, so a
    second apply finds nothing to do for any sync mode."""
    cur = {s["name"]: s for s in current}
    out = []
    for s in desired:
        if s["name"] not in cur:
            out.append(f"streams.{s['name']}: added")
            continue
        for key in ("syncMode", "cursorField", "primaryKey"):
            if key in s and cur[s["name"]].get(key) != s[key]:
                out.append(f"streams.{s['name']}.{key}: {cur[s['name']].get(key)!r} -> {s[key]!r}")
    for name in sorted(cur.keys() - {s["name"] for s in desired}):
        out.append(f"streams.{name}: removed")
    return out


# -- apply ------------------------------------------------------------------------------------
def apply_plan(plan: Plan, api: AirbyteApi, say=print) -> dict[str, int]:
    """Carry out the plan: sources and destinations, then connections, then deletions. Returns the counts.

    Nothing is deleted before its replacement exists: a replaced source, destination or
    connection is created first and the old one deleted last, so a failed create leaves the old
    one, and Airbyte's sync state with it, where it was (rerun apply once the cause is fixed)."""
    ids: dict[tuple[str, str], str] = {}
    old_actors: list[tuple[str, Change]] = []
    for kind in ("source", "destination"):
        for change in (c for c in plan.changes if c.kind == kind):
            if change.action == "unchanged":
                ids[(kind, change.name)] = change.current_id
                continue
            if change.action == "update":
                result = api.request(
                    "PATCH",
                    f"/{kind}s/{change.current_id}",
                    json={"name": change.name, "configuration": change.body["configuration"]},
                )
            else:
                result = api.request("POST", f"/{kind}s", json=change.body)
                if change.action == "replace":
                    old_actors.append((kind, change))  # deleted once its connections have moved
            ids[(kind, change.name)] = result[f"{kind}Id"]
            say(
                f"  {'create' if change.action == 'replace' else change.action}d {kind} '{change.name}' ({result[f'{kind}Id']})"
            )
    for change in (c for c in plan.changes if c.kind == "connection" and c.action != "unchanged"):
        body = {k: v for k, v in change.body.items() if k != "_refs"}
        if change.action == "update":
            result = api.request("PATCH", f"/connections/{change.current_id}", json=body)
            say(f"  updated connection '{change.name}' ({result['connectionId']})")
            continue
        refs = change.body["_refs"]
        body["sourceId"] = ids[("source", refs["source"])]
        body["destinationId"] = ids[("destination", refs["destination"])]
        result = api.request("POST", "/connections", json=body)
        say(f"  created connection '{change.name}' ({result['connectionId']})")
        if change.action == "replace":
            api.request("DELETE", f"/connections/{change.current_id}")
            say(f"  deleted the connection it replaces ({change.current_id}); {STATE_LOST}")
    for kind, change in old_actors:
        api.request("DELETE", f"/{kind}s/{change.current_id}")
        say(f"  deleted the {kind} '{change.name}' it replaces ({change.current_id})")
    return plan.counts()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airbyte-apply", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["plan", "apply"])
    parser.add_argument("--file", default=None, help="connections.yaml (default: include/airbyte/connections.yaml)")
    args = parser.parse_args(argv)
    try:
        config = load_connections(args.file)  # invalid: every problem listed, nothing is called
        api = api_from_airflow()
        plan = make_plan(config, api)
        print(plan.render(), flush=True)
        if args.action == "plan":
            if plan.pending:
                print("Run `make airbyte-apply` to make these changes.")
            return 0
        if not plan.pending:
            print(f"No changes: workspace '{plan.workspace}' already matches {config.path}.")
            return 0
        counts = apply_plan(plan, api)
        print(
            f"Apply complete: {counts['create']} created, {counts['update']} updated, "
            f"{counts['replace']} replaced, {counts['unchanged']} unchanged."
        )
        return 0
    except ConnectionsConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (AirbyteApiError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
