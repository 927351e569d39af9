"""The connections schema as models: what the file:line tests do not show.

The models validate objects built in code the same way as the file (an engine or a test that
builds a Connection gets the same checks), destinations are told apart by `type`, and the one
`${ENV}` resolver serves both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from include.pipeline.ingest import declaration as c
from include.pipeline.ingest.declaration import ConnectionsConfigError, load_connections

FILE = """\
version: 1
sources:
  faker:
    connector: source-faker
    config: {count: 10}
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
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "connections.yaml"
    path.write_text(text)
    with pytest.raises(ConnectionsConfigError) as info:
        load_connections(path)
    return [p.removeprefix(f"{path}:") for p in info.value.problems]


def test_a_destination_type_is_one_of_the_union_members(tmp_path):
    assert c.destination_type_names() == ("postgres", "s3")
    found = problems(tmp_path, FILE.replace("type: postgres", "type: lake"))
    # one problem: the connection naming it does not add a second "unknown destination"
    assert len(found) == 1 and found[0].startswith("8: destination 'warehouse' has type 'lake'"), found
    assert "postgres" in found[0] and "s3" in found[0], found
    found = problems(tmp_path, FILE.replace("    type: postgres\n", ""))
    assert found == [
        "8: destination 'warehouse' is missing the key 'type'. Fix: add `type:` to destination 'warehouse'"
    ]


def test_a_block_name_is_its_key_never_a_key_inside_it(tmp_path):
    found = problems(tmp_path, FILE.replace("    schema: raw\n", "    schema: raw\n    name: other\n"))
    assert found == [
        "10: unknown key 'name' in destination 'warehouse'. Fix: use one of: type, schema, airflow_conn_id, airbyte"
    ]


def test_a_primary_key_that_is_not_a_list_is_an_error_not_a_dropped_stream(tmp_path):
    """The checker before the models skipped such a stream without a word."""
    found = problems(tmp_path, FILE.replace("primary_key: [id]", "primary_key: {id: 1}"))
    assert len(found) == 1 and found[0].startswith("19: primary_key column of stream 'users'"), found


def test_objects_built_in_code_are_checked_like_the_file():
    stream = c.Stream(name="items", sync_mode="incremental_append", cursor_field="updated_at", primary_key=("id",))
    assert stream.incremental and not stream.deduplicated and stream.primary_key == ("id",)
    with pytest.raises(ValidationError, match="unknown sync_mode 'incremental'"):
        c.Stream(name="items", sync_mode="incremental", cursor_field="updated_at")
    with pytest.raises(ValidationError, match="is incremental_append but has no cursor_field"):
        c.Stream(name="items", sync_mode="incremental_append")
    with pytest.raises(ValidationError, match="name 'Items' is not a valid name"):
        c.Stream(name="Items", sync_mode="full_refresh_overwrite")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        c.Stream(name="items", sync_mode="full_refresh_overwrite", cursor="x")
    with pytest.raises(ValidationError, match="schema 'raw; drop' is not allowed"):
        c.PostgresDestination(name="warehouse", schema="raw; drop", airflow_conn_id="warehouse")
    with pytest.raises(ValidationError):  # loaded blocks never change
        stream.sync_mode = "full_refresh_overwrite"


def test_the_closed_sets_are_the_literals():
    assert c.SYNC_MODES == (
        "full_refresh_overwrite", "full_refresh_append", "incremental_append", "incremental_deduped_history",
    )  # fmt: skip
    assert c.ENGINES == ("embedded", "platform")
    assert c.SIMULATOR_KEYS[:2] == ("bucket", "format") and c.SIMULATOR_FORMATS == ("jsonl", "jsonl.gz", "parquet")


def test_one_env_resolver_for_sources_and_destination_overrides(tmp_path, monkeypatch):
    from include.pipeline.ingest.airbyte_server import apply

    assert not hasattr(apply, "_resolve") and not hasattr(apply, "_ENV_REF")
    nested = {"a": ["${X}", {"b": "${Y}"}], "c": "${X}-not-a-whole-reference", "d": 3}
    assert c.resolve_env(nested, "here", {"X": "1", "Y": "2"}) == {
        "a": ["1", {"b": "2"}], "c": "${X}-not-a-whole-reference", "d": 3,
    }  # fmt: skip
    with pytest.raises(c.MissingEnvironmentVariable) as info:
        c.resolve_env(nested, "destination 'warehouse' airbyte", {"X": "1"})
    assert str(info.value) == (
        "destination 'warehouse' airbyte.a[1].b needs the environment variable Y; export it (or put it in .env)"
    )
    assert isinstance(info.value, KeyError)  # what plan/apply and the tasks already report
