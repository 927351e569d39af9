"""Validation of include/airbyte/connections.yaml: every bad input names the file, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.pipeline import settings
from include.pipeline.ingest.declaration import ConnectionsConfigError, load_connections
from tests.support.s3 import stage_keys

GOOD = """\
version: 1
sources:
  faker:
    connector: source-faker
    config:
      count: 10
      seed: 1
destinations:
  warehouse:
    type: postgres
    schema: raw
    airflow_conn_id: warehouse
connections:
  - name: shop
    source: faker
    destination: warehouse
    streams:
      - name: users
        sync_mode: incremental_deduped_history
        cursor_field: updated_at
        primary_key: [id]
      - name: purchases
        sync_mode: incremental_append
        cursor_field: updated_at
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connections.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConnectionsConfigError) as info:
        load_connections(write(tmp_path, text))
    assert "nothing was applied" in str(info.value)
    return info.value.problems


def test_the_shipped_declaration_is_valid():
    config = load_connections(settings.CONNECTIONS_FILE)
    # the shop's two connections (the lake: docs/lake.md); a user's own may follow (docs/your-data.md)
    assert [c.name for c in config.connections][:2] == ["shop_to_warehouse", "shop_to_lake"]
    streams = config.connection("shop_to_warehouse").streams
    assert {s.name for s in streams} == {"users", "products", "purchases"}
    assert all(
        s.deduplicated and s.cursor_field == "_ab_source_file_last_modified" and s.primary_key == ("id",)
        for s in streams
    )


def test_the_shipped_input_schemas_are_what_the_simulator_writes_with_source_fakers_names():
    """source-s3's explicit input schema per stream = the simulator's columns and JSON types =
    source-faker's field names (the dbt staging models read them)."""
    import json

    from include.simulator.shop import SCHEMAS, input_schema

    source = load_connections(settings.CONNECTIONS_FILE).sources["shop"]
    config = source.resolved_config({"S3_ENDPOINT": "http://x", **stage_keys("a", "b")})
    faker = json.loads((settings.REPO_ROOT / "include/airbyte/catalogs/source-faker.json").read_text())
    for stream in config["streams"]:
        declared = json.loads(stream["input_schema"])  # a JSON string, as source-s3's spec asks
        assert declared == input_schema(stream["name"]), stream["name"]
        faker_fields = next(s for s in faker["streams"] if s["name"] == stream["name"])["json_schema"]["properties"]
        assert set(declared) == set(faker_fields) == set(SCHEMAS[stream["name"]]), stream["name"]
        for column, spec in faker_fields.items():
            kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
            assert declared[column] in kinds, (stream["name"], column)


def test_the_simulator_keys_are_the_shop_settings():
    from include.pipeline.ingest.declaration import SIMULATOR_FORMATS, SIMULATOR_KEYS
    from include.simulator.shop import FORMATS, ShopSettings

    assert SIMULATOR_KEYS == ShopSettings.KEYS and SIMULATOR_FORMATS == FORMATS


def test_the_environment_sizes_the_simulated_shop_and_its_day(monkeypatch):
    from include.simulator.shop import ShopSettings

    for name, value in (("SHOP_CUSTOMERS", "5000"), ("SHOP_DAILY_NEW", "0.002"), ("SHOP_DAILY_CHANGED", "0")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHOP_ORDERS", raising=False)
    shop = ShopSettings.from_config({"customers": 10, "orders": 20}, settings.shop_size_overrides())
    assert (shop.customers, shop.orders, shop.new_customers(), shop.changed_customers()) == (5000, 20, 10, 0)
    monkeypatch.setenv("SHOP_DAILY_NEW", "2")
    with pytest.raises(ValueError, match="SHOP_DAILY_NEW='2' is not a share"):
        settings.shop_size_overrides()


S3 = """version: 1
sources:
  shop:
    connector: source-s3
    simulator:
      customers: 10
    config:
      bucket: exports
      streams:
        - name: users
          globs: ["users/**"]
          format: {filetype: jsonl}
          input_schema:
            id: integer
            email: string
destinations:
  warehouse:
    type: postgres
    schema: raw
    airflow_conn_id: warehouse
connections:
  - name: shop
    source: shop
    destination: warehouse
    streams:
      - name: users
        sync_mode: incremental_deduped_history
        cursor_field: _ab_source_file_last_modified
        primary_key: [id]
"""


def test_a_file_based_source_declares_its_streams_in_its_config(tmp_path):
    config = load_connections(write(tmp_path, S3))
    assert config.sources["shop"].simulator == {"customers": 10}
    assert config.connection("shop").streams[0].cursor_field == "_ab_source_file_last_modified"


@pytest.mark.parametrize(
    ("old", "new", "line", "what", "fix"),
    [
        pytest.param(
            "      - name: users\n        sync_mode",
            "      - name: orders\n        sync_mode",
            26,
            "unknown stream 'orders' of connection 'shop': the connector offers no such stream",
            "use one of: users",
            id="stream-not-in-config",
        ),
        pytest.param(
            "cursor_field: _ab_source_file_last_modified",
            "cursor_field: updated_at",
            28,
            "cursor_field 'updated_at' is not a column of stream 'users'",
            "_ab_source_file_last_modified",
            id="cursor-not-a-column",
        ),
        pytest.param(
            "primary_key: [id]",
            "primary_key: [user_id]",
            29,
            "primary_key column 'user_id' is not a column of stream 'users'",
            "use one of:",
            id="pk-not-a-column",
        ),
        pytest.param(
            "            email: string",
            "            email: text",
            15,
            "config stream 'users' of source 'shop': input_schema type 'text' of column 'email' is not a source-s3 type",
            "use one of: string, integer",
            id="bad-input-type",
        ),
        pytest.param(
            "          input_schema:\n            id: integer\n            email: string\n",
            "",
            10,
            "config stream 'users' of source 'shop' has no explicit input_schema",
            "add `input_schema:`",
            id="no-input-schema",
        ),
        pytest.param(
            "          format: {filetype: jsonl}",
            "          format: {filetype: xml}",
            12,
            "config stream 'users' of source 'shop' has no supported format",
            "filetype: parquet",
            id="bad-format",
        ),
        pytest.param(
            "      customers: 10",
            "      customers: 10\n      format: parquet",
            13,
            "source 'shop' stream 'users' reads filetype 'jsonl' but the simulator writes 'parquet' files",
            "write `format: {filetype: parquet}` or set the simulator's `format:` to match",
            id="simulator-writes-another-filetype",
        ),
        pytest.param(
            "          globs:",
            "          glob:",
            11,
            "unknown key 'glob' in config stream 'users' of source 'shop'",
            "use one of: name, format",
            id="unknown-stream-key",
        ),
        pytest.param(
            "      customers: 10",
            "      customers: many",
            6,
            "source 'shop' simulator customers 'many' is not a positive integer",
            "write `customers: <n>`",
            id="bad-simulator-size",
        ),
        pytest.param(
            "      customers: 10",
            "      shoppers: 10",
            6,
            "unknown key 'shoppers' in source 'shop' simulator",
            "use one of: bucket, format",
            id="unknown-simulator-key",
        ),
    ],
)
def test_file_based_streams_are_checked_against_the_source_config(tmp_path, old, new, line, what, fix):
    assert old in S3
    found = problems(tmp_path, S3.replace(old, new, 1))
    assert any(p.startswith(f"{tmp_path / 'connections.yaml'}:{line}: {what}") and fix in p for p in found), found


def test_a_good_file_loads_into_typed_objects(tmp_path):
    config = load_connections(write(tmp_path, GOOD))
    shop = config.connection("shop")
    assert shop.source.connector == "source-faker"
    assert shop.destination.schema == "raw"
    users, purchases = shop.streams
    assert users.deduplicated and users.primary_key == ("id",)
    assert purchases.incremental and not purchases.deduplicated and purchases.primary_key == ()


@pytest.mark.parametrize(
    ("old", "new", "line", "what", "fix"),
    [
        pytest.param(
            "        cursor_field: updated_at\n        primary_key",
            "        cursor: updated_at\n        primary_key",
            20,
            "unknown key 'cursor' in stream 'users' of connection 'shop'",
            "use one of: name, sync_mode, cursor_field, primary_key",
            id="unknown-key",
        ),
        pytest.param(
            "      - name: purchases",
            "      - name: orders",
            22,
            "unknown stream 'orders'",
            "use one of: products, purchases, users",
            id="unknown-stream",
        ),
        pytest.param(
            "sync_mode: incremental_append",
            "sync_mode: incremental",
            23,
            "unknown sync_mode 'incremental'",
            "use one of: full_refresh_overwrite",
            id="unknown-sync-mode",
        ),
        pytest.param(
            "        sync_mode: incremental_append\n        cursor_field: updated_at\n",
            "        sync_mode: incremental_append\n",
            22,
            "is incremental_append but has no cursor_field",
            "add `cursor_field: <column>` (the connector's cursor is 'updated_at')",
            id="missing-cursor",
        ),
        pytest.param(
            "cursor_field: updated_at\n        primary_key: [id]",
            "cursor_field: updated\n        primary_key: [id]",
            20,
            "cursor_field 'updated' is not a column",
            "use one of:",
            id="cursor-not-a-column",
        ),
        pytest.param(
            "        primary_key: [id]\n",
            "",
            18,
            "is deduplicated but has no primary_key",
            "add `primary_key:",
            id="missing-primary-key",
        ),
        pytest.param(
            "    source: faker\n",
            "    source: fakr\n",
            15,
            "uses unknown source 'fakr'",
            "declare it under `sources:` or use one of: faker",
            id="unknown-source",
        ),
        pytest.param(
            "connector: source-faker",
            "connector: source-nope",
            4,
            "no pinned requirements file",
            "add source-nope.in",
            id="unknown-connector",
        ),
        pytest.param(
            "version: 1\n",
            "version: 1\ncolour: blue\n",
            2,
            "unknown key 'colour' in the file",
            "use one of: version",
            id="unknown-top-key",
        ),
    ],
)
def test_each_bad_input_names_file_line_and_fix(tmp_path, old, new, line, what, fix):
    assert old in GOOD
    found = problems(tmp_path, GOOD.replace(old, new, 1))
    prefix = f"{tmp_path / 'connections.yaml'}:{line}: "
    assert any(p.startswith(prefix) and what in p and f"Fix: {fix}" in p for p in found), found


def test_duplicate_connection_name_points_at_both_lines(tmp_path):
    text = GOOD + GOOD[GOOD.index("  - name: shop") :]
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert found[0].startswith(
        f"{tmp_path / 'connections.yaml'}:25: duplicate connection name 'shop' (first declared on line 14)"
    )
    assert "unique name" in found[0]


def test_duplicate_stream_in_a_connection(tmp_path):
    found = problems(tmp_path, GOOD.replace("      - name: purchases", "      - name: users"))
    assert any(":22: duplicate stream 'users'" in p for p in found), found


def test_all_problems_are_reported_at_once(tmp_path):
    text = GOOD.replace("      - name: purchases", "      - name: orders").replace(
        "destination: warehouse\n    streams", "destination: wh\n    streams"
    )
    found = problems(tmp_path, text)
    assert len(found) == 2
    assert {p.split(": ", 1)[0].rsplit(":", 1)[1] for p in found} == {"16", "22"}


def test_yaml_syntax_error_and_duplicate_key_name_the_line(tmp_path):
    found = problems(tmp_path, GOOD.replace("    schema: raw\n", "    schema: raw\n    schema: raw2\n"))
    assert found == [f"{tmp_path / 'connections.yaml'}:12: duplicate key 'schema'. Fix: correct the YAML syntax"]
    found = problems(tmp_path, GOOD.replace("seed: 1", "seed: [1"))
    assert found[0].startswith(f"{tmp_path / 'connections.yaml'}:")


def test_missing_file(tmp_path):
    with pytest.raises(ConnectionsConfigError, match="file not found"):
        load_connections(tmp_path / "nope.yaml")


def test_secrets_come_from_the_environment_at_run_time(tmp_path):
    config = load_connections(write(tmp_path, GOOD.replace("seed: 1", 'seed: 1\n      api_key: "${FAKER_API_KEY}"')))
    source = config.sources["faker"]
    assert source.config["api_key"] == "${FAKER_API_KEY}"  # nothing resolved at load time
    assert source.resolved_config({"FAKER_API_KEY": "k-123"})["api_key"] == "k-123"
    with pytest.raises(KeyError, match="needs the environment variable FAKER_API_KEY"):
        source.resolved_config({})
