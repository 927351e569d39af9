"""`make lake-sql`: DuckDB over the lake (httpfs from its wheel, nothing downloaded), views over
the committed partitions only, compared with the warehouse table they were published from.

Real Postgres, real S3 (the session's SeaweedFS), the real publish code writing the partitions.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid

import pytest

from include.pipeline.publish import lake, lake_sql
from include.pipeline.settings import REPO_ROOT


@pytest.fixture
def pg(pg):
    """The test database (tests/support/postgres.py `pg`) with the mart this module publishes."""
    with pg, pg.cursor() as cur:
        cur.execute("create schema marts")
        cur.execute(
            "create table marts.daily_revenue (day date primary key, orders bigint, revenue numeric(14, 2), note text)"
        )
        cur.execute(
            "insert into marts.daily_revenue select date '2026-01-01' + g, g * 3, g * 10.25,"
            " case when g % 4 = 0 then null else 'd' || g end from generate_series(0, 299) g"
        )
    return pg


@pytest.fixture
def published(pg, s3_server, monkeypatch):
    """Two committed partitions of `daily_revenue` and one failed attempt's object (no manifest)."""
    monkeypatch.setattr(lake, "ROWS_PER_OBJECT", 120)  # several objects per partition
    monkeypatch.setattr(lake, "ROWS_PER_GROUP", 50)
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    lake.publish_mart(pg, client, "daily_revenue", "2026-01-06", lake_bucket=bucket, log=lambda _: None)
    with pg, pg.cursor() as cur:  # the next day's transform
        cur.execute("update marts.daily_revenue set orders = orders + 1 where day < '2026-02-01'")
    lake.publish_mart(pg, client, "daily_revenue", "2026-01-07", lake_bucket=bucket, log=lambda _: None)
    # a failed publish of 2026-01-08: a data object and no manifest; and a stray object in 01-07
    stray = next(iter(client.list_objects(bucket, prefix="marts/daily_revenue/ds=2026-01-07/", recursive=True)))
    data = client.get_object(bucket, stray.object_name).read()
    for key in ("marts/daily_revenue/ds=2026-01-08/part-failed-0000.parquet",
                "marts/daily_revenue/ds=2026-01-07/part-failed-0000.parquet"):  # fmt: skip
        client.put_object(bucket, key, io.BytesIO(data), len(data))
    return lake_sql.LakeTarget(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket)


def warehouse_rows(pg) -> list[tuple]:
    with pg.cursor() as cur:
        cur.execute("select day, orders, revenue, note from marts.daily_revenue order by day")
        return cur.fetchall()


def test_a_partition_read_through_duckdb_matches_the_warehouse_table(pg, published, tmp_path):
    extensions = tmp_path / "extensions"
    con = lake_sql.connect(published, extension_dir=extensions)
    counts = lake_sql.create_views(con, published.client(), published.bucket)
    assert counts == {"daily_revenue": 2}, "the partition without a manifest is not there"

    latest = con.execute(
        "select day, orders, revenue, note from daily_revenue where ds = date '2026-01-07' order by day"
    ).fetchall()
    assert latest == warehouse_rows(pg), "the partition is the warehouse table, row for row"
    assert con.execute("select count(*) from daily_revenue where ds = date '2026-01-06'").fetchone() == (300,)
    changed = con.execute(
        "select count(*) from daily_revenue as a join daily_revenue as b using (day)"
        " where a.ds = date '2026-01-06' and b.ds = date '2026-01-07' and b.orders = a.orders + 1"
    ).fetchone()
    assert changed == (31,), "the two days differ where the warehouse changed"
    assert con.execute("select distinct ds from daily_revenue order by ds").fetchall() == [
        (lake_sql_date("2026-01-06"),), (lake_sql_date("2026-01-07"),)
    ]  # fmt: skip
    partitions = con.execute("select mart, ds, rows, objects from lake_partitions order by ds").fetchall()
    assert partitions == [
        ("daily_revenue", lake_sql_date("2026-01-06"), 300, 3), ("daily_revenue", lake_sql_date("2026-01-07"), 300, 3)
    ]  # fmt: skip
    # httpfs came from the wheel's file; nothing was installed into the (empty) extension folder
    loaded = con.execute("select extension_name, install_path from duckdb_extensions() where loaded").fetchall()
    assert any(name == "httpfs" for name, _ in loaded)
    assert not any(extensions.rglob("*.duckdb_extension")), "no extension was downloaded or installed"
    assert con.execute("select current_setting('autoinstall_known_extensions')").fetchone() == (False,)


def lake_sql_date(text: str):
    import datetime as dt

    return dt.date.fromisoformat(text)


def test_make_lake_sql_runs_a_query_with_the_endpoint_and_keys_of_the_environment(pg, published):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("S3_", "LAKE_"))},
        "S3_ENDPOINT": published.endpoint, "S3_LAKE_READER_ACCESS_KEY": published.access_key,
        "S3_LAKE_READER_SECRET_KEY": published.secret_key, "LAKE_BUCKET": published.bucket,
    }  # fmt: skip
    query = "select ds, count(*) as n, sum(orders) as orders from daily_revenue group by ds order by ds"
    run = subprocess.run(
        [sys.executable, "-m", "include.pipeline.publish.lake_sql", "--sql", query],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with pg.cursor() as cur:
        cur.execute("select count(*), sum(orders) from marts.daily_revenue")
        rows, orders = cur.fetchone()
    assert "2026-01-07" in run.stdout and str(orders) in run.stdout and str(rows) in run.stdout, run.stdout
    assert "2026-01-08" not in run.stdout


def test_lake_sql_with_a_wrong_key_says_the_server_refused(published, monkeypatch, capsys):
    monkeypatch.setenv("S3_ENDPOINT", published.endpoint)
    monkeypatch.setenv("S3_LAKE_READER_ACCESS_KEY", published.access_key)
    monkeypatch.setenv("S3_LAKE_READER_SECRET_KEY", "not-the-key")
    monkeypatch.setenv("LAKE_BUCKET", published.bucket)
    assert lake_sql.main(["--sql", "select 1"]) == 2
    err = capsys.readouterr().err
    assert "refused: AccessDenied" in err and "not-the-key" not in err, err
