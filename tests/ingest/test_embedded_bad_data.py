"""Bad data never stops the line and never vanishes (embedded engine, real Postgres and S3).

A day's export files beside the simulated shop's: a column the declaration does not know, a value
of another type, a declared column missing, a truncated gzip, a JSON line that does not parse.
What each connection policy does with them (connections.yaml `non_breaking_schema_updates_behavior`
and `on_bad_file`), what reaches raw, what the runner reports, and what the cursor does.
Streams, files and columns come from connections.yaml and the simulator's schemas."""

from __future__ import annotations

import gzip
import io
import json
import uuid

import pytest
from psycopg2.sql import SQL, Identifier

from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded import EmbeddedSyncError, sync_connection
from include.simulator.exports import export_day
from include.simulator.shop import ShopSettings, input_schema

pytestmark = pytest.mark.integration

NEW_COLUMN = "loyalty_tier"
VALUES = {"integer": 7, "number": 1.5, "string": "2026-01-02T00:00:00+00:00", "object": {"city": "X"}}


def one_stream(name: str, **policies):
    """The shipped warehouse connection with only stream `name`, and these policies."""
    connection = load_connections().connection("shop_to_warehouse")
    streams = tuple(s for s in connection.streams if s.name == name)
    return connection.model_copy(update={"streams": streams, **policies})


def record(stream: str, key: int, **changes) -> dict:
    """A record of `stream` with every declared column (typed as declared), then `changes`
    (a value of None removes the key)."""
    row = {column: VALUES[kind] for column, kind in input_schema(stream).items()} | {"id": key}
    row |= changes
    return {k: v for k, v in row.items() if v is not None}


def put(client, bucket: str, key: str, data: bytes) -> None:
    client.put_object(bucket, key, io.BytesIO(data), len(data))


def jsonl(records: list[dict]) -> bytes:
    return gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode(), mtime=0)


def shop_synced(s3_server, warehouse, stream: str) -> tuple[str, object]:
    """A bucket of its own with a small shop's first export (2026-01-01), `stream` synced once."""
    settings = ShopSettings(bucket=f"t-{uuid.uuid4().hex[:10]}", customers=50, orders=50, format="jsonl.gz")
    client = s3_server.client()
    export_day(client, settings, "2026-01-01", log=lambda _: None)
    sync_connection(one_stream(stream), warehouse, log=lambda _: None, config_overrides={"bucket": settings.bucket})
    return settings.bucket, client


@pytest.fixture
def users_shop(exports_env, s3_server, warehouse):
    return shop_synced(s3_server, warehouse, "users")


@pytest.fixture
def products_shop(exports_env, s3_server, warehouse):
    return shop_synced(s3_server, warehouse, "products")


def sync(connection, warehouse, bucket: str, lines: list[str] | None = None) -> dict:
    return sync_connection(
        connection, warehouse, log=(lines if lines is not None else []).append, config_overrides={"bucket": bucket}
    )


def raw_columns(sql, table: str) -> set[str]:
    query = "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s"
    return {r[0] for r in sql(query, (table,))}


def state_of(sql, stream: str):
    return sql("select state_json from raw._airbyte_state where stream_name = %s", (stream,))


def changes_of(problems: dict) -> dict[tuple[str, str], dict]:
    return {(c["change"], c["column"]): c for c in problems["schema_changes"]}


def test_a_new_column_is_kept_in_raw_and_reported_once(users_shop, warehouse, sql):
    bucket, client = users_shop
    put(client, bucket, "users/2026-01-02/part-0000.jsonl.gz", jsonl([record("users", 9001, **{NEW_COLUMN: "gold"})]))
    lines: list[str] = []
    result = sync(one_stream("users"), warehouse, bucket, lines)

    assert sql(SQL("select {} from raw.users where id = 9001").format(Identifier(NEW_COLUMN))) == [("gold",)]
    change = changes_of(result)[("new_column", NEW_COLUMN)]
    assert change["action"] == "column_added" and change["policy"] == "propagate_columns"
    assert any(f"new column '{NEW_COLUMN}'" in line for line in lines), "the change is logged"
    assert all(c["change"] == "new_column" for c in result["schema_changes"]), result["schema_changes"]

    # the next day: the column is in raw now, its values load, and it is no change any more
    put(client, bucket, "users/2026-01-03/part-0000.jsonl.gz", jsonl([record("users", 9002, **{NEW_COLUMN: "silver"})]))
    again = sync(one_stream("users"), warehouse, bucket)
    assert again["schema_changes"] == []
    assert sql(SQL("select {} from raw.users where id = 9002").format(Identifier(NEW_COLUMN))) == [("silver",)]


def test_ignore_drops_the_new_column_but_reports_it(users_shop, warehouse, sql):
    bucket, client = users_shop
    put(client, bucket, "users/2026-01-02/part-0000.jsonl.gz", jsonl([record("users", 9001, **{NEW_COLUMN: "gold"})]))
    result = sync(one_stream("users", non_breaking_schema_updates_behavior="ignore"), warehouse, bucket)

    assert NEW_COLUMN not in raw_columns(sql, "users")
    assert sql("select count(*) from raw.users where id = 9001") == [(1,)], "the record itself is loaded"
    assert changes_of(result)[("new_column", NEW_COLUMN)]["action"] == "ignored"


def test_disable_connection_stops_before_anything_is_committed(users_shop, warehouse, sql):
    bucket, client = users_shop
    before = (sql("select count(*) from raw.users"), state_of(sql, "users"))
    put(client, bucket, "users/2026-01-02/part-0000.jsonl.gz", jsonl([record("users", 9001, **{NEW_COLUMN: "gold"})]))
    connection = one_stream("users", non_breaking_schema_updates_behavior="disable_connection")
    with pytest.raises(EmbeddedSyncError, match=f"disable_connection.*new column '{NEW_COLUMN}'") as failed:
        sync(connection, warehouse, bucket)

    assert (sql("select count(*) from raw.users"), state_of(sql, "users")) == before, "raw and cursor unchanged"
    assert changes_of(failed.value.problems)[("new_column", NEW_COLUMN)]["action"] == "sync_stopped"
    # the declaration now keeps new columns: the same file loads
    sync(one_stream("users"), warehouse, bucket)
    assert sql("select count(*) from raw.users where id = 9001") == [(1,)]


def test_a_type_change_and_a_removed_column_are_recorded_and_the_run_stays_green(users_shop, warehouse, sql):
    bucket, client = users_shop
    dropped = next(c for c, kind in input_schema("users").items() if kind == "string" and c not in ("id",))
    rows = [record("users", 9001, age="forty", **{dropped: None}), record("users", 9002, age=41, **{dropped: None})]
    put(client, bucket, "users/2026-01-02/part-0000.jsonl.gz", jsonl(rows))
    result = sync(one_stream("users"), warehouse, bucket)

    changes = changes_of(result)
    assert changes[("type_change", "age")]["detail"] == "declared integer, sent string"
    assert changes[("type_change", "age")]["records"] == 1
    assert changes[("removed_column", dropped)]["action"] == "recorded"
    assert sql("select id, age from raw.users where id > 9000 order by id") == [(9001, None), (9002, 41)]


def products_file(first: int, count: int) -> bytes:
    return jsonl([record("products", first + i) for i in range(count)])


def test_a_truncated_gzip_fails_naming_the_file_and_loads_once_replaced(products_shop, warehouse, sql):
    bucket, client = products_shop
    key = "products/2026-01-02/part-0000.jsonl.gz"
    whole = products_file(5000, 3000)
    put(client, bucket, key, whole[: len(whole) * 2 // 3])
    before = (sql("select count(*) from raw.products"), state_of(sql, "products"))
    with pytest.raises(EmbeddedSyncError, match=rf"{key} line \d+: EOFError") as failed:
        sync(one_stream("products"), warehouse, bucket)
    assert (sql("select count(*) from raw.products"), state_of(sql, "products")) == before, "nothing committed"
    [bad] = failed.value.problems["bad_files"]
    assert bad["file"] == key and bad["action"] == "sync_failed" and bad["line"] > 1

    put(client, bucket, key, whole)  # the shop exports the file again
    result = sync(one_stream("products"), warehouse, bucket)
    assert result["streams"]["products"]["records"] == 3000 and result["bad_files"] == []
    assert sql("select count(*) from raw.products where id >= 5000") == [(3000,)]


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl"])
def test_a_bad_json_line_fails_naming_the_line_and_loads_once_replaced(products_shop, warehouse, sql, suffix):
    bucket, client = products_shop
    key = f"products/2026-01-02/part-0000{suffix}"
    pack = gzip.compress if suffix.endswith(".gz") else bytes
    good = [json.dumps(record("products", 5000 + i)) for i in range(4)]
    broken = "\n".join([good[0], '{"id": 5001, "make": oops', *good[2:]]) + "\n"
    put(client, bucket, key, pack(broken.encode()))
    before = (sql("select count(*) from raw.products"), state_of(sql, "products"))
    with pytest.raises(EmbeddedSyncError, match=rf"{key} line 2: line 2 is not JSON"):
        sync(one_stream("products"), warehouse, bucket)
    assert (sql("select count(*) from raw.products"), state_of(sql, "products")) == before, "nothing committed"

    put(client, bucket, key, pack(("\n".join(good) + "\n").encode()))
    sync(one_stream("products"), warehouse, bucket)
    assert sql("select count(*) from raw.products where id >= 5000") == [(4,)]


def test_on_bad_file_skip_commits_the_rest_and_records_the_file(products_shop, warehouse, sql):
    bucket, client = products_shop
    bad_key, good_key = "products/2026-01-02/part-0000.jsonl.gz", "products/2026-01-02/part-0001.jsonl.gz"
    whole = products_file(5000, 3000)
    put(client, bucket, bad_key, whole[: len(whole) // 2])
    put(client, bucket, good_key, products_file(9000, 5))
    result = sync(one_stream("products", on_bad_file="skip"), warehouse, bucket)

    [bad] = result["bad_files"]
    assert bad["file"] == bad_key and bad["action"] == "file_skipped"
    assert sql("select count(*) from raw.products where id >= 9000") == [(5,)]
    assert sql("select count(*) from raw.products where id between 5000 and 8999") == [(0,)], "no part of the bad file"


def test_a_gzip_cut_in_its_header_fails_naming_the_file_though_no_record_came(products_shop, warehouse, sql):
    """No record of the stream at all: the connector's ERROR log alone names the file."""
    bucket, client = products_shop
    key = "products/2026-01-02/part-0000.jsonl.gz"
    put(client, bucket, key, products_file(5000, 10)[:15])
    with pytest.raises(EmbeddedSyncError, match=rf"bad file in stream products: {key}") as failed:
        sync(one_stream("products"), warehouse, bucket)
    assert failed.value.problems["bad_files"][0]["found_by"] == "connector"
    assert sql("select count(*) from raw.products where id >= 5000") == [(0,)]

    put(client, bucket, key, products_file(5000, 10))
    sync(one_stream("products"), warehouse, bucket)
    assert sql("select count(*) from raw.products where id >= 5000") == [(10,)]
