"""A connection's schema-change policy (`non_breaking_schema_updates_behavior` in connections.yaml)
reaches the Airbyte server as `nonBreakingSchemaUpdatesBehavior`: created, patched when changed,
unchanged otherwise. The fake server checks the bodies against the vendored slice of Airbyte's
public API (ConnectionCreateRequest / ConnectionPatchRequest), so a value its enum lacks is a 400."""

from __future__ import annotations

import pytest

from include.pipeline.ingest.airbyte_server.api import AirbyteApiError
from include.pipeline.ingest.airbyte_server.apply import api_from_airflow, main
from include.pipeline.ingest.declaration import SCHEMA_CHANGE_POLICIES, load_connections
from tests.support.airbyte import CONNECTION, by_name, declared_count
from tests.support.declarations import declaration, edited, write


def with_policy(tmp_path, policy: str):
    """The shipped declaration with `policy` on the connection CONNECTION."""
    marker = f"  - name: {CONNECTION}\n"
    return write(
        tmp_path, edited(declaration(), (marker, marker + f"    non_breaking_schema_updates_behavior: {policy}\n"))
    )


def test_the_policy_is_created_then_patched_when_it_changes(airbyte_api, platform_env, tmp_path, capsys):
    assert main(["apply"]) == 0
    default = load_connections().connection(CONNECTION).non_breaking_schema_updates_behavior
    assert default == "propagate_columns"
    created = by_name(airbyte_api.connections(), CONNECTION)
    assert created["nonBreakingSchemaUpdatesBehavior"] == default

    other = next(p for p in SCHEMA_CHANGE_POLICIES if p != default)
    changed = with_policy(tmp_path, other)
    capsys.readouterr()
    assert main(["plan", "--file", str(changed)]) == 0
    out = capsys.readouterr().out
    assert f"nonBreakingSchemaUpdatesBehavior: '{default}' -> '{other}'" in out
    assert f"Plan: 0 to create, 1 to update, 0 to replace, {declared_count() - 1} unchanged." in out
    assert main(["apply", "--file", str(changed)]) == 0
    after = by_name(airbyte_api.connections(), CONNECTION)
    assert after["nonBreakingSchemaUpdatesBehavior"] == other
    assert after["connectionId"] == created["connectionId"], "patched in place"
    capsys.readouterr()
    assert main(["plan", "--file", str(changed)]) == 0
    assert f"0 to update, 0 to replace, {declared_count()} unchanged." in capsys.readouterr().out


def test_every_declared_policy_is_in_the_api_enum_and_others_are_refused(airbyte_api, platform_env):
    assert main(["apply"]) == 0
    conn = by_name(airbyte_api.connections(), CONNECTION)
    api = api_from_airflow()
    for policy in SCHEMA_CHANGE_POLICIES:
        api.request("PATCH", f"/connections/{conn['connectionId']}", json={"nonBreakingSchemaUpdatesBehavior": policy})
    with pytest.raises(AirbyteApiError, match="nonBreakingSchemaUpdatesBehavior") as refused:
        api.request("PATCH", f"/connections/{conn['connectionId']}", json={"nonBreakingSchemaUpdatesBehavior": "keep"})
    assert refused.value.status == 400


def test_an_unknown_policy_is_named_with_its_line(tmp_path):
    from include.pipeline.ingest.declaration import ConnectionsConfigError

    path = with_policy(tmp_path, "keep_everything")
    unknown = r"connections.yaml:\d+: unknown non_breaking_schema_updates_behavior 'keep_everything'"
    with pytest.raises(ConnectionsConfigError, match=unknown):
        load_connections(path)
    write(tmp_path, edited(path.read_text(), ("keep_everything", "ignore"), (
        "    non_breaking_schema_updates_behavior: ignore\n",
        "    non_breaking_schema_updates_behavior: ignore\n    on_bad_file: retry\n",
    ), count=0))  # fmt: skip
    with pytest.raises(ConnectionsConfigError, match=r"unknown on_bad_file 'retry'.*use one of: fail, skip"):
        load_connections(path)
