"""Publishing a mart to the lake, against the session's real Postgres and real S3 (SeaweedFS).

Round trip (types, NULLs, several objects and row groups), the manifest rule under a failed
upload (reliability case 15: nothing of a failed attempt is visible, the retry commits the new
rows and leaves no leftovers) and three reruns of the same ds (case 11 for the lake).
"""

from __future__ import annotations

import decimal
import json
import uuid

import pytest

from include.pipeline.publish import lake

ROWS = 2_500


@pytest.fixture
def pg(pg):
    """The test database (tests/support/postgres.py `pg`) with the mart this module publishes."""
    with pg, pg.cursor() as cur:
        cur.execute("create schema marts")
        cur.execute(
            "create table marts.orders (order_id bigint primary key, customer text, amount numeric(12, 2),"
            " ratio numeric, placed_on date, placed_at timestamptz, local_at timestamp, paid boolean,"
            " attrs jsonb, ref uuid, qty integer)"
        )
        cur.execute(
            "insert into marts.orders select g, case when g %% 7 = 0 then null else 'cust ' || g || ' \"é\"' end,"
            " (g * 1.25)::numeric(12, 2), case when g %% 5 = 0 then null else g / 3.0 end,"
            " date '2026-01-01' + (g %% 30), timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute',"
            " timestamp '2026-01-01' + g * interval '1 second', g %% 2 = 0,"
            " jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g)), md5(g::text)::uuid, g %% 100"
            " from generate_series(1, %s) g",
            (ROWS,),
        )
    return pg


@pytest.fixture
def client(s3_server):
    return s3_server.client()


@pytest.fixture
def small_objects(monkeypatch):
    """Several row groups and several objects from a few thousand rows."""
    monkeypatch.setattr(lake, "ROWS_PER_GROUP", 400)
    monkeypatch.setattr(lake, "ROWS_PER_OBJECT", 1_000)


def warehouse_rows(pg, where: str = "true") -> list[tuple]:
    with pg.cursor() as cur:
        cur.execute(f"select * from marts.orders where {where} order by order_id")  # noqa: S608 - a literal
        return cur.fetchall()


def lake_rows(client, bucket: str, ds: str) -> list[tuple]:
    table = lake.read_partition(client, "orders", ds, lake_bucket=bucket)
    assert table is not None, "the partition has a manifest"
    rows = sorted(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))
    return rows


def normalised(rows: list[tuple]) -> list[tuple]:
    """The warehouse's Python values as Parquet gives them back (jsonb -> text, uuid -> text,
    unconstrained numeric -> float)."""
    out = []
    for r in rows:
        values = list(r)
        values[3] = None if values[3] is None else float(values[3])
        values[8] = json.loads(json.dumps(values[8]))
        values[9] = str(values[9])
        out.append(tuple(values))
    return out


def objects_under(client, bucket: str, prefix: str) -> set[str]:
    return {o.object_name for o in client.list_objects(bucket, prefix=prefix, recursive=True)}


def test_round_trip_every_row_and_type_with_the_manifest_checksums(pg, client, small_objects):
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    manifest = lake.publish_mart(
        pg, client, "orders", "2026-01-07", lake_bucket=bucket, invocation_id="inv-1", run_id="r1"
    )
    assert manifest["rows"] == ROWS
    assert [o["rows"] for o in manifest["objects"]] == [1_000, 1_000, 500]
    assert manifest["dbt_invocation_id"] == "inv-1" and manifest["run_id"] == "r1"
    assert {c["name"]: c["type"] for c in manifest["schema"]}["amount"] == "decimal128(12, 2)"
    prefix = lake.partition_prefix("orders", "2026-01-07")
    assert objects_under(client, bucket, prefix) == {o["key"] for o in manifest["objects"]} | {prefix + lake.MANIFEST}

    table = lake.read_partition(client, "orders", "2026-01-07", lake_bucket=bucket)
    assert table.num_rows == ROWS
    back = lake_rows(client, bucket, "2026-01-07")
    expected = normalised(warehouse_rows(pg))
    for got, want in zip(back, expected, strict=True):
        attrs = json.loads(got[8])
        assert got[:8] == want[:8] and attrs == want[8] and got[9:] == want[9:]
    assert isinstance(back[0][2], decimal.Decimal) and back[0][5].tzinfo is not None
    assert back[6][1] is None, "NULL text stays NULL"

    # a tampered object is caught by the manifest's checksum
    first = manifest["objects"][0]["key"]
    client.put_object(bucket, first, __import__("io").BytesIO(b"not parquet"), 11)
    with pytest.raises(lake.PublishError, match="sha256"):
        lake.read_partition(client, "orders", "2026-01-07", lake_bucket=bucket)


class FailingPut:
    """The real client, whose n-th object upload fails (a dropped connection, a full disk)."""

    def __init__(self, client, fail_on: int):
        self._client, self._fail_on, self.uploads = client, fail_on, 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def fput_object(self, *args, **kwargs):
        self.uploads += 1
        if self.uploads == self._fail_on:
            raise ConnectionError("injected: upload failed")
        return self._client.fput_object(*args, **kwargs)


def test_a_failed_upload_leaves_the_committed_partition_and_the_retry_leaves_no_leftovers(pg, client, small_objects):
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    ds = "2026-01-08"
    prefix = lake.partition_prefix("orders", ds)
    assert lake.read_manifest(client, "orders", ds, lake_bucket=bucket) is None
    first = lake.publish_mart(pg, client, "orders", ds, lake_bucket=bucket)
    before = lake_rows(client, bucket, ds)

    with pg, pg.cursor() as cur:  # the next day's transform changed the mart
        cur.execute("update marts.orders set qty = qty + 1000 where order_id <= 1500")
        cur.execute("delete from marts.orders where order_id > 2400")
    failing = FailingPut(client, fail_on=2)
    with pytest.raises(ConnectionError, match="injected"):
        lake.publish_mart(pg, failing, "orders", ds, lake_bucket=bucket)
    # a reader following the manifest still sees exactly the committed partition
    assert lake.read_manifest(client, "orders", ds, lake_bucket=bucket) == first
    assert lake_rows(client, bucket, ds) == before
    leftovers = objects_under(client, bucket, prefix) - {o["key"] for o in first["objects"]} - {prefix + lake.MANIFEST}
    assert len(leftovers) == 1, "the failed attempt's first object is there, unlisted"

    retried = lake.publish_mart(pg, client, "orders", ds, lake_bucket=bucket)
    assert retried["rows"] == 2_400
    assert lake_rows(client, bucket, ds) == sorted(normalised_text(warehouse_rows(pg)))
    assert objects_under(client, bucket, prefix) == {o["key"] for o in retried["objects"]} | {prefix + lake.MANIFEST}


def normalised_text(rows: list[tuple]) -> list[tuple]:
    """As `normalised`, with jsonb as the JSON text the lake holds, for whole-row comparison."""
    return [(*r[:8], json.dumps(r[8]), *r[9:]) for r in normalised(rows)]


def test_the_same_ds_published_three_times_leaves_the_same_rows_and_objects(pg, client, small_objects):
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    ds = "2026-01-09"
    prefix = lake.partition_prefix("orders", ds)
    seen = []
    for _ in range(3):
        manifest = lake.publish_mart(pg, client, "orders", ds, lake_bucket=bucket)
        keys = objects_under(client, bucket, prefix)
        assert keys == {o["key"] for o in manifest["objects"]} | {prefix + lake.MANIFEST}, "no leftovers"
        seen.append((lake_rows(client, bucket, ds), len(keys), [o["sha256"] for o in manifest["objects"]]))
    assert seen[0][0] == seen[1][0] == seen[2][0]
    assert seen[0][1] == seen[1][1] == seen[2][1] == 4
    assert seen[0][2] == seen[1][2] == seen[2][2], "the same rows give byte-identical objects"


def test_a_mart_rebuilt_with_the_same_rows_in_another_order_is_published_as_the_same_objects(pg, client, small_objects):
    """A rerun's dbt rebuilds the mart's table: the rows are the same, their order on disk is not.
    The objects are named by their content and written from rows read in one fixed order, so the
    rerun's partition has the very keys (and bytes) of the first run's."""
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    ds = "2026-01-12"
    first = lake.publish_mart(pg, client, "orders", ds, lake_bucket=bucket)
    with pg, pg.cursor() as cur:  # the same rows, written back newest first
        cur.execute("create temporary table kept as select * from marts.orders")
        cur.execute("truncate marts.orders")
        cur.execute("insert into marts.orders select * from kept order by order_id desc")
        cur.execute("select order_id from marts.orders limit 1")
        assert cur.fetchone()[0] == ROWS, "the table's own order is reversed"
    again = lake.publish_mart(pg, client, "orders", ds, lake_bucket=bucket)
    assert [o["key"] for o in again["objects"]] == [o["key"] for o in first["objects"]]
    assert [o["sha256"] for o in again["objects"]] == [o["sha256"] for o in first["objects"]]
    assert all(o["key"].rsplit("-", 1)[1] == o["sha256"][:16] + ".parquet" for o in again["objects"])
    assert again["attempt"] != first["attempt"], "each try is still told apart in its manifest"
    assert objects_under(client, bucket, lake.partition_prefix("orders", ds)) == {
        o["key"] for o in again["objects"]
    } | {lake.partition_prefix("orders", ds) + lake.MANIFEST}


def test_bad_names_and_a_missing_mart_are_refused_with_what_is_wrong(pg, client):
    with pytest.raises(lake.PublishError, match="not a date"):
        lake.partition_prefix("orders", "2026-1-7")
    with pytest.raises(lake.PublishError, match="plain lower-case"):
        lake.partition_prefix('orders"; drop', "2026-01-07")
    with pytest.raises(lake.PublishError, match="marts.nope does not exist"):
        lake.publish_mart(pg, client, "nope", "2026-01-07", lake_bucket="lake-missing")


def test_the_marts_published_are_the_dbt_models_under_models_marts():
    from include.pipeline.publish.tasks import mart_models, marts

    found = marts()
    assert sorted(found) == mart_models(), "the DAG's tasks (file names) are the manifest's marts"
    assert found["orders"] == ("marts", "orders") and "daily_revenue" in found
    assert all(schema == "marts" for schema, _ in found.values()) and len(found) >= 5


def test_the_lake_holds_the_same_bytes_whatever_the_sessions_date_style_and_time_zone(pg, client):
    """The publish reads Postgres's own CSV: it sets how values are written (ISO dates, UTC) for
    its COPY and gives the connection its settings back. Text that looks like a NULL, an empty
    string and a value with a newline and quotes stay what they are."""
    with pg, pg.cursor() as cur:
        cur.execute("update marts.orders set customer = '' where order_id = 3")
        cur.execute("update marts.orders set customer = 'N/A' where order_id = 4")
        cur.execute("update marts.orders set customer = 'line one\nline \"two\", end' where order_id = 5")
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    plain = lake.publish_mart(pg, client, "orders", "2026-01-10", lake_bucket=bucket, log=lambda _: None)
    with pg.cursor() as cur:
        cur.execute("set datestyle to 'SQL, DMY'")
        cur.execute("set timezone to 'Asia/Kolkata'")
    odd = lake.publish_mart(pg, client, "orders", "2026-01-11", lake_bucket=bucket, log=lambda _: None)
    assert [o["sha256"] for o in odd["objects"]] == [o["sha256"] for o in plain["objects"]]
    with pg.cursor() as cur:
        cur.execute("select current_setting('DateStyle'), current_setting('TimeZone')")
        assert cur.fetchone() == ("SQL, DMY", "Asia/Kolkata"), "the connection's own settings are back"
    pg.rollback()
    customers = dict(zip(*(lake.read_partition(client, "orders", "2026-01-11", lake_bucket=bucket)
                          .select(["order_id", "customer"]).to_pydict().values()), strict=True))  # fmt: skip
    assert customers[3] == "" and customers[4] == "N/A" and customers[7] is None
    assert customers[5] == 'line one\nline "two", end'


def test_a_value_the_lake_cannot_type_names_the_mart_and_leaves_the_connection_usable(pg, client):
    with pg, pg.cursor() as cur:
        cur.execute("update marts.orders set placed_at = 'infinity' where order_id = 42")
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    with pytest.raises(
        lake.PublishError, match=r"marts\.orders: a value of column placed_at \(timestamp with time zone\)"
    ):
        lake.publish_mart(pg, client, "orders", "2026-01-07", lake_bucket=bucket, log=lambda _: None)
    assert lake.read_manifest(client, "orders", "2026-01-07", lake_bucket=bucket) is None, "nothing committed"
    with pg.cursor() as cur:
        cur.execute("select count(*) from marts.orders")
        assert cur.fetchone()[0] == ROWS


def test_an_upload_failing_while_postgres_still_writes_stops_the_copy_and_frees_the_connection(
    pg, client, small_objects, monkeypatch
):
    """The copy runs in a thread beside the upload: an upload that fails early ends the copy,
    whichever way (cancelled while Postgres still writes, or cut when the reader closes its end
    after Arrow took in the whole copy: a CI run saw the latter, so which one runs is not
    asserted), the thread ends and the connection takes the next statement."""
    import threading

    finished = []
    finish = lake._CopyOut.finish

    def watched(self, *, failed):
        finished.append(failed)
        return finish(self, failed=failed)

    monkeypatch.setattr(lake._CopyOut, "finish", watched)

    with pg, pg.cursor() as cur:
        cur.execute(
            "insert into marts.orders (order_id, customer, amount) select g, repeat('c', 60) || g, 1"
            " from generate_series(%s, %s) g",
            (ROWS + 1, ROWS + 1_000_000),
        )
    threads = threading.active_count()
    with pytest.raises(ConnectionError, match="injected"):
        lake.publish_mart(
            pg, FailingPut(client, fail_on=1), "orders", "2026-01-13", lake_bucket=f"lake-{uuid.uuid4().hex[:8]}"
        )
    assert finished == [True], "the copy was ended as a failed one"
    assert threading.active_count() == threads, "the copy's thread ended"
    with pg.cursor() as cur:
        cur.execute("select count(*) from marts.orders")
        assert cur.fetchone()[0] == ROWS + 1_000_000
