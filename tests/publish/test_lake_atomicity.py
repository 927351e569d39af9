"""Reliability case 15 for the lake: the S3 server stopped in the middle of a publish, and one
upload dropped by a real proxy in front of the real S3 server.

Each runs the publish task's own code (`publish_mart.function`, the lake and warehouse reached
through AIRFLOW_CONN_* as in a run). The task fails; a reader that follows the manifest rule
never sees anything of the failed attempt (a reader thread polls the partition through it all);
the retry commits, its rows are the warehouse's, and no object of the failed attempt is left.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid

import pytest

from include.pipeline.publish import lake, tasks
from include.pipeline.services.s3 import EmbeddedS3
from tests.publish.s3_proxy import S3Proxy

ROWS = 2_500  # with 1,000 rows per object: three data objects, then the manifest
MART = "orders"


@pytest.fixture
def pg(pg):
    """The test database (tests/support/postgres.py `pg`) with the mart this module publishes."""
    with pg, pg.cursor() as cur:
        cur.execute("create schema marts")
        cur.execute("create table marts.orders (order_id bigint primary key, customer text, qty integer)")
        cur.execute("insert into marts.orders select g, 'cust ' || g, g %% 100 from generate_series(1, %s) g", (ROWS,))
    return pg


@pytest.fixture
def task_env(monkeypatch, warehouse, small_objects):
    """The publish task's connections: the warehouse reader (here the test database's owner) and
    the lake, set by `point_lake_at(endpoint, access_key, secret_key)`; metrics off."""
    reader = {
        "conn_type": "postgres", "host": warehouse.host, "port": warehouse.port, "login": warehouse.user,
        "password": warehouse.password, "schema": warehouse.database,
    }  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_READER", json.dumps(reader))
    monkeypatch.setenv("STACK_METRICS", "off")

    def point_lake_at(endpoint: str, access_key: str, secret_key: str, bucket: str) -> None:
        lake_conn = {
            "conn_type": "aws", "login": access_key, "password": secret_key,
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps(lake_conn))
        monkeypatch.setenv("LAKE_BUCKET", bucket)

    return point_lake_at


@pytest.fixture
def small_objects(monkeypatch):
    monkeypatch.setattr(lake, "ROWS_PER_GROUP", 400)
    monkeypatch.setattr(lake, "ROWS_PER_OBJECT", 1_000)


def run_task(ds: str, run_id: str) -> dict:
    """The publish task's code for the mart, as one try of the task runs it."""
    return tasks.publish_mart.function(MART, ds=ds, run_id=run_id, dag=None)


def warehouse_rows(pg) -> list[tuple]:
    with pg.cursor() as cur:
        cur.execute("select order_id, customer, qty from marts.orders order by order_id")
        return cur.fetchall()


def lake_rows(client, bucket: str, ds: str) -> list[tuple] | None:
    """The partition as a reader following the manifest rule sees it (None: not committed)."""
    table = lake.read_partition(client, MART, ds, lake_bucket=bucket)
    if table is None:
        return None
    return sorted(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))


def keys_under(client, bucket: str, ds: str) -> set[str]:
    prefix = lake.partition_prefix(MART, ds)
    return {o.object_name for o in client.list_objects(bucket, prefix=prefix, recursive=True)}


def committed_keys(manifest: dict) -> set[str]:
    prefix = lake.partition_prefix(MART, manifest["ds"])
    return {o["key"] for o in manifest["objects"]} | {prefix + lake.MANIFEST}


class Reader(threading.Thread):
    """Reads the partition through the manifest rule, over and over, while a publish runs; keeps
    every distinct view it got (as a tuple of rows) and every error other than the server being
    unreachable."""

    def __init__(self, client, bucket: str, ds: str):
        super().__init__(daemon=True)
        self.client, self.bucket, self.ds = client, bucket, ds
        self.views: set[tuple | None] = set()
        self.reads = 0
        self.errors: list[Exception] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                rows = lake_rows(self.client, self.bucket, self.ds)
            except lake.PublishError as exc:  # a checksum mismatch: a partial partition was visible
                self.errors.append(exc)
                continue
            except Exception:  # noqa: BLE001 - the server is down: nothing to read, nothing seen
                self.halt.wait(0.05)
                continue
            self.views.add(None if rows is None else tuple(rows))
            self.reads += 1

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)


def reader_client(server: EmbeddedS3):
    """A client that gives up at once when the server is down (the reader polls again anyway)."""
    import urllib3
    from minio import Minio

    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=10), retries=False)
    return Minio(
        f"127.0.0.1:{server.port}", access_key=server.access_key, secret_key=server.secret_key, secure=False,
        http_client=http,
    )  # fmt: skip


def change_the_mart(pg) -> None:
    """The next day's transform: some rows changed, some gone."""
    with pg, pg.cursor() as cur:
        cur.execute("update marts.orders set qty = qty + 1000 where order_id <= 1500")
        cur.execute("delete from marts.orders where order_id > 2400")


def test_one_upload_dropped_by_a_proxy_fails_the_task_and_the_retry_commits(pg, s3_server, task_env):
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    ds = "2026-01-10"
    direct = s3_server.client()
    direct.make_bucket(bucket)
    task_env(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket)
    first = run_task(ds, "run-1")
    before = lake_rows(direct, bucket, ds)
    assert first["rows"] == ROWS and len(before) == ROWS
    change_the_mart(pg)

    with S3Proxy(s3_server.endpoint, fail_put=2) as proxy:  # the attempt's second data object
        task_env(proxy.endpoint, s3_server.access_key, s3_server.secret_key, bucket)
        reader = Reader(reader_client(s3_server), bucket, ds)
        reader.start()
        try:
            with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the client raises, the try fails
                run_task(ds, "run-2")
            during_failure = set(reader.views)
            assert lake.read_manifest(direct, MART, ds, lake_bucket=bucket)["attempt"] == first["attempt"]
            assert lake_rows(direct, bucket, ds) == before
            leftovers = keys_under(direct, bucket, ds) - committed_keys(
                lake.read_manifest(direct, MART, ds, lake_bucket=bucket)
            )
            assert len(leftovers) == 1, f"the failed try's first object is there, unlisted: {leftovers}"
            assert proxy.dropped >= 2, "the client retried the dropped upload itself, and failed again"

            proxy.heal()  # the link is back for the task's next try, through the same proxy
            retried = run_task(ds, "run-2")
        finally:
            reader.stop()
    assert reader.errors == [], f"a reader saw a partition that fails its manifest: {reader.errors}"
    assert reader.reads > 0
    expected = warehouse_rows(pg)
    assert during_failure == {tuple(before)}, "while the try failed, readers saw only the committed partition"
    assert reader.views <= {tuple(before), tuple(expected)}, "a reader only ever sees a whole committed partition"
    assert retried["rows"] == len(expected) == 2_400
    assert lake_rows(direct, bucket, ds) == expected
    manifest = lake.read_manifest(direct, MART, ds, lake_bucket=bucket)
    assert keys_under(direct, bucket, ds) == committed_keys(manifest), "no object of the failed try is left"


@pytest.fixture(scope="module")
def own_s3(tmp_path_factory):
    """An S3 server this module stops and starts again: stopping the session's server would take
    it from every other test if it failed to come back."""
    server = EmbeddedS3(
        tmp_path_factory.mktemp("s3-stopped"), access_key=secrets.token_hex(10), secret_key=secrets.token_urlsafe(24)
    )
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "stop_after", [1, 3], ids=["after-the-first-object", "after-the-last-object-before-the-manifest"]
)
def test_the_s3_server_stopped_mid_publish_fails_the_task_and_the_retry_commits(pg, own_s3, task_env, stop_after):
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    ds = "2026-01-11"
    direct = own_s3.client()
    direct.make_bucket(bucket)
    task_env(own_s3.endpoint, own_s3.access_key, own_s3.secret_key, bucket)
    first = run_task(ds, "run-1")
    before = lake_rows(direct, bucket, ds)
    change_the_mart(pg)

    uploads = []
    real_fput = None

    def fput_then_stop(client, *args, **kwargs):
        """The real upload; after the `stop_after`-th one the server is stopped (SIGTERM, as
        `make stop` does), before the publish goes on to its next object or its manifest."""
        result = real_fput(client, *args, **kwargs)
        uploads.append(args[1])
        if len(uploads) == stop_after:
            assert own_s3.stop()
        return result

    from minio import Minio

    real_fput = Minio.fput_object
    reader = Reader(reader_client(own_s3), bucket, ds)
    reader.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Minio, "fput_object", fput_then_stop)
            with pytest.raises(Exception):  # noqa: B017, PT011 - connection refused, whatever the client wraps it in
                run_task(ds, "run-2")
        assert len(uploads) == stop_after
        assert own_s3.running_pid() is None
        own_s3.start()  # the lake is back, on the same port
        assert lake.read_manifest(direct, MART, ds, lake_bucket=bucket)["attempt"] == first["attempt"]
        assert lake_rows(direct, bucket, ds) == before, "the committed partition survived, untouched"
        assert set(uploads) <= keys_under(direct, bucket, ds), "the failed try's objects are there, unlisted"
        retried = run_task(ds, "run-2")
    finally:
        reader.stop()
    expected = warehouse_rows(pg)
    assert reader.errors == [], f"a reader saw a partition that fails its manifest: {reader.errors}"
    assert reader.reads > 0 and tuple(before) in reader.views, "the reader read while the lake was up"
    assert reader.views <= {tuple(before), tuple(expected)}, "a reader only ever sees a whole committed partition"
    assert retried["rows"] == len(expected)
    assert lake_rows(direct, bucket, ds) == expected
    manifest = lake.read_manifest(direct, MART, ds, lake_bucket=bucket)
    assert keys_under(direct, bucket, ds) == committed_keys(manifest), "no object of the failed try is left"
