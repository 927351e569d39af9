"""The embedded engine against a real Postgres: Destinations-V2 tables, no duplicates on rerun."""

from __future__ import annotations

import pytest

from include.pipeline.ingest.connections import load_connections
from include.pipeline.ingest.embedded import EmbeddedSyncError, sync_connection

pytestmark = pytest.mark.integration

V2_COLUMNS = {"_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"}


@pytest.fixture(scope="module")
def connection():
    return load_connections().connection("shop_faker_to_warehouse")


def test_sync_writes_destinations_v2_tables_and_a_rerun_adds_no_duplicates(connection, warehouse, sql):
    lines: list[str] = []
    first = sync_connection(connection, warehouse, log=lines.append, config_overrides={"count": 200})

    # faker: 200 users, products are a fixed list (ids <= count), 10 purchases per 10 users
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

    second = sync_connection(connection, warehouse, log=lines.append, config_overrides={"count": 200})
    assert all(s["records"] == 0 for s in second["streams"].values()), "incremental: the cursor state was kept"
    for stream, expected in (("users", 200), ("products", 100), ("purchases", 200)):
        assert sql(f"select count(*), count(distinct id) from raw.{stream}") == [(expected, expected)]


def test_full_refresh_replaces_and_keeps_keys_unique(connection, warehouse, sql):
    sync_connection(connection, warehouse, log=lambda _: None, config_overrides={"count": 50})
    result = sync_connection(
        connection, warehouse, log=lambda _: None, full_refresh=True, config_overrides={"count": 50}
    )
    assert result["streams"]["users"]["records"] == 50
    assert sql("select count(*), count(distinct id) from raw.users") == [(50, 50)]


def test_a_failing_sync_raises_with_the_connector_output(connection, warehouse):
    bad = warehouse.__class__(warehouse.host, warehouse.port, warehouse.user, "wrong-password", warehouse.database)
    with pytest.raises(EmbeddedSyncError, match="sync of connection 'shop_faker_to_warehouse' failed") as info:
        sync_connection(connection, bad, log=lambda _: None, config_overrides={"count": 10})
    assert "password authentication failed" in str(info.value)
    assert "wrong-password" not in str(info.value)
