"""plan / apply of include/airbyte/connections.yaml against the fake Airbyte public API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from include.pipeline.ingest.airbyte_server.apply import main
from include.pipeline.ingest.declaration import load_connections
from tests.support.airbyte import CONNECTION, api_spec_path, by_name, declared, declared_count
from tests.support.declarations import declaration, edited, write

WRITES = ("POST", "PATCH", "PUT", "DELETE")


def writes(fake) -> int:
    """Requests that change something (the token request excluded)."""
    return sum(1 for r in fake.requests if r.method in WRITES and r.route != "/applications/token")


def test_apply_creates_by_name_then_a_second_apply_changes_nothing(airbyte_api, platform_env, capsys):
    """Counts and names from the declaration in use (the shipped one, warehouse connections only)."""
    resources, total = declared(), declared_count()
    assert main(["plan"]) == 0
    plan = capsys.readouterr().out
    assert f"Plan: {total} to create, 0 to update, 0 to replace, 0 unchanged." in plan
    assert writes(airbyte_api) == 0, "plan never writes"

    assert main(["apply"]) == 0
    first = capsys.readouterr().out
    assert f"Apply complete: {total} created, 0 updated, 0 replaced, 0 unchanged." in first
    assert writes(airbyte_api) == total
    assert sorted(s["name"] for s in airbyte_api.sources()) == resources["source"]
    assert sorted(d["name"] for d in airbyte_api.destinations()) == resources["destination"]
    assert sorted(c["name"] for c in airbyte_api.connections()) == resources["connection"]
    wanted = load_connections().connection(CONNECTION)
    source = by_name(airbyte_api.sources(), wanted.source.name)
    destination = by_name(airbyte_api.destinations(), wanted.destination.name)
    conn = by_name(airbyte_api.connections(), CONNECTION)
    assert source["sourceType"] == wanted.source.connector.removeprefix("source-") == "s3"
    assert source["configuration"]["bucket"] == wanted.source.config["bucket"]
    assert source["configuration"]["endpoint"] == os.environ["S3_ENDPOINT"]
    assert [s["name"] for s in source["configuration"]["streams"]] == [
        s["name"] for s in wanted.source.config["streams"]
    ]
    # the S3 keys came from the environment (.env), are stored by Airbyte, and are never printed
    assert source["configuration"]["credentials"]["aws_secret_access_key"] == os.environ["S3_SECRET_KEY"]
    assert os.environ["S3_SECRET_KEY"] not in plan
    # the secret came from the Airflow connection, is stored by Airbyte, and is never printed
    assert destination["configuration"]["password"] == platform_env["warehouse_password"]
    assert destination["configuration"]["schema"] == "raw"
    assert platform_env["warehouse_password"] not in plan + first
    assert conn["name"] == CONNECTION and conn["schedule"] == {"scheduleType": "manual"}
    assert (conn["sourceId"], conn["destinationId"]) == (source["sourceId"], destination["destinationId"])
    assert {
        s["name"]: (s["syncMode"], s["cursorField"], s["primaryKey"]) for s in conn["configurations"]["streams"]
    } == {s.name: (s.sync_mode, [s.cursor_field], [[k] for k in s.primary_key]) for s in wanted.streams}

    airbyte_api.reset_request_log()
    assert main(["apply"]) == 0
    second = capsys.readouterr().out
    assert f"Plan: 0 to create, 0 to update, 0 to replace, {total} unchanged." in second
    assert "No changes: workspace 'Default Workspace' already matches" in second
    assert writes(airbyte_api) == 0
    assert [len(airbyte_api.sources()), len(airbyte_api.destinations()), len(airbyte_api.connections())] == [
        len(resources[kind]) for kind in ("source", "destination", "connection")
    ]


def test_a_changed_stream_is_planned_then_patched_in_place(airbyte_api, platform_env, tmp_path, capsys):
    assert main(["apply"]) == 0
    before = by_name(airbyte_api.connections(), CONNECTION)
    changed = write(tmp_path, edited(declaration(), ("bucket: shop-exports", "bucket: shop-exports-v2")))
    capsys.readouterr()
    airbyte_api.reset_request_log()
    assert main(["plan", "--file", str(changed)]) == 0
    out = capsys.readouterr().out
    assert "~ update source 'shop'" in out and "configuration.bucket: 'shop-exports' -> 'shop-exports-v2'" in out
    assert f"Plan: 0 to create, 1 to update, 0 to replace, {declared_count() - 1} unchanged." in out
    assert main(["apply", "--file", str(changed)]) == 0
    assert airbyte_api.request_count("PATCH", "/sources/*") == 1
    assert writes(airbyte_api) == 1
    assert by_name(airbyte_api.sources(), "shop")["configuration"]["bucket"] == "shop-exports-v2"
    after = by_name(airbyte_api.connections(), CONNECTION)
    assert after["connectionId"] == before["connectionId"], "updated in place, same id"


# -- every sync mode is idempotent: the server fills in defaults the client did not send -----------
FAKER_EVERY_MODE = """\
version: 1
sources:
  faker:
    connector: source-faker
    config: {count: 10, seed: 1}
destinations:
  warehouse: {type: postgres, schema: raw, airflow_conn_id: warehouse_ingest}
connections:
  - name: faker_to_warehouse
    source: faker
    destination: warehouse
    streams:
      - {name: users, sync_mode: full_refresh_overwrite}
      - {name: products, sync_mode: full_refresh_append}
      - {name: purchases, sync_mode: incremental_append, cursor_field: updated_at}
"""


def _every_mode_of_the_shipped_file() -> str:
    """The shipped source-s3 declaration with a full-refresh overwrite, a full-refresh append and
    an incremental append stream (source-s3 defines the cursor: the file's last-modified time)."""
    text = declaration()
    head, streams = text.split("    streams:\n      - name: users\n        sync_mode", 1)
    return head + (
        "    streams:\n"
        "      - {name: users, sync_mode: full_refresh_overwrite}\n"
        "      - {name: products, sync_mode: full_refresh_append}\n"
        "      - {name: purchases, sync_mode: incremental_append, cursor_field: _ab_source_file_last_modified}\n"
    )


@pytest.mark.parametrize("declaration", ["faker", "s3"])
def test_every_sync_mode_applies_once_and_a_second_apply_changes_nothing(
    airbyte_api, platform_env, tmp_path, capsys, declaration
):
    """The server answers full-refresh streams with the connector's default cursor and primary
    key, and an incremental stream with the source's primary key: none of it is a change."""
    path = tmp_path / "connections.yaml"
    path.write_text(FAKER_EVERY_MODE if declaration == "faker" else _every_mode_of_the_shipped_file())
    assert main(["apply", "--file", str(path)]) == 0
    assert "Apply complete: 3 created" in capsys.readouterr().out
    [conn] = airbyte_api.connections()
    stored = {s["name"]: (s["syncMode"], s["cursorField"], s["primaryKey"]) for s in conn["configurations"]["streams"]}
    if declaration == "faker":  # what a real server stores: the connector's defaults filled in
        assert stored == {
            "users": ("full_refresh_overwrite", ["updated_at"], [["id"]]),
            "products": ("full_refresh_append", ["updated_at"], [["id"]]),
            "purchases": ("incremental_append", ["updated_at"], [["id"]]),
        }
    else:
        cursor = ["_ab_source_file_last_modified"]
        assert stored == {
            "users": ("full_refresh_overwrite", cursor, []),
            "products": ("full_refresh_append", cursor, []),
            "purchases": ("incremental_append", cursor, []),
        }

    airbyte_api.reset_request_log()
    for _ in range(2):
        assert main(["apply", "--file", str(path)]) == 0
        out = capsys.readouterr().out
        assert "Plan: 0 to create, 0 to update, 0 to replace, 3 unchanged." in out, out
        assert "cursorField" not in out and "primaryKey" not in out
    assert writes(airbyte_api) == 0

    # a real change of a sync mode is still seen and applied, and then settles too
    write(tmp_path, edited(path.read_text(), ("name: users, sync_mode: full_refresh_overwrite",
                                              "name: users, sync_mode: full_refresh_append")))  # fmt: skip
    assert main(["apply", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "streams.users.syncMode: 'full_refresh_overwrite' -> 'full_refresh_append'" in out
    assert "1 updated" in out
    assert main(["plan", "--file", str(path)]) == 0
    assert "0 to update" in capsys.readouterr().out


def test_a_cursor_other_than_the_source_defined_one_is_refused_like_the_server_does(airbyte_api, platform_env,
                                                                                      tmp_path, capsys):  # fmt: skip
    """source-s3 defines its cursor: Airbyte answers 400 to another one; apply names the error."""
    text = edited(declaration(), ("cursor_field: _ab_source_file_last_modified", "cursor_field: updated_at"))
    path = write(tmp_path, text)
    assert main(["apply", "--file", str(path)]) == 2
    assert "is already defined by source for stream: users" in capsys.readouterr().err
    assert airbyte_api.connections() == []


def test_someone_elses_resources_are_left_alone(airbyte_api, platform_env, capsys):
    other = airbyte_api.seed_connection("made_in_the_ui")
    assert main(["apply"]) == 0
    out = capsys.readouterr().out
    assert "not managed (left alone): source 'made_in_the_ui-source'" in out
    assert airbyte_api.connection(other["connectionId"])["status"] == "active"
    assert len(airbyte_api.connections()) == 1 + len(declared()["connection"])


def test_a_missing_airbyte_connection_says_how_to_define_it(airbyte_api, platform_env, monkeypatch, capsys):
    monkeypatch.delenv("AIRFLOW_CONN_AIRBYTE_DEFAULT")
    assert main(["plan"]) == 2
    err = capsys.readouterr().err
    assert "Airflow connection 'airbyte_default' is not defined" in err and "AIRFLOW_CONN_AIRBYTE_DEFAULT" in err


def test_wrong_client_secret_is_a_clear_401(airbyte_api, platform_env, capsys):
    platform_env["configure"](password="not-the-secret")
    assert main(["plan"]) == 2
    err = capsys.readouterr().err
    assert "token endpoint" in err and "answered 401" in err and "abctl local credentials" in err


def test_the_token_is_sent_as_json_so_old_oss_servers_accept_it(platform_env, monkeypatch):
    """Older Airbyte OSS servers answer 401 to the SDK's form-encoded token request; apply sends JSON."""
    from tests.fakes.airbyte_api import FakeAirbyteApi
    from tests.support.airbyte import set_airbyte_conn_env

    with FakeAirbyteApi(accept_form_encoded_token=False) as old:
        set_airbyte_conn_env(monkeypatch, old)
        assert main(["apply"]) == 0
        assert old.tokens_issued == 1 and len(old.connections()) == len(declared()["connection"])


# -- reliability case 16: a bad declaration applies nothing ---------------------------------------
# (each edit hits its own stream: a stream whose block is invalid is not also checked against the catalog)
BAD = {
    "unknown stream": ("- name: purchases\n        sync_mode", "- name: customers\n        sync_mode",
                       "unknown stream 'customers'"),
    "missing cursor": ("        cursor_field: _ab_source_file_last_modified\n        primary_key: [id]\n      - name: products",
                       "        primary_key: [id]\n      - name: products", "has no cursor_field"),
}  # fmt: skip


def test_case16_a_bad_declaration_names_the_lines_and_applies_nothing(airbyte_api, platform_env, tmp_path, capsys):
    text = declaration()
    bad = edited(text, *((old, new) for old, new, _ in BAD.values()))
    # a duplicate connection name
    block = text[text.index("  - name: shop_to_warehouse") :]
    bad = bad + "\n" + block
    path: Path = write(tmp_path, bad)
    assert main(["apply", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "nothing was applied" in err
    for _, _, message in BAD.values():
        assert message in err
    assert "duplicate connection name 'shop_to_warehouse' (first declared on line" in err
    lines = [line for line in err.splitlines() if f"{path}:" in line]
    assert len(lines) >= 3 and all(f"{path}:" in line and "Fix:" in line for line in lines)
    assert len(airbyte_api.requests) == 0, "the Airbyte server was not even called"
    assert airbyte_api.sources() == [] and airbyte_api.connections() == []


# -- the source-s3 configuration against Airbyte's official API schema ------------------------------
API_SPEC = api_spec_path()


def official_schema(name: str) -> dict:
    """components.schemas[name] of Airbyte's public API (api_sdk.yaml), with its local $refs."""
    import yaml

    spec = yaml.safe_load(API_SPEC.read_text())
    schemas = spec["components"]["schemas"]
    return {**schemas[name], "components": {"schemas": schemas}}


def test_the_source_s3_configuration_is_valid_against_airbytes_official_schema(platform_env):
    """Every source-s3 source of the declaration in use; each stream's input_schema is sent as the
    JSON string of the declared column: type mapping."""
    import jsonschema

    from include.pipeline.ingest.airbyte_server.apply import source_config

    schema = official_schema("source-s3")
    sources = [s for s in load_connections().sources.values() if s.connector == "source-s3"]
    assert sources, "the declaration has a source-s3 source to check"
    for source in sources:
        config = source_config(source)
        jsonschema.validate(config, schema)  # raises with the failing path
        assert set(schema["required"]) <= set(config)
        declared_schemas = {s["name"]: s["input_schema"] for s in source.config["streams"]}
        for stream in config["streams"]:
            assert isinstance(stream["input_schema"], str)
            assert json.loads(stream["input_schema"]) == declared_schemas[stream["name"]]
    # and the validator rejects what the schema forbids: it can fail
    broken = {**config, "streams": [{k: v for k, v in config["streams"][0].items() if k != "format"}]}
    with pytest.raises(jsonschema.ValidationError, match="'format' is a required property"):
        jsonschema.validate(broken, schema)
