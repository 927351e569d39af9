"""Airflow tasks of the ingest stage: the simulated shop's export, then one sync per connection."""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow.sdk import BaseHook, task

from include.pipeline.ingest.connections import load_connections
from include.pipeline.ingest.embedded import sync_connection
from include.pipeline.settings import Warehouse

log = logging.getLogger(__name__)


def ingest_step(connection_name: str):
    """The DAG's ingest task of one declared connection (task id = its name), for either engine.

    The engine is read when the task RUNS (include/pipeline/ingest/engine.py): `embedded` calls
    `sync` below, `platform` syncs on the Airbyte server (include/pipeline/ingest/platform).
    """
    from include.pipeline.ingest.platform.operator import AirbyteConnectionSync

    return AirbyteConnectionSync(
        task_id=connection_name, connection_name=connection_name, execution_timeout=timedelta(minutes=30)
    )


@task(execution_timeout=timedelta(minutes=30))
def sync(connection_name: str, params: dict | None = None, ds: str | None = None, engine: str | None = None) -> dict:
    """Sync one connection from include/airbyte/connections.yaml; return records per stream.

    `params` is the DAG run's params (Airflow injects it); `full_refresh` re-reads every stream.
    `engine`: what the caller already resolved (ingest_step reads it once per task run).
    """
    full_refresh = bool((params or {}).get("full_refresh", False))
    connection = load_connections().connection(connection_name)
    if engine is None:
        from include.pipeline.ingest.engine import current_engine

        engine = current_engine()
        log.info("ingest engine: %s (Airflow Variable airbyte_engine or AIRBYTE_ENGINE)", engine)
    if engine != "embedded":
        raise ValueError(f"engine {engine!r}: this task runs the embedded engine only; use ingest_step()")
    target = Warehouse.from_airflow_connection(connection.destination.airflow_conn_id)
    if ds:  # the shop moves day by day with the logical date (include/pipeline/ingest/daily.py)
        from include.pipeline.ingest.daily import sync_day

        return sync_day(connection, target, ds, full_refresh=full_refresh, log=log.info)
    return sync_connection(connection, target, full_refresh=full_refresh, log=log.info)


EXPORTS_CONN_ID = "shop_exports"  # airflow_settings.yaml: the S3 service of the export files


def exports_client(conn_id: str = EXPORTS_CONN_ID):
    """A `minio` client for the Airflow connection of the exports' S3 (endpoint in its extra)."""
    from include.pipeline.services.s3 import client_for_airflow_connection

    return client_for_airflow_connection(BaseHook.get_connection(conn_id))


@task(execution_timeout=timedelta(minutes=30))
def shop_export(params: dict | None = None, ds: str | None = None) -> dict:
    """Stand-in for the shop's own nightly export job: write the logical date's new and changed
    records into the exports bucket (include/pipeline/ingest/shop.py), for every source of
    connections.yaml with a `simulator:` block. Reading real exports: nothing to do (delete this
    task, or leave it: it only logs that). Full refresh: the exports become one full export."""
    from include.pipeline.ingest.daily import export_shop_day

    full_refresh = bool((params or {}).get("full_refresh", False))
    simulated = [s for s in load_connections().sources.values() if s.simulator is not None]
    if not simulated:
        log.info("no source has a simulator: the connections read real exports; nothing to write")
        return {}
    client = exports_client()
    return {s.name: export_shop_day(s, client, ds, full_refresh=full_refresh, log=log.info) for s in simulated}
