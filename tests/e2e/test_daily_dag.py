"""End to end: `airflow dags test` of the daily DAG, through the same command as `make demo`."""

from __future__ import annotations

import pytest
from psycopg2 import sql

from include.pipeline import identifiers
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded_sync import expected_counts
from include.pipeline.publish import artifacts as artifacts_module
from tests.support import E2E_DATE
from tests.support.cosmos_tasks import dbt_manifest, last_task, models_with_tests, run_task

pytestmark = pytest.mark.e2e

LAYERS = {
    "raw.users": "id",
    "raw.products": "id",
    "raw.purchases": "id",
    "staging.stg_shop__users": "customer_id",
    "staging.stg_shop__products": "product_id",
    "staging.stg_shop__purchases": "purchase_id",
    "marts.customers": "customer_id",
    "marts.orders": "order_id",
    "marts.products": "product_id",
}


def expected() -> dict[str, int]:
    """Raw rows for E2E_DATE: the simulated shop as of that date (include/simulator/shop.py)."""
    return expected_counts(E2E_DATE, load_connections().connection("shop_to_warehouse").source)


def counts(stack) -> dict[str, tuple[int, int]]:
    return {
        table: stack.sql(
            sql.SQL("select count(*), count(distinct {}) from {}").format(
                sql.Identifier(key), identifiers.relation(table)
            )
        )[0]
        for table, key in LAYERS.items()
    }


@pytest.mark.timeout(2400)  # the shared stack's first run (when this test sets it up), a copy, three reruns
def test_the_daily_dag_runs_green_and_a_rerun_of_the_same_day_changes_nothing(own_stack):
    stack = own_stack  # the reruns replace the day's run
    out = stack.first_run.stdout
    assert "run state: success" in out, out[-3000:]
    assert "not successful" not in out
    log = stack.demo_log(stack.first_run)  # Airflow's output: every task's log
    first = counts(stack)
    # the shop's exports: 1000 customers and orders on 2026-01-01, 20 more of each a day, 100
    # products; staging and marts follow raw
    rows = expected()
    assert rows["users"] == 1080
    for stream in ("users", "products", "purchases"):
        assert first[f"raw.{stream}"] == (rows[stream], rows[stream])
    assert first["marts.customers"] == first["staging.stg_shop__users"] == (rows["users"], rows["users"])
    assert first["marts.orders"] == first["staging.stg_shop__purchases"] == (rows["purchases"], rows["purchases"])
    # every dbt model ran as its own task, with its tests after it (if it has any), and all succeeded
    manifest = dbt_manifest()
    tested = models_with_tests(manifest)
    for model in (n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"):
        assert f"task_id={run_task(model, tested)}" in log and f"task_id={last_task(model, tested)}" in log

    assert "task_id=shop_export" in log and "shop export 2026-01-05 (full)" in log, "the first export: the whole shop"

    # reliability case 11: the same interval cleared (`dags test` clears the date's task instances
    # and replaces its run) and run again, three times: every layer identical, no duplicate key,
    # the raw tables' rows byte for byte, and the same lake objects: the exports (same keys, etags
    # and last-modified times), the raw history, and each mart's committed partition (the same
    # objects, named by their content, with the same rows and sha256)
    layers, lake, raw = every_layer(stack), lake_objects(stack), raw_checksums(stack)
    history, marts = raw_history(stack), mart_partitions(stack)
    assert layers["raw.users"] == (rows["users"], 0) and lake and history
    assert {t: d for t, (_, d) in layers.items() if d} == {}, "no duplicate key in any layer"
    assert all(m["rows"] and m["objects"] for m in marts.values()), marts
    for rerun in (1, 2, 3):
        again = stack.cli("demo", "--date", E2E_DATE)
        assert "run state: success" in again.stdout, again.stdout[-3000:]
        assert counts(stack) == first, f"rerun {rerun}: identical row counts, zero duplicate keys"
        assert every_layer(stack) == layers, f"rerun {rerun}: every layer as after the first run"
        assert raw_checksums(stack) == raw, f"rerun {rerun}: the raw tables' rows unchanged, byte for byte"
        assert lake_objects(stack) == lake, f"rerun {rerun}: no export object rewritten or added"
        assert raw_history(stack) == history, f"rerun {rerun}: no raw history object rewritten or added"
        assert mart_partitions(stack) == marts, f"rerun {rerun}: every mart partition as after the first run"
        # the rerun's export rewrote no file, so source-s3 read nothing new
        again_log = stack.demo_log(again)
        assert "0 file(s) written" in again_log and "0 records: users=0, products=0, purchases=0" in again_log


def every_layer(stack) -> dict[str, tuple[int, int | None]]:
    """(rows, keys found more than once) of every relation the run summary lists, from raw to the
    snapshot (include/pipeline/cli/report.py: each model's key is the column its unique test checks)."""
    from include.pipeline.cli.report import layer_tables

    out = {}
    for _, schema, name, key in layer_tables():
        table = sql.Identifier(schema, name)
        rows = stack.sql(sql.SQL("select count(*) from {}").format(table))[0][0]
        cols = sql.SQL(", ").join(sql.Identifier(k) for k in key)
        dupes = (
            stack.sql(
                sql.SQL("select count(*) from (select {c} from {t} group by {c} having count(*) > 1) d").format(
                    c=cols, t=table
                )
            )[0][0]
            if key
            else None
        )
        out[f"{schema}.{name}"] = (rows, dupes)
    return out


def s3_client(stack):
    import json

    from minio import Minio

    port = json.loads((stack.root / ".local" / "services.json").read_text())["s3"]["port"]
    env = dict(line.split("=", 1) for line in (stack.root / ".env").read_text().splitlines() if "=" in line)
    return Minio(f"127.0.0.1:{port}", env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], secure=False)


def lake_objects(stack, prefix: str | None = None) -> dict[str, tuple[str, int, object]]:
    """{key: (etag, size, last modified)} of the exports bucket of the stack's S3, or of the lake
    bucket's objects under `prefix`."""
    from include.pipeline.publish import lake

    bucket = "shop-exports" if prefix is None else lake.bucket()
    return {
        o.object_name: (o.etag, o.size, o.last_modified)
        for o in s3_client(stack).list_objects(bucket, prefix=prefix, recursive=True)
    }


def raw_history(stack) -> dict[str, tuple[str, int, object]]:
    """The lake's raw history: every sync's records as Parquet objects (the lake connection's own
    cursor state, `_airbyte_state/`, is the connector's bookkeeping, not records)."""
    from include.airbyte_runtime.lake import STATE_FOLDER

    return {k: v for k, v in lake_objects(stack, "raw_history/").items() if f"/{STATE_FOLDER}/" not in k}


def mart_partitions(stack) -> dict[str, dict]:
    """Each mart's committed E2E_DATE partition: its rows and its objects (key, rows, sha256), read
    through its manifest with every checksum verified."""
    from include.pipeline.publish import lake
    from include.pipeline.publish.tasks import marts

    client = s3_client(stack)
    out = {}
    for _, relation in sorted(marts().values()):
        manifest = lake.read_manifest(client, relation, E2E_DATE)
        assert manifest, f"{relation}: no committed partition for {E2E_DATE}"
        table = lake.read_partition(client, relation, E2E_DATE)  # raises on a checksum that differs
        assert table.num_rows == manifest["rows"]
        out[relation] = {
            "rows": manifest["rows"],
            "objects": [(o["key"], o["rows"], o["sha256"]) for o in manifest["objects"]],
        }
    return out


def raw_checksums(stack) -> dict[str, tuple[int, str]]:
    """(rows, md5 of every row's text in a fixed order) of each raw table the declared connections
    load into the warehouse (include/pipeline/cli/report.py `layer_tables`)."""
    from include.pipeline.cli.report import layer_tables

    query = "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {} t"
    return {
        f"{schema}.{name}": tuple(stack.sql(sql.SQL(query).format(sql.Identifier(schema, name)))[0])
        for layer, schema, name, _ in layer_tables()
        if layer == "raw"
    }


def test_the_embedded_s3_listens_on_127_0_0_1_only_and_requires_its_keys(stack):
    import json

    import psutil
    from minio import Minio
    from minio.error import S3Error

    state = json.loads((stack.root / ".local" / "services.json").read_text())["s3"]
    pid = int((stack.root / ".local" / "s3" / "weed.pid").read_text())
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="inet")
        if c.pid == pid and c.status == psutil.CONN_LISTEN
    }
    assert listening == {("127.0.0.1", port) for port in state["ports"].values()}, listening
    anonymous = Minio(f"127.0.0.1:{state['port']}", secure=False)
    with pytest.raises(S3Error):
        anonymous.list_buckets()
    env = dict(line.split("=", 1) for line in (stack.root / ".env").read_text().splitlines() if "=" in line)
    client = Minio(f"127.0.0.1:{state['port']}", env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], secure=False)
    assert any(
        o.object_name.startswith("users/2026-01-05/") for o in client.list_objects("shop-exports", recursive=True)
    )
    identities = stack.root / ".local" / "s3" / "s3-identities.json"
    assert identities.stat().st_mode & 0o777 == 0o600


def test_the_summary_lists_layers_and_task_states(stack):
    out = stack.first_run.stdout
    assert f"Summary of ecommerce_daily for {E2E_DATE}" in out
    for relation in LAYERS:
        assert relation in out
    import re

    assert re.search(r"run state: success; tasks: \d+ success\n", out), "every task succeeded, none in another state"
    assert "wall time: dags test" in out


def test_the_demo_prints_one_line_per_task_and_its_runs_last_as_long_as_they_ran(stack):
    """The terminal gets one progress line per task (not Airflow's log, which goes to the file the
    demo names); the run in Airflow's metadata DB starts when it was made, not on its logical date,
    so the web UI shows its real duration (not "Total: 322d")."""
    import datetime as dt
    import re
    import sqlite3

    out = stack.first_run.stdout
    lines = re.findall(r"^  \[\s*\d+/(\d+)\] (\S+)\s+(\w+)\s+[\d.]+ s$", out, re.M)
    tasks = int(re.search(r"run state: success; tasks: (\d+) success", out).group(1))
    assert len(lines) == tasks and {total for total, _, _ in lines} == {str(tasks)}, out[-4000:]
    assert {state for _, _, state in lines} == {"success"}
    assert "task_id=" not in out and "[DAG TEST]" not in out, "Airflow's own log stays in the file"
    assert "[DAG TEST] running task" in stack.demo_log(stack.first_run)

    db = sqlite3.connect(stack.root / ".local" / "airflow" / "airflow.db")
    try:
        (run_id, logical, start, end) = db.execute(
            "select run_id, logical_date, start_date, end_date from dag_run where dag_id = 'ecommerce_daily' "
            "and date(logical_date) = ? order by id desc limit 1",
            (E2E_DATE,),
        ).fetchone()
        names = {t for (t,) in db.execute("select task_id from task_instance where run_id = ?", (run_id,))}
    finally:
        db.close()
    assert {name for _, name, _ in lines} == names, "every task of the run has its line"
    logical, start, end = (dt.datetime.fromisoformat(v).replace(tzinfo=dt.UTC) for v in (logical, start, end))
    assert start - logical > dt.timedelta(days=1), "the run started when it was made, long after its logical date"
    assert dt.timedelta(0) < end - start < dt.timedelta(hours=1), (start, end)
    assert dt.datetime.now(dt.UTC) - start < dt.timedelta(hours=12)


def test_services_print_a_url_psql_can_open_and_a_second_start_is_harmless(stack):
    started = stack.cli("services", "start")
    assert "already running" in started.stdout
    assert "postgresql://postgres:***@127.0.0.1:" in started.stdout
    url = stack.cli("services", "url").stdout.strip()
    import shutil
    import subprocess

    from include.pipeline.services.postgres import _bin_dir

    psql_bin = shutil.which("psql") or str(_bin_dir() / "psql")  # Debian's client, else the wheel's own
    psql = subprocess.run([psql_bin, url, "-tAc", "select count(*) from raw.users"], capture_output=True, text=True)
    assert psql.stdout.strip() == str(expected()["users"]), psql.stderr


def test_every_mart_is_in_the_lake_with_the_warehouse_rows_and_the_run_artifacts(stack):
    """After the demo run: each mart's ds partition has the warehouse's row count and checksums,
    metrics.lake_partitions has its row, and the run's dbt artifacts are in the lake."""
    import json

    from minio import Minio

    from include.pipeline import settings
    from include.pipeline.publish import lake
    from include.pipeline.publish.tasks import marts

    state = json.loads((stack.root / ".local" / "services.json").read_text())["s3"]
    keys = settings.read_env_file(stack.root / ".env")
    client = Minio(
        f"127.0.0.1:{state['port']}", access_key=keys["S3_ACCESS_KEY"], secret_key=keys["S3_SECRET_KEY"], secure=False
    )
    found = marts()
    assert len(found) >= 5
    for _model, (schema, relation) in sorted(found.items()):
        table = lake.read_partition(client, relation, E2E_DATE)  # verifies every object's sha256
        assert table is not None, f"{relation}: no committed partition for {E2E_DATE}"
        assert (
            table.num_rows
            == stack.sql(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, relation)))[0][0]
        )
    recorded = dict(stack.sql("select mart, rows from metrics.lake_partitions where ds = %s", (E2E_DATE,)))
    assert set(recorded) == {relation for _, relation in found.values()}
    artifacts = {
        o.object_name for o in client.list_objects(lake.bucket(), prefix="artifacts/ecommerce_daily/", recursive=True)
    }
    assert any(k.endswith("/dbt_build/run_results.json") for k in artifacts), sorted(artifacts)[:20]
    assert any(k.endswith("/dbt_docs/index.html") for k in artifacts), sorted(artifacts)[:20]
    manifest = lake.read_manifest(client, "orders", E2E_DATE)
    assert manifest["dbt_invocation_id"], "the partition names the dbt build that made it"
    build = artifacts_module.final_prefix("ecommerce_daily", manifest["run_id"]) + "dbt_build/run_results.json"
    assert build in artifacts, sorted(artifacts)[:20]
    run_results = json.loads(client.get_object(lake.bucket(), build).read())
    assert manifest["dbt_invocation_id"] == run_results["metadata"]["invocation_id"]
