"""One list of secret fields, from the connectors' own specs, for validation and masking."""

from __future__ import annotations

import json
import re
import secrets

import pytest

from include.pipeline import settings
from include.pipeline.ingest import secret_fields
from include.pipeline.ingest.airbyte_server.apply import _diff, main
from include.pipeline.ingest.declaration import ConnectionsConfigError, load_connections
from tests.support.airbyte import api_spec_path

API_SPEC = api_spec_path()


def test_the_committed_list_is_the_one_the_spec_gives(tmp_path):
    """include/airbyte/secret_fields.json = what `python -m ...secret_fields api_sdk.yaml` writes."""
    assert API_SPEC.exists(), f"{API_SPEC}: Airbyte's public API spec, the test data this list comes from"
    fresh = secret_fields.write_cache(API_SPEC, tmp_path / "secret_fields.json")
    assert fresh.read_text() == secret_fields.CACHE_FILE.read_text(), "regenerate: see secret_fields.py"


@pytest.mark.parametrize(
    ("connector", "path", "secret"),
    [
        ("destination-postgres", ("password",), True),
        ("destination-postgres", ("tunnel_method", "ssh_key"), True),  # inside a oneOf branch
        ("destination-postgres", ("tunnel_method", "tunnel_user_password"), True),
        ("destination-postgres", ("ssl_mode", "client_key"), True),
        ("destination-postgres", ("username",), False),
        ("destination-postgres", ("host",), False),
        ("source-s3", ("aws_secret_access_key",), True),
        ("source-s3", ("credentials", "aws_secret_access_key"), True),  # the pinned connector's nesting
        ("source-s3", ("credentials", "aws_access_key_id"), True),
        ("source-s3", ("credentials", "auth_type"), False),
        ("source-s3", ("bucket",), False),
        ("source-somewhere-new", ("auth", "refresh_token"), True),  # unknown connector: generic names
        ("source-somewhere-new", ("auth", "username"), False),
    ],
)
def test_secret_fields_at_any_depth(connector, path, secret):
    assert secret_fields.is_secret(connector, path) is secret


def test_mask_replaces_every_secret_in_nested_blocks_and_lists():
    config = {
        "host": "h",
        "tunnel_method": {"tunnel_method": "SSH_KEY_AUTH", "ssh_key": "-----BEGIN KEY-----"},
        "credentials": [{"aws_secret_access_key": "k", "auth_type": "iam_user"}],
        "streams": [{"name": "users", "input_schema": {"password": "string"}}],  # column names: left as is
    }
    assert secret_fields.mask("destination-postgres", config) == {
        "host": "h",
        "tunnel_method": {"tunnel_method": "SSH_KEY_AUTH", "ssh_key": secret_fields.MASK},
        "credentials": [{"aws_secret_access_key": secret_fields.MASK, "auth_type": "iam_user"}],
        "streams": [{"name": "users", "input_schema": {"password": "string"}}],
    }


def test_plan_diffs_mask_nested_secrets_lists_included():
    desired = {"tunnel_method": {"ssh_key": "new-key-material"}, "streams": [{"api_key": "abc123", "name": "x"}]}
    current = {"tunnel_method": {"ssh_key": "old-key-material"}, "streams": [{"api_key": "zzz999", "name": "x"}]}
    lines = _diff(desired, current, "configuration", "destination-postgres")
    text = "\n".join(lines)
    assert "configuration.tunnel_method.ssh_key: '**********' -> '**********'" in text, text
    for value in ("new-key-material", "old-key-material", "abc123", "zzz999"):
        assert value not in text


@pytest.mark.parametrize(
    ("block", "key_line"),
    [
        ("    config:\n      bucket: b\n      credentials:\n        aws_secret_access_key: AKIAsecretvalue\n",
         "aws_secret_access_key"),
        ("    config:\n      bucket: b\n      aws_access_key_id: 12345\n", "aws_access_key_id"),
    ],
)  # fmt: skip
def test_a_literal_secret_in_a_source_config_is_rejected_with_its_line(tmp_path, block, key_line):
    text = SOURCE_ONLY.replace("    config:\n      bucket: b\n", block)
    path = tmp_path / "connections.yaml"
    path.write_text(text)
    with pytest.raises(ConnectionsConfigError) as info:
        load_connections(path)
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if key_line in t)
    assert any(p.startswith(f"{path}:{line}: ") and "is a secret written in the file" in p for p in info.value.problems)


def test_a_literal_nested_destination_secret_is_rejected(tmp_path):
    text = SOURCE_ONLY.replace(
        "    airflow_conn_id: warehouse\n",
        "    airflow_conn_id: warehouse\n    airbyte:\n      tunnel_method:\n        ssh_key: '-----BEGIN KEY'\n",
    )
    path = tmp_path / "connections.yaml"
    path.write_text(text)
    with pytest.raises(ConnectionsConfigError) as info:
        load_connections(path)
    assert any("airbyte tunnel_method.ssh_key is a secret" in p for p in info.value.problems), info.value.problems


def test_env_references_and_the_shipped_file_pass():
    config = load_connections(settings.CONNECTIONS_FILE)
    found = list(secret_fields.secret_values("source-s3", config.sources["shop"].config))
    assert {p for p, _, _ in found} == {("credentials", "aws_access_key_id"), ("credentials", "aws_secret_access_key")}


SOURCE_ONLY = """\
version: 1
sources:
  shop:
    connector: source-s3
    config:
      bucket: b
destinations:
  warehouse:
    type: postgres
    schema: raw
    airflow_conn_id: warehouse
connections:
  - name: shop_to_warehouse
    source: shop
    destination: warehouse
    streams:
      - name: users
        sync_mode: full_refresh_overwrite
"""


def test_case_17_plan_output_never_shows_a_secret(airbyte_api, platform_env, tmp_path, monkeypatch, capsys):
    """A nested ssl_mode.client_key (a secret of destination-postgres's spec that this server does
    not mask) changed in the environment: the plan shows the change, masked, and no secret from
    any config anywhere in its output."""
    old, new = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    declaration = tmp_path / "connections.yaml"
    declaration.write_text(
        re.sub(
            r"(?m)^    airflow_conn_id: warehouse_ingest.*\n",
            "    airflow_conn_id: warehouse_ingest\n    airbyte:\n      ssl_mode:\n"
            '        mode: verify-full\n        client_key: "${CLIENT_KEY}"\n',
            settings.CONNECTIONS_FILE.read_text(),
            count=1,
        )
    )
    monkeypatch.setenv("CLIENT_KEY", old)
    assert main(["apply", "--file", str(declaration)]) == 0
    [destination] = airbyte_api.destinations()
    assert destination["configuration"]["ssl_mode"]["client_key"] == old  # stored; this server does not mask it
    monkeypatch.setenv("CLIENT_KEY", new)
    capsys.readouterr()
    assert main(["plan", "--file", str(declaration)]) == 0
    out = capsys.readouterr()
    assert "configuration.ssl_mode.client_key: '**********' -> '**********'" in out.out, out.out
    shown = out.out + out.err
    for value in (
        old,
        new,
        platform_env["warehouse_password"],
        *(v for k, v in _s3_env().items() if k != "S3_ENDPOINT"),
    ):
        assert value not in shown


def _s3_env() -> dict[str, str]:
    import os

    return {k: os.environ[k] for k in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")}


def test_the_list_is_small_enough_to_load_at_parse_time():
    assert secret_fields.CACHE_FILE.stat().st_size < 100_000
    assert json.loads(secret_fields.CACHE_FILE.read_text())["connectors"]["destination-postgres"]
