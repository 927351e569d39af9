"""The embedded engine against a real Postgres and a real S3: the shipped connection (source-s3
over the shop's export files) lands Destinations-V2 tables; a rerun reads nothing new."""

from __future__ import annotations

import uuid

import pytest
from psycopg2.sql import SQL, Identifier

from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded import EmbeddedSyncError, sync_connection
from include.simulator.exports import export_day
from include.simulator.shop import ShopSettings

pytestmark = pytest.mark.integration

V2_COLUMNS = {"_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"}


def shipped_format() -> str:
    """The format the shipped simulator writes (what the shipped streams read)."""
    from include.pipeline.ingest.embedded_sync import shop_settings

    return shop_settings(load_connections().sources["shop"]).format


@pytest.fixture(scope="module")
def connection(exports_env):
    return load_connections().connection("shop_to_warehouse")


@pytest.fixture
def bucket(s3_server) -> tuple[str, ShopSettings]:
    """A bucket of its own with a 200-customer, 200-order shop's first export (2026-01-01)."""
    shop = ShopSettings(bucket=f"t-{uuid.uuid4().hex[:10]}", customers=200, orders=200, format=shipped_format())
    export_day(s3_server.client(), shop, "2026-01-01", log=lambda _: None)
    return shop.bucket, shop


def test_sync_writes_destinations_v2_tables_and_a_rerun_adds_no_duplicates(connection, bucket, warehouse, sql):
    lines: list[str] = []
    first = sync_connection(connection, warehouse, log=lines.append, config_overrides={"bucket": bucket[0]})

    assert {name: s["records"] for name, s in first["streams"].items()} == {
        "users": 200,
        "products": 100,
        "purchases": 200,
    }
    assert any("stream users: 200 records" in line for line in lines), "progress is logged per stream"
    for stream in ("users", "products", "purchases"):
        columns = {
            r[0]
            for r in sql(
                "select column_name from information_schema.columns where table_schema='raw' and table_name=%s",
                (stream,),
            )
        }
        assert V2_COLUMNS <= columns, (stream, columns)
    assert sql("select count(*) from raw.users where _airbyte_raw_id is null or _airbyte_extracted_at is null") == [
        (0,)
    ]
    # the raw columns the dbt project reads: faker's names, the address a JSON object (as with faker)
    assert sql("select address ->> 'city' is not null, pg_typeof(address)::text from raw.users limit 1") == [
        (True, "json")
    ]

    second = sync_connection(connection, warehouse, log=lines.append, config_overrides={"bucket": bucket[0]})
    assert all(s["records"] == 0 for s in second["streams"].values()), "incremental: the cursor state was kept"
    for stream, expected in (("users", 200), ("products", 100), ("purchases", 200)):
        query = SQL("select count(*), count(distinct id) from {}").format(Identifier("raw", stream))
        assert sql(query) == [(expected, expected)]


def test_full_refresh_replaces_and_keeps_keys_unique(connection, bucket, warehouse, sql):
    overrides = {"bucket": bucket[0]}
    sync_connection(connection, warehouse, log=lambda _: None, config_overrides=overrides)
    result = sync_connection(connection, warehouse, log=lambda _: None, full_refresh=True, config_overrides=overrides)
    assert result["streams"]["users"]["records"] == 200
    assert sql("select count(*), count(distinct id) from raw.users") == [(200, 200)]


def test_a_failing_sync_raises_with_the_connector_output(connection, bucket, warehouse):
    bad = warehouse.__class__(warehouse.host, warehouse.port, warehouse.user, "wrong-password", warehouse.database)
    with pytest.raises(EmbeddedSyncError, match="sync of connection 'shop_to_warehouse' failed") as info:
        sync_connection(connection, bad, log=lambda _: None, config_overrides={"bucket": bucket[0]})
    assert "password authentication failed" in str(info.value)
    assert "wrong-password" not in str(info.value)
