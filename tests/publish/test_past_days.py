"""A past day's partition is immutable once the lake holds a later day of the mart
(include/pipeline/publish/past_days.py), against the session's real Postgres and real S3.

Each runs the publish task's own code (`publish_mart.function`, the lake and warehouse reached
through AIRFLOW_CONN_* as in a run): the later day's mart differs from the earlier day's, as it
does in the warehouse once a later day ran, so a rewrite of the earlier partition would show.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.pipeline.publish import lake, past_days, tasks

MART = "orders"  # a mart of the dbt manifest (publish_mart looks its schema up there)
EARLIER, LATER = "2026-01-04", "2026-01-05"


@pytest.fixture
def pg(pg):
    """The test database (tests/support/postgres.py `pg`) with the mart as the earlier day built it."""
    with pg, pg.cursor() as cur:
        cur.execute("create schema marts")
        cur.execute("create table marts.orders (order_id bigint primary key, customer text, qty integer)")
        cur.execute("insert into marts.orders select g, 'cust ' || g, g % 100 from generate_series(1, 1060) g")
    return pg


@pytest.fixture
def lake_bucket(monkeypatch, warehouse, s3_server) -> str:
    """The publish task's connections (the warehouse reader: the test database's owner; the lake:
    a new bucket on the session's S3); metrics off."""
    reader = {
        "conn_type": "postgres", "host": warehouse.host, "port": warehouse.port, "login": warehouse.user,
        "password": warehouse.password, "schema": warehouse.database,
    }  # fmt: skip
    lake_conn = {
        "conn_type": "generic", "login": s3_server.access_key, "password": s3_server.secret_key,
        "extra": {"endpoint_url": s3_server.endpoint, "region_name": "us-east-1"},
    }  # fmt: skip
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_READER", json.dumps(reader))
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps(lake_conn))
    monkeypatch.setenv("LAKE_BUCKET", bucket)
    monkeypatch.setenv("STACK_METRICS", "off")
    s3_server.client().make_bucket(bucket)
    return bucket


def run_task(ds: str, run_id: str, **params) -> dict:
    """The publish task's code for the mart, as one try of a run of `ds` with `params` runs it."""
    return tasks.publish_mart.function(MART, ds=ds, run_id=run_id, dag=None, params=params)


def next_day(pg) -> None:
    """The later day's transform: more customers' orders, some changed."""
    with pg, pg.cursor() as cur:
        cur.execute("insert into marts.orders select g, 'cust ' || g, g % 100 from generate_series(1061, 1080) g")
        cur.execute("update marts.orders set qty = qty + 1 where order_id <= 10")


def lake_rows(client, bucket: str, ds: str) -> list[tuple] | None:
    table = lake.read_partition(client, MART, ds, lake_bucket=bucket)
    return None if table is None else sorted(tuple(r.values()) for r in table.to_pylist())


def warehouse_rows(pg) -> list[tuple]:
    with pg.cursor() as cur:
        cur.execute("select order_id, customer, qty from marts.orders order by order_id")
        return cur.fetchall()


def objects(client, bucket: str, ds: str) -> set[str]:
    return {o.object_name for o in client.list_objects(bucket, prefix=lake.partition_prefix(MART, ds), recursive=True)}


def test_a_rerun_of_a_past_day_keeps_its_partition_once_the_lake_holds_a_later_day(pg, s3_server, lake_bucket):
    client = s3_server.client()
    first = run_task(EARLIER, "run-earlier")
    published = lake.read_manifest(client, MART, EARLIER, lake_bucket=lake_bucket)
    before, keys = lake_rows(client, lake_bucket, EARLIER), objects(client, lake_bucket, EARLIER)
    next_day(pg)
    assert run_task(LATER, "run-later")["rows"] == first["rows"] + 20

    with pytest.raises(AirflowSkipException) as skipped:
        run_task(EARLIER, "run-earlier-again")
    message = str(skipped.value)
    assert f"kept as published at {published['committed_at']} by run run-earlier" in message
    assert f"ds={LATER}" in message and "republish=true" in message
    assert lake.read_manifest(client, MART, EARLIER, lake_bucket=lake_bucket) == published, "not rewritten"
    assert objects(client, lake_bucket, EARLIER) == keys
    assert lake_rows(client, lake_bucket, EARLIER) == before != warehouse_rows(pg)
    assert len(before) == 1060


def test_a_day_that_never_ran_behind_a_later_one_fails_without_retry_and_writes_nothing(pg, s3_server, lake_bucket):
    client = s3_server.client()
    run_task(LATER, "run-later")
    with pytest.raises(AirflowFailException, match=f"no partition, and the lake holds a later day, ds={LATER}"):
        run_task("2026-01-03", "run-gap")
    assert lake.read_manifest(client, MART, "2026-01-03", lake_bucket=lake_bucket) is None
    assert objects(client, lake_bucket, "2026-01-03") == set()


def test_republish_replaces_a_past_day_with_the_mart_as_it_is_now(pg, s3_server, lake_bucket, caplog):
    client = s3_server.client()
    run_task(EARLIER, "run-earlier")
    next_day(pg)
    run_task(LATER, "run-later")
    with caplog.at_level("WARNING", logger=tasks.log.name):
        again = run_task(EARLIER, "run-republish", republish=True)
    assert f"republish=true: the mart as it is now, with data up to ds={LATER}" in caplog.text
    assert again["rows"] == 1080 and again["run_id"] == "run-republish"
    assert lake_rows(client, lake_bucket, EARLIER) == warehouse_rows(pg)


def test_the_newest_day_is_published_again_and_uncommitted_or_other_marts_later_days_do_not_count(
    pg, s3_server, lake_bucket
):
    client = s3_server.client()
    run_task(EARLIER, "run-earlier")
    # a failed attempt's object of a later day (no manifest), and another mart's later partition
    stray = io.BytesIO(b"not committed")
    client.put_object(lake_bucket, lake.partition_prefix(MART, "2026-01-09") + "part-0000-x.parquet", stray, 13)
    other = io.BytesIO(b"{}")
    client.put_object(lake_bucket, lake.partition_prefix("customers", "2026-02-01") + lake.MANIFEST, other, 2)
    assert past_days.later_partition(client, MART, EARLIER, lake_bucket=lake_bucket) is None
    next_day(pg)
    again = run_task(EARLIER, "run-earlier-again")
    assert again["rows"] == 1080, "the newest committed day is published from the mart as it is"
    assert lake_rows(client, lake_bucket, EARLIER) == warehouse_rows(pg)
    assert past_days.later_partition(client, MART, "2026-01-01", lake_bucket=lake_bucket) == EARLIER
