"""A backfill of three days (`airflow backfill create`, run by the scheduler of a `make up` stack on
a fresh warehouse) gives the marts and lake partitions that the same three days run in order give
(`demo --days 3` on another fresh stack, run meanwhile), and re-running the last day afterwards,
then the middle day (before a day that ran), changes nothing. Compared: every mart of the dbt
manifest (the warehouse table, after the last day) and each mart's lake partition of each day
(rows, and a hash of its rows), without the columns that record when a row was loaded (they differ
between two stacks by nature)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from psycopg2 import sql

from include.pipeline.cli.demo import demo_days
from include.pipeline.publish import lake
from include.pipeline.publish.tasks import marts
from include.pipeline.services import find_free_port
from tests.e2e.test_daily_dag import s3_client
from tests.support import E2E_DATE, REPO_ROOT
from tests.support.http import call
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
DAG_ID = "ecommerce_daily"
DAYS = demo_days(E2E_DATE, 3)


def load_time(column: str) -> bool:
    """A column that records when the row was synced or built, not what the shop holds."""
    return column.endswith("extracted_at") or column.startswith(("_airbyte", "_dbt", "dbt_"))


def _rows_hash(rows: list[tuple]) -> str:
    return hashlib.sha256("\n".join(sorted(repr(r) for r in rows)).encode()).hexdigest()


def mart_tables(stack: Stack) -> dict[str, tuple[int, str]]:
    """(rows, hash of its rows) of every mart table in the warehouse."""
    out = {}
    for schema, relation in sorted(marts().values()):
        columns = [
            c
            for (c,) in stack.sql(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
                " order by ordinal_position",
                (schema, relation),
            )
            if not load_time(c)
        ]
        assert columns, f"no mart table {schema}.{relation} in the warehouse"
        rows = stack.sql(sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema, relation)
        ))  # fmt: skip
        out[f"{schema}.{relation}"] = (len(rows), _rows_hash([tuple(r) for r in rows]))
    return out


def lake_partitions(stack: Stack) -> dict[tuple[str, str], tuple[int, str]]:
    """(rows, hash of its rows) of each mart's committed partition of each of DAYS in the lake."""
    client = s3_client(stack)
    out = {}
    for _, relation in sorted(marts().values()):
        for ds in DAYS:
            manifest = lake.read_manifest(client, relation, ds)
            assert manifest, f"{relation}: no committed partition for {ds}"
            table = lake.read_partition(client, relation, ds)  # raises on a checksum that differs
            assert table.num_rows == manifest["rows"]
            table = table.select([c for c in table.column_names if not load_time(c)])
            rows = [tuple(r.values()) for r in table.to_pylist()]
            out[(relation, ds)] = (manifest["rows"], _rows_hash(rows))
    return out


def asset_events(stack: Stack, ds: str) -> int:
    """Asset events whose partition key is `ds` in the stack's Airflow metadata DB."""
    db = sqlite3.connect(stack.root / ".local" / "airflow" / "airflow.db")
    try:
        return db.execute("select count(*) from asset_event where partition_key = ?", (ds,)).fetchone()[0]
    finally:
        db.close()


def _token(base: str, stack: Stack) -> str:
    status, answer = call(
        f"{base}/auth/token", "POST", {"username": "admin", "password": stack.env["AIRFLOW_ADMIN_PASSWORD"]}
    )
    assert status in (200, 201), answer
    return answer["access_token"]


def _wait(what: str, seconds: float, check, log) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(3)
    pytest.fail(f"{what} not within {seconds:.0f} s:\n" + log.read_text()[-5000:])


@pytest.mark.timeout(2400)
def test_a_backfill_equals_the_days_run_in_order_and_reruns_of_its_last_and_middle_days_change_nothing(
    tmp_path_factory,
):
    # the same days in order on a fresh stack of its own, in a thread: beside the backfill
    in_order = Stack(tmp_path_factory.mktemp("in-order"))
    ran: list = []
    runner = threading.Thread(target=lambda: ran.append(in_order.cli("demo", "--date", DAYS[-1], "--days", "3")))
    backfilled = Stack(tmp_path_factory.mktemp("backfill"))
    runner.start()
    try:
        port = find_free_port()
        # no scheduled runs: only the backfill's
        backfilled.env.update(AIRFLOW_PORT=str(port), AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False")
        log_path = backfilled.root / "up.log"
        log = open(log_path, "w")  # noqa: SIM115 - closed below
        up = subprocess.Popen(
            [sys.executable, "-m", "include.pipeline.cli", "up"], cwd=REPO_ROOT, env=backfilled.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"

            def healthy() -> bool:
                assert up.poll() is None, log_path.read_text()[-5000:]
                status, health = call(f"{base}/api/v2/monitor/health")
                return status == 200 and all(v.get("status") == "healthy" for v in health.values())

            _wait("Airflow healthy", 300, healthy, log_path)
            token = _token(base, backfilled)
            dag = f"{base}/api/v2/dags/{DAG_ID}"
            _wait(f"the DAG {DAG_ID} in the API", 180, lambda: call(dag, token=token)[0] == 200, log_path)
            assert call(dag, "PATCH", {"is_paused": False}, token)[0] == 200
            backfilled.cli(
                "airflow", "backfill", "create", "--dag-id", DAG_ID, "--from-date", DAYS[0], "--to-date", DAYS[-1],
                "--max-active-runs", "1", "--reprocess-behavior", "completed",
            )  # fmt: skip

            runner.join(1500)
            try:
                assert ran, "the in-order `demo --days 3` failed or did not end in 1500 s (its error is above)"
                assert ran[0].stdout.count("run state: success") == len(DAYS), ran[0].stdout[-3000:]
                expected_marts, expected_lake = mart_tables(in_order), lake_partitions(in_order)
            finally:
                in_order.cli("services", "stop", check=False)

            def backfill_done() -> dict | None:
                status, answer = call(f"{dag}/dagRuns?run_type=backfill", token=_token(base, backfilled))
                assert status == 200, answer
                states = {r["logical_date"][:10]: r["state"] for r in answer["dag_runs"]}
                assert "failed" not in states.values(), f"a backfill run failed: {states}"
                return states if sorted(states) == DAYS and set(states.values()) == {"success"} else None

            _wait(f"the backfill of {DAYS}", 1500, backfill_done, log_path)
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGTERM)
                try:
                    up.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(up.pid, signal.SIGKILL)
            log.close()
        assert mart_tables(backfilled) == expected_marts, "the backfill's marts differ from the days run in order"
        assert lake_partitions(backfilled) == expected_lake, "the backfill's lake partitions differ"
        # the backfill's last day run again (`demo`: `airflow dags test`) changes nothing
        again = backfilled.cli("demo", "--date", DAYS[-1])
        assert "run state: success" in again.stdout, again.stdout[-3000:]
        assert mart_tables(backfilled) == expected_marts, f"a rerun of {DAYS[-1]} changed the marts"
        assert lake_partitions(backfilled) == expected_lake, f"a rerun of {DAYS[-1]} changed the lake partitions"
        # nor does the middle day run again, after the last: the marts now hold the last day's data,
        # so each publish keeps the partition as published (skipped, no asset event), the marts stay
        middle, client = DAYS[1], s3_client(backfilled)
        published = {rel: lake.read_manifest(client, rel, middle) for _, rel in marts().values()}
        events = asset_events(backfilled, middle)
        assert events >= len(published), f"the backfill's run of {middle} emitted an event per mart"
        again = backfilled.cli("demo", "--date", middle)
        assert "run state: success" in again.stdout, again.stdout[-3000:]
        for _, relation in marts().values():
            assert re.search(rf"\] publish\.{relation}\s+skipped", again.stdout), again.stdout[-3000:]
            assert lake.read_manifest(client, relation, middle) == published[relation], f"{relation} rewritten"
        assert mart_tables(backfilled) == expected_marts, f"a rerun of {middle} changed the marts"
        assert lake_partitions(backfilled) == expected_lake, f"a rerun of {middle} changed the lake partitions"
        assert asset_events(backfilled, middle) == events, "a kept partition got an asset event"
    finally:  # whatever failed: no service of either stack is left running
        runner.join(1500)
        in_order.cli("services", "stop", check=False)
        backfilled.cli("services", "stop", check=False)
