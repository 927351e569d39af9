"""Airflow tasks of the ingest stage: the simulated shop's export, then one sync per connection."""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow.sdk import BaseHook, task

from include.pipeline.ingest.connection_sync import AirbyteConnectionSync
from include.pipeline.ingest.declaration import load_connections

log = logging.getLogger(__name__)


def ingest_step(connection_name: str, trigger_rule: str = "all_success") -> AirbyteConnectionSync:
    """The DAG's ingest task of one declared connection (task id = its name), for either engine.

    The engine is read when the task RUNS (include/pipeline/ingest/connection_sync.py): `embedded` runs
    PyAirbyte (embedded_sync.py `run_embedded`), `platform` syncs on the Airbyte server (airbyte_server/).
    Its outlets are the tables (or lake folders) it writes, one Asset per stream (pipeline/assets.py).
    """
    from include.pipeline.assets import connection_outputs

    return AirbyteConnectionSync(
        task_id=connection_name, connection_name=connection_name, execution_timeout=timedelta(minutes=30),
        outlets=connection_outputs(load_connections().connection(connection_name)), trigger_rule=trigger_rule,
    )  # fmt: skip


EXPORTS_CONN_ID = "shop_exports_writer"  # airflow_settings.yaml: the exports bucket as its writer


def exports_client(conn_id: str = EXPORTS_CONN_ID):
    """A `minio` client for the Airflow connection of the exports' S3 (endpoint in its extra)."""
    from include.pipeline.services.s3 import client_for_airflow_connection

    return client_for_airflow_connection(BaseHook.get_connection(conn_id))


@task(execution_timeout=timedelta(minutes=30))
def shop_export(params: dict | None = None, ds: str | None = None) -> dict:
    """Stand-in for the shop's own nightly export job: write the logical date's new and changed
    records into the exports bucket (include/simulator/shop.py), for every source of
    connections.yaml with a `simulator:` block. Reading real exports: nothing to do (delete this
    task, or leave it: it only logs that). A reset of the ingest (param `reset_ingest`): the exports
    become one full export; a dbt full refresh (param `full_refresh`) exports the day as usual."""
    from include.pipeline.ingest.connection_sync import resets_ingest
    from include.pipeline.ingest.embedded_sync import export_shop_day

    full_refresh = resets_ingest(params)
    simulated = [s for s in load_connections().sources.values() if s.simulator is not None]
    if not simulated:
        log.info("no source has a simulator: the connections read real exports; nothing to write")
        return {}
    client = exports_client()
    return {s.name: export_shop_day(s, client, ds, full_refresh=full_refresh, log=log.info) for s in simulated}
