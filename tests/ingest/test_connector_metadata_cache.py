"""The embedded runner starts a connector once per sync: its `spec` and `discover` answers are kept.

Every start of a Python connector costs seconds of imports before it answers (~5 CPU s for
source-s3), and a sync needs its spec and catalog before each read. The connector here is
tests/ingest/protocol_source.py behind a wrapper that appends each command it is started with to
a file, so the test counts real starts.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from include.pipeline import settings
from include.pipeline.ingest import embedded
from include.pipeline.ingest.declaration import Connection, PostgresDestination, Source, Stream
from include.pipeline.ingest.embedded import EmbeddedSyncError, sync_connection

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).with_name("protocol_source.py")


@pytest.fixture
def counted_source(tmp_path, monkeypatch):
    """protocol_source.py started through a wrapper that logs its command; .local under tmp_path."""
    starts = tmp_path / "starts.log"
    executable = tmp_path / "source-protocol-test"
    executable.write_text(f'#!/bin/sh\necho "$1" >> "{starts}"\nexec "{sys.executable}" "{SOURCE}" "$@"\n')
    executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(embedded, "connector_executable", lambda connector: executable)
    monkeypatch.setattr(settings, "LOCAL_DIR", tmp_path / ".local")
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"id": 1, "name": "a", "updated_at": "2026-01-01T00:00:00+00:00"}]))

    def commands() -> list[str]:
        found = starts.read_text().split() if starts.exists() else []
        starts.unlink(missing_ok=True)
        return found

    return records, commands


def connection(records: Path, **config) -> Connection:
    return Connection(
        name="metadata_test",
        source=Source(
            name="protocol", connector="source-protocol-test", config={"records_file": str(records), **config}
        ),
        destination=PostgresDestination(name="warehouse", schema="raw", airflow_conn_id="warehouse"),
        streams=(
            Stream(
                name="items", sync_mode="incremental_deduped_history", cursor_field="updated_at", primary_key=("id",)
            ),
        ),
    )


def test_the_second_sync_starts_the_connector_only_to_read(counted_source, warehouse):
    records, commands = counted_source
    conn = connection(records)
    first: list[str] = []
    assert sync_connection(conn, warehouse, log=first.append)["streams"]["items"]["records"] == 1
    # each asked once, both at once, and their answers used (not asked again)
    assert sorted(commands()) == ["discover", "read", "spec"]
    assert any("asking the connector for spec and discover (at once)" in line for line in first)

    lines: list[str] = []
    assert sync_connection(conn, warehouse, log=lines.append)["streams"]["items"]["records"] == 1
    assert commands() == ["read"]
    assert any("from the cache" in line for line in lines)

    # with a stored state now (the read above emitted one): read from it, the connector started once
    records.write_text(json.dumps([{"id": 2, "name": "b", "updated_at": "2026-01-02T00:00:00+00:00"}]))
    later: list[str] = []
    assert sync_connection(conn, warehouse, log=later.append)["streams"]["items"]["records"] == 1
    assert commands() == ["read"]

    # a full refresh discovers again (the catalog's refresh, as on the Airbyte platform) ...
    refresh: list[str] = []
    sync_connection(conn, warehouse, full_refresh=True, log=refresh.append)
    assert sorted(commands()) == ["discover", "read"]
    assert any("asking the connector for discover (at once)" in line for line in refresh)
    # ... and a changed config is a new key: asked again
    sync_connection(connection(records, fail_after=1000), warehouse, log=lambda _: None)
    assert sorted(commands()) == ["discover", "read", "spec"]


def test_a_config_the_cached_spec_refuses_is_still_refused(counted_source, warehouse):
    records, commands = counted_source
    sync_connection(connection(records), warehouse, log=lambda _: None)
    commands()
    # protocol_source's spec requires records_file to be a string
    bad = connection(records)
    bad.source.config["records_file"] = 42
    with pytest.raises(EmbeddedSyncError, match="(?i)not valid|validation"):
        sync_connection(bad, warehouse, log=lambda _: None)
    assert "read" not in commands()


def test_a_connector_that_fails_to_answer_fails_the_sync_with_its_message(counted_source, warehouse, tmp_path):
    """A connector that fails at discover fails the sync with the connector's own message; it is
    asked once, nothing is read, no temp config is left."""
    records, commands = counted_source
    with pytest.raises(EmbeddedSyncError, match=r"discover failed .*discover refused \(fail_discover\)"):
        sync_connection(connection(records, fail_discover=True), warehouse, log=lambda _: None)
    found = commands()
    assert found.count("discover") == 1 and "read" not in found
    work = tmp_path / ".local" / "airbyte" / "metadata_test"
    assert not list(work.glob("config-*.json"))
