"""The lake_check DAG's check: a committed partition read back with DuckDB against its manifest
(real Postgres, real S3)."""

from __future__ import annotations

import io
import json
import uuid

import psycopg2
import pytest

from include.pipeline.publish import lake, lake_check, lake_sql


@pytest.fixture
def target(warehouse, s3_server, monkeypatch):
    """daily_revenue's partition 2026-01-06 committed in a fresh bucket, three objects."""
    monkeypatch.setattr(lake, "ROWS_PER_OBJECT", 120)
    conn = psycopg2.connect(
        host=warehouse.host, port=warehouse.port, user=warehouse.user, password=warehouse.password,
        dbname=warehouse.database,
    )  # fmt: skip
    with conn, conn.cursor() as cur:
        cur.execute("create schema if not exists marts")
        cur.execute("drop table if exists marts.daily_revenue")
        cur.execute("create table marts.daily_revenue (day date primary key, orders bigint, revenue numeric(14, 2))")
        cur.execute(
            "insert into marts.daily_revenue select date '2026-01-01' + g, g, g * 1.5 from generate_series(0, 299) g"
        )
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    lake.publish_mart(conn, s3_server.client(), "daily_revenue", "2026-01-06", lake_bucket=bucket, log=lambda _: None)
    conn.close()
    return lake_sql.LakeTarget(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket)


def test_a_committed_partition_matches_its_manifest(target):
    [result] = lake_check.check_partition(target, ["daily_revenue"], "2026-01-06")
    assert (result["rows"], result["objects"], result["problems"]) == (300, 3, [])


def test_an_object_that_differs_from_the_manifest_and_a_missing_partition_are_named(target):
    client = target.client()
    manifest = lake.read_manifest(client, "daily_revenue", "2026-01-06", lake_bucket=target.bucket)
    first, last = manifest["objects"][0]["key"], manifest["objects"][-1]["key"]
    data = client.get_object(target.bucket, last).read()  # the last object's 60 rows in the first's place
    client.put_object(target.bucket, first, io.BytesIO(data), len(data))
    manifest["rows"] += 1
    body = json.dumps(manifest).encode()
    client.put_object(target.bucket, lake.partition_prefix("daily_revenue", "2026-01-06") + lake.MANIFEST,
                      io.BytesIO(body), len(body))  # fmt: skip
    with pytest.raises(lake_check.LakeCheckError) as raised:
        lake_check.check_partition(target, ["daily_revenue", "orders_by_day"], "2026-01-06")
    message = str(raised.value)
    assert f"s3://{target.bucket}/{first}: 60 rows, the manifest says 120" in message, message
    assert "240 rows in its objects, the manifest says 301" in message, message
    assert "orders_by_day/ds=2026-01-06/: no manifest" in message, message
