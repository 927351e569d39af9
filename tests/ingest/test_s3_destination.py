"""The lake as an Airbyte destination (`type: s3`): the declaration's checks, the object layout of
Airbyte's S3 destination, and the embedded engine's files read back with DuckDB.

The embedded sync runs the real source-s3 connector over a real shop export in the session's real
S3 server, and DuckDB (httpfs, loaded from its wheel) reads the Parquet files it wrote.
"""

# ruff: noqa: S608 - the queries name buckets and columns this test made, nothing from outside
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import textwrap
import uuid

import pyarrow.parquet as pq
import pytest

from include.airbyte_runtime import lake
from include.airbyte_runtime import parquet as parquet_parts
from include.pipeline.ingest.declaration import ConnectionsConfigError, load_connections
from include.pipeline.ingest.declaration.s3 import DEFAULT_PATH_FORMAT, S3Settings
from include.pipeline.publish import lake_sql
from include.simulator.exports import export_day
from include.simulator.shop import ShopSettings

AIRBYTE_COLUMNS = ["_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_generation_id", "_airbyte_meta"]


# -- the declaration ----------------------------------------------------------------------------
def test_the_shipped_declaration_lands_the_shops_streams_in_the_lake_beside_the_warehouse(exports_env):
    config = load_connections()
    warehouse, lake = config.connection("shop_to_warehouse"), config.connection("shop_to_lake")
    assert warehouse.source is lake.source, "one source read by both connections"
    assert lake.destination.type == "s3" and warehouse.destination.type == "postgres"
    assert [s.name for s in lake.streams] == [s.name for s in warehouse.streams]
    assert {s.sync_mode for s in lake.streams} == {"incremental_append"}, "the lake keeps every version"
    s3 = lake.destination.s3
    assert (s3.bucket, s3.path_prefix, s3.format, s3.path_format) == (
        "lake", "raw_history", "parquet", DEFAULT_PATH_FORMAT,
    )  # fmt: skip
    assert s3.secret_access_key == "${S3_LAKE_WRITER_SECRET_KEY}", "keys stay references until run time"
    assert s3.resolved().secret_access_key == exports_env["S3_LAKE_WRITER_SECRET_KEY"]


BAD = """
version: 1
sources:
  shop:
    connector: source-s3
    config:
      bucket: b
      streams:
        - {name: users, format: {filetype: parquet}, input_schema: {id: integer}}
destinations:
  lake:
    type: s3
    bucket: Not_A_Bucket
    path_prefix: ../up
    format: csv
    endpoint: "${S3_ENDPOINT}"
    region: us-east-1
    access_key_id: "${S3_ACCESS_KEY}"
    secret_access_key: written-in-the-file
    path_format: "${STREAM_NAME}/${WEEKDAY}_"
  other:
    type: s3
    bucket: fine-bucket
    path_prefix: raw
    format: parquet
    endpoint: "${S3_ENDPOINT}"
    region: us-east-1
    access_key_id: "${S3_ACCESS_KEY}"
    secret_access_key: "${S3_SECRET_KEY}"
connections:
  - name: to_lake
    source: shop
    destination: other
    streams:
      - {name: users, sync_mode: incremental_deduped_history, cursor_field: _ab_source_file_last_modified, primary_key: [id]}
"""


def test_a_bad_s3_destination_is_refused_naming_each_line(tmp_path):
    path = tmp_path / "connections.yaml"
    path.write_text(textwrap.dedent(BAD))
    with pytest.raises(ConnectionsConfigError) as info:
        load_connections(path)
    problems = info.value.problems
    lines = path.read_text().splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    expected = {
        line_of("bucket: Not_A_Bucket"): "is not an S3 bucket name",
        line_of("path_prefix: ../up"): "is not a plain folder path",
        line_of("format: csv"): "format 'csv' is not supported",
        line_of("secret_access_key: written"): "is a secret written in the file",
        line_of("path_format:"): "is not an s3_path_format",
        line_of("    destination: other") + 1: "which an s3 destination cannot do",  # the connection's streams:
    }
    for line, message in expected.items():
        assert any(p.startswith(f"{path}:{line}:") and message in p for p in problems), (line, message, problems)
    assert len(problems) == len(expected), problems


# -- the object layout ----------------------------------------------------------------------------
def test_object_keys_follow_airbytes_default_s3_path_format():
    s3 = S3Settings("lake", "raw_history", "parquet", "e", "us-east-1", "k", "s")
    started = dt.datetime(2026, 1, 7, 3, 4, 5, 678000, tzinfo=dt.UTC)
    epoch = int(started.timestamp() * 1000)
    # no namespace: the empty ${NAMESPACE}/ segment is dropped, as Airbyte does
    assert lake.object_key(s3, "users", None, started, 0) == f"raw_history/users/2026_01_07_{epoch}_0.parquet"
    assert lake.object_key(s3, "users", "shop", started, 12) == f"raw_history/shop/users/2026_01_07_{epoch}_12.parquet"
    custom = dataclasses.replace(s3, path_format="${STREAM_NAME}/${YEAR}/${MONTH}/${DAY}/${HOUR}${MINUTE}_")
    assert lake.object_key(custom, "users", None, started, 1) == "raw_history/users/2026/01/07/0304_1.parquet"


def test_records_are_written_in_row_groups_and_parts_with_airbyte_columns_and_nulled_misfits(s3_server, tmp_path):
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.make_bucket(bucket)
    s3 = S3Settings(bucket, "raw", "parquet", s3_server.endpoint, "us-east-1", "k", "s")
    schema = {"properties": {"id": {"type": ["null", "integer"]}, "name": {"type": "string"},
                             "price": {"type": "number"}, "address": {"type": "object"}}}  # fmt: skip
    layout = parquet_parts.StreamLayout.of(schema)
    sink = lake.LakeSync(s3, "conn", client, {"items": layout}, rows_per_group=4, rows_per_object=8)

    def record(i: int) -> dict:
        data = {"id": i, "name": f"n{i}", "price": i * 1.5, "address": {"city": f"c{i}"}}
        if i == 5:
            data["id"] = "not a number"
        return {"type": "RECORD", "record": {"stream": "items", "data": data, "emitted_at": 1_767_744_000_000 + i}}

    sink.consume([record(i) for i in range(1, 21)])
    state = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "items"}, "stream_state": {"c": 20}}}
    sink.consume([{"type": "STATE", "state": state}])
    try:
        figures = sink.commit()
    finally:
        sink.close()
    keys = figures["items"]["keys"]
    assert figures["items"]["records"] == 20 and len(keys) == 3, "8 + 8 + 4 records"
    assert all(re.fullmatch(rf"raw/items/\d{{4}}_\d\d_\d\d_{sink.sync_id}_{n}\.parquet", k) for n, k in enumerate(keys))
    path = tmp_path / "part0.parquet"
    client.fget_object(bucket, keys[0], str(path))
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_row_groups == 2, "4 records a row group"
    table = parquet.read()
    assert table.column_names == [*AIRBYTE_COLUMNS, "id", "name", "price", "address"]
    rows = table.to_pylist()
    bad = next(r for r in rows if r["name"] == "n5")
    assert bad["id"] is None
    assert bad["_airbyte_meta"]["changes"] == [
        {"field": "id", "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}
    ]
    assert rows[0]["_airbyte_meta"] == {"sync_id": sink.sync_id, "changes": []}
    assert rows[0]["address"] == '{"city": "c1"}' and rows[0]["price"] == 1.5
    assert lake.load_state(client, s3, "conn") == [state], "the state is saved after the data"


def shipped_format() -> str:
    """The format the shipped simulator writes (what the shipped streams read)."""
    from include.pipeline.ingest.embedded_sync import shop_settings

    return shop_settings(load_connections().sources["shop"]).format


# -- the embedded sync, read back with DuckDB --------------------------------------------------------
@pytest.fixture
def shop_bucket(s3_server) -> str:
    """A bucket of its own with a 60-customer, 80-order shop's first export (2026-01-01)."""
    shop = ShopSettings(bucket=f"t-{uuid.uuid4().hex[:10]}", customers=60, orders=80, format=shipped_format())
    export_day(s3_server.client(), shop, "2026-01-01", log=lambda _: None)
    return shop.bucket


def duckdb_over(s3_server):
    target = lake_sql.LakeTarget(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, "unused")
    return lake_sql.connect(target)


@pytest.mark.integration
def test_the_embedded_s3_destination_writes_what_duckdb_reads_back_as_the_records_synced(
    s3_server, exports_env, shop_bucket, tmp_path, monkeypatch
):
    """Through what the DAG's ingest task runs with the embedded engine (`run_embedded`), with the
    shipped declaration's shop bucket and lake bucket replaced by this test's."""
    from include.pipeline import settings
    from include.pipeline.ingest.embedded_sync import run_embedded

    lake_bucket = f"lake-{uuid.uuid4().hex[:8]}"
    text = settings.CONNECTIONS_FILE.read_text()
    assert "      bucket: shop-exports\n" in text and "    bucket: lake\n" in text
    declaration = tmp_path / "connections.yaml"
    declaration.write_text(
        text.replace("      bucket: shop-exports\n", f"      bucket: {shop_bucket}\n").replace(
            "    bucket: lake\n", f"    bucket: {lake_bucket}\n"
        )
    )
    monkeypatch.setattr(settings, "CONNECTIONS_FILE", declaration)
    monkeypatch.setattr(lake, "ROWS_PER_GROUP", 25)
    monkeypatch.setattr(lake, "ROWS_PER_OBJECT", 50)
    logged: list[str] = []  # the task's log lines
    first = run_embedded("shop_to_lake", "2026-01-01", log=logged.append)
    text = "\n".join(logged)
    assert f"s3://{lake_bucket}/raw_history/users/" in text, "each part uploaded is logged"
    assert s3_server.secret_key not in text and s3_server.access_key not in text, "no key in the log"
    assert {n: s["records"] for n, s in first["streams"].items()} == {"users": 60, "products": 100, "purchases": 80}
    assert first["streams"]["users"]["objects"] == 2, "60 records, 50 a part"
    assert first["streams"]["users"]["table"] == f"s3://{lake_bucket}/raw_history/users/"
    assert first["bytes"] == sum(s["bytes"] for s in first["streams"].values()) > 0

    con = duckdb_over(s3_server)
    for stream, count in (("users", 60), ("products", 100), ("purchases", 80)):
        files = f"s3://{lake_bucket}/raw_history/{stream}/*.parquet"
        columns = [r[0] for r in con.execute(f"describe select * from read_parquet('{files}')").fetchall()]
        assert columns[:4] == AIRBYTE_COLUMNS and "id" in columns and "_ab_source_file_last_modified" in columns
        # the records synced: every id of the shop's export, once, with the same values
        lake_rows = con.execute(
            f"select count(*), count(distinct id), count(distinct _airbyte_raw_id) from '{files}'"
        ).fetchone()
        assert lake_rows == (count, count, count), stream
        fmt = shipped_format()  # the export: <stream>/<date>/<part>.<format>
        reader = "read_parquet" if fmt == "parquet" else "read_json"
        source = f"{reader}('s3://{shop_bucket}/{stream}/*/*.{fmt}')"
        shared = [c for c in con.execute(f"describe select * from {source}").fetchall()]
        plain = [c[0] for c in shared if c[0] in columns and c[1] in ("BIGINT", "VARCHAR", "DOUBLE", "INTEGER")]
        assert "id" in plain and len(plain) >= 3, plain
        select = ", ".join(f'"{c}"::varchar' for c in plain)
        differ = con.execute(
            f"(select {select} from '{files}' except select {select} from {source})"
            f" union all (select {select} from {source} except select {select} from '{files}')"
        ).fetchall()
        assert differ == [], (stream, differ[:3])

    second = run_embedded("shop_to_lake", "2026-01-02", log=logged.append)
    assert all(s["records"] == 0 for s in second["streams"].values()), "incremental: the saved state was used"
    assert con.execute(f"select count(*) from 's3://{lake_bucket}/raw_history/users/*.parquet'").fetchone() == (60,)
    # docs/lake.md's example: the latest version of each record of the raw history
    latest = con.execute(
        f"select count(*) from (select * from read_parquet('s3://{lake_bucket}/raw_history/users/*.parquet')"
        " qualify row_number() over (partition by id order by _ab_source_file_last_modified desc,"
        " _airbyte_extracted_at desc) = 1)"
    ).fetchone()
    assert latest == (60,)


def test_the_lake_reads_its_connector_through_a_widened_pipe(tmp_path):
    """A 64 KiB pipe made the connector wait on every 0.1 s burst of output (include/airbyte_runtime/connector.py): the lake's
    task widens the connector's stdout before reading it. The connector here reports the size of
    the pipe it writes into, after a moment (the widening happens once it has started)."""
    import sys

    connector = tmp_path / "source-pipe-size"
    connector.write_text(
        f"#!{sys.executable}\nimport fcntl, time\ntime.sleep(0.5)\nprint('pipe', fcntl.fcntl(1, fcntl.F_GETPIPE_SZ))\n"
    )
    connector.chmod(0o755)
    logged: list[str] = []
    assert list(lake.run_connector(connector, ["read"], {}, logged.append, [])) == []
    with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as f:
        wide = min(8 << 20, int(f.read()))
    assert wide > 64 * 1024 and logged == [f"pipe {wide}"]


@pytest.mark.parametrize("policy", ["propagate_columns", "ignore", "disable_connection"])
def test_a_new_column_reaches_the_lake_from_the_next_part_or_is_recorded(s3_server, tmp_path, policy):
    """A key the stream's schema lacks (schema_changes.py): kept as a column from the next part on
    (a part has one schema), left out, or the sync refused before its state is saved; recorded always."""
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.make_bucket(bucket)
    s3 = S3Settings(bucket, "raw", "parquet", s3_server.endpoint, "us-east-1", "k", "s")
    layout = parquet_parts.StreamLayout.of({"properties": {"id": {"type": "integer"}}})
    sink = lake.LakeSync(s3, "conn", client, {"users": layout}, schema_policy=policy)
    records = [{"id": 1}, {"id": 2, "loyalty_tier": "gold"}, {"id": 3, "loyalty_tier": "silver"}]
    messages = [{"type": "RECORD", "record": {"stream": "users", "data": r, "emitted_at": 1}} for r in records]
    try:
        if policy == "disable_connection":
            with pytest.raises(lake.S3DestinationError, match="disable_connection.*'loyalty_tier'"):
                sink.consume(messages)
            assert lake.load_state(client, s3, "conn") is None
            return
        sink.consume(messages)
        figures = sink.commit()
    finally:
        sink.close()
    [change] = sink.schema_changes
    assert (change["column"], change["action"]) == ("loyalty_tier", "column_added" if policy != "ignore" else "ignored")
    rows = []
    for n, key in enumerate(figures["users"]["keys"]):
        client.fget_object(bucket, key, str(tmp_path / f"{n}.parquet"))
        rows += pq.read_table(tmp_path / f"{n}.parquet").to_pylist()
    assert [r["id"] for r in rows] == [1, 2, 3]
    tiers = [r.get("loyalty_tier") for r in rows]
    assert tiers == ([None, "gold", "silver"] if policy != "ignore" else [None, None, None])
