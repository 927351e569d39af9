"""`check-connections`, `catalogs`, `scaffold-source`, `airbyte-plan` / `airbyte-apply`: include/airbyte/connections.yaml."""

from __future__ import annotations

import argparse
import json
import sys

from include.pipeline import environments, settings
from include.pipeline.cli._common import PY, run, say
from include.pipeline.services import ServiceError


def cmd_check_connections(args: argparse.Namespace) -> int:
    from include.pipeline.ingest.declaration import ConnectionsConfigError, load_connections

    try:
        config = load_connections(args.file)
    except ConnectionsConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    for c in config.connections:
        streams = ", ".join(
            f"{s.name} ({s.sync_mode}, cursor {s.cursor_field}, pk {list(s.primary_key)})" for s in c.streams
        )
        d = c.destination
        target = f"{d.name}.{d.schema}" if d.type != "s3" else f"{d.name} (s3://{d.s3.bucket}/{d.s3.path_prefix}/)"
        print(f"{c.name}: {c.source.name} [{c.source.connector}] -> {target}: {streams}")
    print(f"{config.path}: {len(config.connections)} connection(s), valid")
    return 0


def cmd_catalogs(_: argparse.Namespace) -> int:
    from include.pipeline.ingest.catalog import write_snapshot
    from include.pipeline.ingest.declaration import load_connections

    for source in load_connections().sources.values():
        if isinstance(source.config.get("streams"), list):
            say(f"{source.connector}: streams declared in connections.yaml (source '{source.name}'); no snapshot")
            continue
        say(f"{source.connector}: discover -> {write_snapshot(source)}")
    return 0


def cmd_scaffold_source(args: argparse.Namespace) -> int:
    from include.pipeline.ingest.declaration import ConnectionsConfigError, load_connections
    from include.pipeline.transform import scaffold

    try:
        files = scaffold.plan(load_connections(args.file), args.source)
    except (ConnectionsConfigError, scaffold.ScaffoldError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written, skipped = scaffold.write(files)

    def shown(path):  # relative to the clone when under it
        return path.relative_to(settings.REPO_ROOT) if path.is_relative_to(settings.REPO_ROOT) else path

    for path in written:
        print(f"wrote    {shown(path)}")
    for path in skipped:
        print(f"skipped  {shown(path)} (exists; delete it to have it written again)")
    print(f"{args.source}: {len(written)} file(s) written, {len(skipped)} skipped")
    if written:
        print(
            "next: `make lint`, then `make demo` (make setup parses the dbt project again: the DAG gets a task per model)"
        )
    return 0


def settings_connections_env(env: dict[str, str]) -> dict[str, str]:
    """AIRFLOW_CONN_<ID> (JSON) for every connection of airflow_settings.yaml that `env` does not
    define already: the values `make settings` would load into Airflow, read from the same file
    and .env, so a command that needs a connection works before Airflow's database is set up."""
    from include.pipeline.airflow_settings import render

    found = {}
    for c in render(settings.AIRFLOW_SETTINGS_FILE, env).get("connections") or []:
        key = f"AIRFLOW_CONN_{c['conn_id'].upper()}"
        port = c.get("conn_port")
        fields = {
            "conn_type": c["conn_type"],
            "host": c.get("conn_host"),
            "port": int(port) if port not in (None, "") else None,
            "login": c.get("conn_login"),
            "password": c.get("conn_password"),
            "schema": c.get("conn_schema"),
            "extra": c.get("conn_extra"),
        }
        if key not in env:
            found[key] = json.dumps({k: v for k, v in fields.items() if v not in (None, "")})
    return found


def cmd_airbyte(args: argparse.Namespace) -> int:
    """plan / apply on the Airbyte server of the Airflow connection airbyte_default (AIRBYTE_CONN_ID).

    The destination comes from the Airflow connection `warehouse`: taken from airflow_settings.yaml
    (as `make settings` loads it) when the environment does not define it, so `make setup` +
    `make services` are enough; the embedded warehouse must have been started once for its port."""
    from include.pipeline.airflow_settings import SettingsError

    embedded = not (settings.setting("WAREHOUSE_HOST") or settings.setting("WAREHOUSE_PORT"))
    if embedded and not settings.services_state().get("postgres", {}).get("port"):
        raise ServiceError(
            "the Airbyte destination is the warehouse, and the embedded one has never been started here "
            "(its port is unknown): run `make services` first, or set WAREHOUSE_HOST / WAREHOUSE_PORT / "
            "WAREHOUSE_USER / WAREHOUSE_DB for a warehouse of your own"
        )
    try:
        env = environments.setup_env()  # a setup command: the S3 keys connections.yaml names, from .env
        env.update(settings_connections_env(env))
    except (RuntimeError, SettingsError) as exc:  # no .env yet, or a ${VAR} of airflow_settings.yaml unset
        raise ServiceError(str(exc)) from None
    extra = ["--file", args.file] if args.file else []
    module = "include.pipeline.ingest.airbyte_server.apply"
    return run([PY, "-m", module, args.command.removeprefix("airbyte-"), *extra], env=env, check=False).returncode
