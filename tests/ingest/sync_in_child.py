"""One embedded sync in a process of its own, as the ingest task runs it, for the kill tests.

Usage: python -m tests.ingest.sync_in_child SPEC_JSON (warehouse, records file, connector
executable, and whether to stand in for Airflow's task runner). The warehouse password comes in
WAREHOUSE_PASSWORD. With `airflow_sigterm`, SIGTERM is handled as Airflow 3's task runner does
(task_runner._on_term): call the operator's on_kill and return, the supervisor's SIGKILL follows.
With `execution_timeout`, the sync runs under Airflow's own timeout (SIGALRM raises in the task).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from include.pipeline.endpoints import Warehouse
from include.pipeline.ingest import embedded
from include.pipeline.ingest.declaration import Connection, PostgresDestination, Source, Stream


def main(spec: dict) -> int:
    executable = Path(spec["executable"])
    embedded.connector_executable = lambda connector: executable
    if spec.get("airflow_sigterm"):
        signal.signal(signal.SIGTERM, lambda signum, frame: print("on_kill called", flush=True))
    connection = Connection(
        name="kill_test",
        source=Source(
            name="protocol",
            connector="source-protocol-test",
            config={"records_file": spec["records_file"], "pause_after": 5},
        ),
        destination=PostgresDestination(name="warehouse", schema="raw", airflow_conn_id="warehouse"),
        streams=(
            Stream(
                name="items", sync_mode="incremental_deduped_history", cursor_field="updated_at", primary_key=("id",)
            ),
        ),
    )
    wh = spec["warehouse"]
    target = Warehouse(wh["host"], wh["port"], wh["user"], os.environ["WAREHOUSE_PASSWORD"], wh["database"])
    try:
        if spec.get("execution_timeout"):  # Airflow's own execution_timeout (SIGALRM raises in the task)
            from airflow.sdk.exceptions import AirflowTaskTimeout
            from airflow.sdk.execution_time.timeout import TimeoutPosix

            try:
                with TimeoutPosix(seconds=spec["execution_timeout"]):
                    embedded.sync_connection(connection, target, log=lambda line: print(line, flush=True))
            except AirflowTaskTimeout as exc:
                print(f"timed out: {exc}", flush=True)
                return 3
        else:
            embedded.sync_connection(connection, target, log=lambda line: print(line, flush=True))
    except embedded.EmbeddedSyncError as exc:
        print(f"sync ended: {exc}", flush=True)
        return 1
    print("sync finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
