"""The platform tests follow the declaration, not the demo: the shipped connections.yaml with a
second source (`returns_desk`, source-s3: a stream keyed on one column, one on two, one with no key)
and a connection `returns_to_warehouse` into the warehouse, appended after the lake's connection
(tests/support/declarations.py, the builder every such test uses).

The plan/apply tests that once pinned the demo's counts (`Plan: 3 to create`, `Apply complete: 5
created`) run here again on that declaration, through `platform_env` pointed at it; a few checks
say the numbers they derive are the right ones."""

from __future__ import annotations

import json

import pytest
import yaml

from include.pipeline import settings
from include.pipeline.ingest.airbyte_server.apply import main
from tests.airbyte_server import test_apply, test_apply_replace, test_s3_destination_apply
from tests.fakes.airbyte_api import FILE_CURSOR
from tests.support.airbyte import by_name, declared, declared_count
from tests.support.declarations import RETURNS_CONNECTION, RETURNS_SOURCE, warehouse_only, with_source
from tests.support.s3 import stage_keys

SHIPPED = settings.CONNECTIONS_FILE  # read before any test points the setting elsewhere


@pytest.fixture
def platform_env(platform_env, tmp_path, monkeypatch):
    """The shared fixture's environment, with the shipped file plus the refunds source and
    connection as the declaration in use (the lake's connection left out, as the shared one does)."""
    path = tmp_path / "connections-refunds.yaml"
    path.write_text(warehouse_only(with_source(SHIPPED.read_text())))
    monkeypatch.setattr(settings, "CONNECTIONS_FILE", path)
    return platform_env


@pytest.fixture
def s3_env(monkeypatch, tmp_path):
    """test_s3_destination_apply's environment, with the shipped file (lake included) plus the
    refunds source and connection as the declaration in use."""
    for key, value in (("S3_ENDPOINT", "http://127.0.0.1:8333"), ("S3_ACCESS_KEY", "lake-access-key-id"),
                       ("S3_SECRET_KEY", "lake-secret-access-key-value"),
                       *stage_keys("lake-access-key-id", "lake-secret-access-key-value").items()):  # fmt: skip
        monkeypatch.setenv(key, value)
    path = tmp_path / "connections-refunds.yaml"
    path.write_text(with_source(SHIPPED.read_text()))
    monkeypatch.setattr(settings, "CONNECTIONS_FILE", path)


# The tests that pinned the demo, collected here too: they run against the declaration above.
test_apply_creates_by_name_then_a_second_apply_changes_nothing = (
    test_apply.test_apply_creates_by_name_then_a_second_apply_changes_nothing
)
test_a_changed_stream_is_planned_then_patched_in_place = (
    test_apply.test_a_changed_stream_is_planned_then_patched_in_place
)
test_someone_elses_resources_are_left_alone = test_apply.test_someone_elses_resources_are_left_alone
test_the_token_is_sent_as_json_so_old_oss_servers_accept_it = (
    test_apply.test_the_token_is_sent_as_json_so_old_oss_servers_accept_it
)
test_case16_a_bad_declaration_names_the_lines_and_applies_nothing = (
    test_apply.test_case16_a_bad_declaration_names_the_lines_and_applies_nothing
)
test_the_source_s3_configuration_is_valid_against_airbytes_official_schema = (
    test_apply.test_the_source_s3_configuration_is_valid_against_airbytes_official_schema
)
test_a_replaced_connection_is_created_before_the_old_one_is_deleted = (
    test_apply_replace.test_a_replaced_connection_is_created_before_the_old_one_is_deleted
)
test_a_failed_create_leaves_the_old_connection_in_place = (
    test_apply_replace.test_a_failed_create_leaves_the_old_connection_in_place
)
test_a_replaced_destination_moves_its_connection_before_it_is_deleted = (
    test_apply_replace.test_a_replaced_destination_moves_its_connection_before_it_is_deleted
)
test_the_fake_airbyte_api_creates_the_lake_destination_and_its_connection = (
    test_s3_destination_apply.test_the_fake_airbyte_api_creates_the_lake_destination_and_its_connection
)


def test_warehouse_only_drops_the_lake_and_keeps_a_connection_that_follows_it():
    """The lake's destination and connection go; the refunds connection after them stays, with
    every other line as written (it once lost its indentation: `expected <block end>, but found '-'`)."""
    extended = with_source(SHIPPED.read_text())
    doc = yaml.safe_load(extended)
    lakes = {name for name, d in doc["destinations"].items() if d["type"] == "s3"}
    assert doc["connections"][-1]["name"] == "returns_to_warehouse"
    assert lakes and any(c["destination"] in lakes for c in doc["connections"][:-1]), "a lake connection before it"
    kept = warehouse_only(extended)
    assert yaml.safe_load(kept) == {
        **doc,
        "destinations": {n: d for n, d in doc["destinations"].items() if n not in lakes},
        "connections": [c for c in doc["connections"] if c["destination"] not in lakes],
    }
    assert RETURNS_CONNECTION.strip("\n") in kept and RETURNS_SOURCE in kept
    left = iter(extended.splitlines())  # only whole lines were removed, the rest in order
    assert all(line in left for line in kept.splitlines())
    assert not any(f"destination: {lake}\n" in kept for lake in lakes)


def test_the_counts_are_those_of_the_declaration(airbyte_api, platform_env, tmp_path, capsys):
    """What the derived expectations come to, counted apart: the declaration in use has the
    shipped file's resources plus one source and one connection (the warehouse is already used;
    on the shipped file: 5); every connection's streams stored as declared."""
    base = tmp_path / "connections-shipped.yaml"
    base.write_text(warehouse_only(SHIPPED.read_text()))
    before = declared(base)
    assert declared() == {
        "source": sorted([*before["source"], "returns_desk"]),
        "destination": before["destination"],
        "connection": sorted([*before["connection"], "returns_to_warehouse"]),
    }
    total = declared_count(base) + 2
    assert declared_count() == total
    assert main(["plan"]) == 0
    assert f"Plan: {total} to create, 0 to update, 0 to replace, 0 unchanged." in capsys.readouterr().out
    assert main(["apply"]) == 0
    assert f"Apply complete: {total} created, 0 updated, 0 replaced, 0 unchanged." in capsys.readouterr().out
    assert len(airbyte_api.sources()) + len(airbyte_api.destinations()) + len(airbyte_api.connections()) == total
    refunds = by_name(airbyte_api.sources(), "returns_desk")
    streams = {s["name"]: s for s in refunds["configuration"]["streams"]}
    assert list(streams) == ["refunds", "refund_lines", "refund_notes"]
    assert json.loads(streams["refunds"]["input_schema"])["refund_id"] == "integer"
    conn = by_name(airbyte_api.connections(), "returns_to_warehouse")
    assert (conn["sourceId"], conn["destinationId"]) == (
        refunds["sourceId"],
        by_name(airbyte_api.destinations(), "warehouse")["destinationId"],
    )
    assert [
        (s["name"], s["syncMode"], s["cursorField"], s["primaryKey"]) for s in conn["configurations"]["streams"]
    ] == [
        ("refunds", "incremental_deduped_history", [FILE_CURSOR], [["refund_id"]]),
        ("refund_lines", "incremental_deduped_history", [FILE_CURSOR], [["refund_id"], ["order"]]),
        ("refund_notes", "incremental_append", [FILE_CURSOR], []),
    ]
    assert main(["apply"]) == 0
    assert f"Plan: 0 to create, 0 to update, 0 to replace, {total} unchanged." in capsys.readouterr().out


def test_the_whole_file_counts_the_lake_too(s3_env):
    """With the lake's connection kept: the shipped file's resources plus two (on it: 5 + 2)."""
    assert declared_count() == declared_count(SHIPPED) + 2
