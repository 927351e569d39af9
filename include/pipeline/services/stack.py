"""The project's embedded services, configured from settings: start, stop, and where they are.

Not part of the CLI so that `make dashboard` (observe/serve.py) and the CLI start the same
services the same way, under the same lock.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from include.pipeline import endpoints, env_file, settings
from include.pipeline.services import ServiceError, exclusive
from include.pipeline.services.postgres import EmbeddedPostgres
from include.pipeline.services.s3 import EmbeddedS3


def postgres() -> EmbeddedPostgres:
    """The embedded warehouse Postgres, at the port it last ran on (or WAREHOUSE_PORT)."""
    password = settings.setting("WAREHOUSE_PASSWORD")
    if not password:
        raise ServiceError(f"WAREHOUSE_PASSWORD is not set: run `make setup` to generate {settings.ENV_FILE}")
    port = settings.setting("WAREHOUSE_PORT") or settings.services_state().get("postgres", {}).get("port")
    return EmbeddedPostgres(settings.LOCAL_DIR / "postgres", password=password, port=int(port) if port else None)


def postgres_is_yours() -> bool:
    """WAREHOUSE_HOST is set (environment or .env): the warehouse is a Postgres of the user's, and
    no embedded Postgres is started (WAREHOUSE_PORT is then that server's port, not ours to take)."""
    return bool(settings.setting("WAREHOUSE_HOST"))


def s3() -> EmbeddedS3 | None:
    """The embedded S3 server, or None when S3_ENDPOINT (environment or .env) points at another one."""
    if settings.setting("S3_ENDPOINT"):
        return None
    keys = endpoints.S3.from_settings()
    ports = settings.services_state().get("s3", {}).get("ports", {})
    from include.pipeline.publish.lake import bucket as lake_bucket

    lake = lake_bucket()
    return EmbeddedS3(settings.LOCAL_DIR / "s3", keys.access_key, keys.secret_key, dict(ports),
                      (settings.EXPORTS_BUCKET, lake), stage_identities(lake))  # fmt: skip


def stage_identities(lake: str) -> tuple[dict, ...]:
    """Each stage's S3 identity (settings.S3_IDENTITIES) with its keys from the settings and its
    actions on its buckets only ("Read:<bucket>", ...): what EmbeddedS3 writes for weed."""
    buckets = {"exports": [settings.EXPORTS_BUCKET], "sources": source_buckets(lake), "lake": [lake]}
    stages = []
    for name, (_conn_id, where, actions) in settings.S3_IDENTITIES.items():
        stage = endpoints.S3.for_identity(name)
        stages.append({"name": name, "access_key": stage.access_key, "secret_key": stage.secret_key,
                       "actions": [f"{action}:{bucket}" for bucket in buckets[where] for action in actions]})  # fmt: skip
    return tuple(stages)


def source_buckets(lake: str) -> list[str]:
    """The exports bucket and every bucket a source of connections.yaml reads (`bucket:` of its
    config), the lake's aside: what the ingest's read-only identity may read and list. A
    declaration that does not load yet (being edited) gives the exports bucket alone."""
    found = {settings.EXPORTS_BUCKET}
    try:
        from include.pipeline.ingest.declaration import load_connections

        sources = load_connections().sources.values()
    except Exception:  # noqa: BLE001 - `make check-connections` names the problem; S3 still starts
        sources = []
    for source in sources:
        bucket = dict(source.config).get("bucket")
        if isinstance(bucket, str) and bucket and not bucket.startswith("${"):
            found.add(bucket)
    return sorted(found - {lake})


@contextlib.contextmanager
def services_lock() -> Iterator[None]:
    """One start or stop of the embedded services at a time (services/__init__.py `exclusive`)."""
    with exclusive(settings.LOCAL_DIR / "services.lock"):
        yield


def start_services() -> None:
    """Start Postgres and S3 (a no-op for what already runs) and record their ports."""
    with services_lock():
        _start_services()


def _start_services() -> None:
    env_file.ensure_env_file()  # keys added since the first setup (S3_*) are generated too
    state = settings.services_state()
    settings.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    if postgres_is_yours():
        wh = endpoints.Warehouse.from_settings()
        print(
            f"postgres: WAREHOUSE_HOST is set: the warehouse is yours, {wh.host}:{wh.port}/{wh.database}; none started"
        )
    else:
        pg = postgres()
        port = pg.start()
        state["postgres"] = {"port": port, "data_dir": str(pg.data_dir), "log": str(pg.log_file)}
        settings.SERVICES_STATE.write_text(json.dumps(state, indent=2))
    server = s3()
    if server is None:
        print(f"s3: S3_ENDPOINT is set: the S3 is yours, {settings.setting('S3_ENDPOINT')}; none started")
    else:
        try:
            server.start()
        finally:  # ports are kept even when the start failed, so `make stop` finds the process
            state["s3"] = server.state() if server.ports else {}
            settings.SERVICES_STATE.write_text(json.dumps(state, indent=2))


def stop_services() -> list[str]:
    """Stop what runs; one line per service saying what happened.

    Stopping needs no secret: on a fresh clone (no .env, nothing ever started) or after `make
    clean`, there is nothing to stop and this says so instead of failing.
    """
    if not settings.LOCAL_DIR.exists():
        return [f"nothing to stop ({settings.LOCAL_DIR} does not exist: no service was started here)"]
    lines = []
    with services_lock():
        if postgres_is_yours() and not (settings.LOCAL_DIR / "postgres" / "data").exists():
            lines.append("postgres is yours (WAREHOUSE_HOST): left running")
        elif settings.setting("WAREHOUSE_PASSWORD"):
            lines.append("postgres stopped" if postgres().stop() else "postgres was not running")
        elif (settings.LOCAL_DIR / "postgres" / "data").exists():
            # stopping does not use the password: any value serves to build the handle
            pg = EmbeddedPostgres(settings.LOCAL_DIR / "postgres", password="unused-by-stop")  # noqa: S106
            lines.append("postgres stopped" if pg.stop() else "postgres was not running")
        if settings.setting("S3_ENDPOINT"):
            return [*lines, "s3 is yours (S3_ENDPOINT): left running"]
        if settings.setting("S3_ACCESS_KEY") and settings.setting("S3_SECRET_KEY"):
            server = s3()
            if server is not None:
                lines.append("s3 stopped" if server.stop() else "s3 was not running")
    return lines
