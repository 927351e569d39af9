"""The lake's connection on the platform engine: the shipped declaration's `type: s3` destination
becomes a `destination-s3` configuration valid against Airbyte's official API schema, and the fake
Airbyte API (which checks what destination-s3 requires) creates it, by name, once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from include.pipeline.ingest.airbyte_server.apply import destination_config, main
from include.pipeline.ingest.declaration import load_connections
from tests.support.airbyte import api_spec_path, by_name, declared_count
from tests.support.s3 import stage_keys


def api_spec() -> Path:
    return api_spec_path()


def official_schema(name: str) -> dict:
    import yaml

    schemas = yaml.safe_load(api_spec().read_text())["components"]["schemas"]
    return {**schemas[name], "components": {"schemas": schemas}}


@pytest.fixture
def s3_env(monkeypatch):
    monkeypatch.setenv("S3_ENDPOINT", "http://127.0.0.1:8333")
    monkeypatch.setenv("S3_ACCESS_KEY", "lake-access-key-id")
    monkeypatch.setenv("S3_SECRET_KEY", "lake-secret-access-key-value")
    for key, value in stage_keys("lake-access-key-id", "lake-secret-access-key-value").items():
        monkeypatch.setenv(key, value)


def test_the_lake_destination_is_valid_against_airbytes_destination_s3_schema(s3_env):
    import jsonschema

    lake = load_connections().destinations["lake"]
    config = destination_config(lake)
    schema = official_schema("destination-s3")
    jsonschema.validate(config, schema)  # raises with the failing path
    assert set(schema["required"]) <= set(config)
    assert config["destinationType"] == "s3" and config["format"]["format_type"] == "Parquet"
    assert (config["s3_bucket_name"], config["s3_bucket_path"]) == ("lake", "raw_history")
    assert config["s3_path_format"] == "${NAMESPACE}/${STREAM_NAME}/${YEAR}_${MONTH}_${DAY}_${EPOCH}_"
    assert (config["s3_endpoint"], config["secret_access_key"]) == (
        "http://127.0.0.1:8333",
        os.environ["S3_SECRET_KEY"],
    )
    # the validator can fail: what the official schema forbids is caught
    for broken, message in (
        ({**config, "format": {"format_type": "Parquet", "compression_codec": "RAR"}}, "is not valid under any"),
        ({k: v for k, v in config.items() if k != "s3_bucket_path"}, "'s3_bucket_path' is a required property"),
        ({**config, "s3_bucket_region": "mars-1"}, "is not one of"),
    ):
        with pytest.raises(jsonschema.ValidationError, match=message):
            jsonschema.validate(broken, schema)


def test_the_fake_airbyte_api_creates_the_lake_destination_and_its_connection(
    airbyte_api, airbyte_conn_env, s3_env, monkeypatch, capsys
):  # noqa: E501, F811
    """The shipped file as it is (every connection, the lake's included), applied twice: created by
    name, then unchanged."""
    import json
    import secrets

    password = secrets.token_urlsafe(12)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_INGEST",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "warehouse_ingest",
                    "password": password, "schema": "warehouse"}),
    )  # fmt: skip
    airbyte_conn_env()
    assert main(["apply"]) == 0
    out = capsys.readouterr().out
    total = declared_count()
    assert f"Apply complete: {total} created" in out, out
    assert os.environ["S3_SECRET_KEY"] not in out and os.environ["S3_ACCESS_KEY"] not in out
    lake = by_name(airbyte_api.destinations(), "lake")
    assert lake["destinationType"] == "s3" and lake["configuration"]["s3_bucket_name"] == "lake"
    conn = by_name(airbyte_api.connections(), "shop_to_lake")
    assert conn["destinationId"] == lake["destinationId"]
    wanted = load_connections().connection("shop_to_lake")
    assert {s["name"]: s["syncMode"] for s in conn["configurations"]["streams"]} == {
        s.name: s.sync_mode for s in wanted.streams
    }
    assert {s.sync_mode for s in wanted.streams} == {"incremental_append"}
    assert main(["apply"]) == 0
    assert f"{total} unchanged" in capsys.readouterr().out


def test_the_fake_refuses_a_destination_s3_config_without_what_its_spec_requires(airbyte_api):  # noqa: F811
    body = {
        "destinationType": "s3",
        "s3_bucket_name": "lake",
        "s3_bucket_region": "",
        "format": {"format_type": "Parquet"},
    }
    with pytest.raises(Exception, match="s3_bucket_path is required"):  # noqa: PT011
        airbyte_api.create_destination("lake", body)
    created = airbyte_api.create_destination("lake", {**body, "s3_bucket_path": "raw_history"})
    assert created["destinationType"] == "s3"
