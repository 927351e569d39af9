"""The S3 keys connections.yaml names come, in an ingest task, from the Airflow connections of
their identities (through Airflow's own lookup: AIRFLOW_CONN_* here, the API server in a task),
never from or into os.environ; only the identities a connection names are read."""

from __future__ import annotations

import json
import os
import secrets

import pytest

from include.pipeline import settings
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.stage_keys import connection_names, run_environ


@pytest.fixture
def airflow_s3_connections(monkeypatch):
    """The `shop_exports` and `lake` Airflow connections with keys of their own; no S3 key in the
    environment (as in a task of the stack)."""
    for identity in settings.S3_IDENTITIES:
        for name in settings.s3_key_names(identity):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("S3_ENDPOINT", raising=False)
    keys = {}
    for conn_id in ("shop_exports", "lake"):
        keys[conn_id] = (secrets.token_hex(8), secrets.token_urlsafe(16))
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps({"conn_type": "aws", "login": keys[conn_id][0], "password": keys[conn_id][1],
                        "extra": {"endpoint_url": f"http://127.0.0.1:9/{conn_id}"}}),
        )  # fmt: skip
    return keys


def test_the_lake_sync_reads_the_exports_reader_and_the_lake_writer_from_their_connections(airflow_s3_connections):
    keys = airflow_s3_connections
    before = dict(os.environ)
    connection = load_connections().connection("shop_to_lake")
    environ = run_environ(connection_names(connection))
    assert (environ["S3_EXPORTS_READER_ACCESS_KEY"], environ["S3_EXPORTS_READER_SECRET_KEY"]) == keys["shop_exports"]
    assert (environ["S3_LAKE_WRITER_ACCESS_KEY"], environ["S3_LAKE_WRITER_SECRET_KEY"]) == keys["lake"]
    assert environ["S3_ENDPOINT"] == "http://127.0.0.1:9/shop_exports"
    assert dict(os.environ) == before, "nothing is written into the process's environment"
    config = connection.source.resolved_config(environ)
    assert config["credentials"]["aws_secret_access_key"] == keys["shop_exports"][1]
    assert connection.destination.s3.resolved(environ).secret_access_key == keys["lake"][1]


def test_the_warehouse_sync_reads_no_lake_key(airflow_s3_connections):
    environ = run_environ(connection_names(load_connections().connection("shop_to_warehouse")))
    assert "S3_EXPORTS_READER_SECRET_KEY" in environ
    assert "S3_LAKE_WRITER_SECRET_KEY" not in environ and "S3_LAKE_WRITER_ACCESS_KEY" not in environ


def test_keys_in_the_environment_win(airflow_s3_connections, monkeypatch):
    monkeypatch.setenv("S3_EXPORTS_READER_ACCESS_KEY", "from-env")
    monkeypatch.setenv("S3_EXPORTS_READER_SECRET_KEY", "from-env-secret")
    environ = run_environ(connection_names(load_connections().connection("shop_to_warehouse")))
    assert environ["S3_EXPORTS_READER_SECRET_KEY"] == "from-env-secret"


def test_a_missing_connection_is_named_with_the_fix(airflow_s3_connections, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SHOP_EXPORTS")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////nonexistent/airflow.db")
    with pytest.raises(RuntimeError, match=r"Airflow connection 'shop_exports'.*make settings"):
        run_environ(connection_names(load_connections().connection("shop_to_warehouse")))
