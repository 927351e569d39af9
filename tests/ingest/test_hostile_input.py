"""connections.yaml written by someone hostile or careless: every name is checked against a strict
pattern with a file:line error (catalog or not), no name leaves its folder or reaches SQL
unchecked, and the YAML itself is bounded in size and in alias expansion."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from include.pipeline.ingest.declaration import ConnectionsConfigError, load_connections, yaml_lines
from include.pipeline.ingest.declaration import loader as connections_module

# source-s3 has no catalog snapshot: its streams come from its config; `nocatalog` below uses a
# connector with a requirements file and no snapshot at all (source-s3 without `streams:`).
BASE = """\
version: 1
sources:
  shop:
    connector: {connector}
    config:
      bucket: b
destinations:
  warehouse:
    type: postgres
    schema: {schema}
    airflow_conn_id: {conn_id}
connections:
  - name: {connection}
    source: {source}
    destination: warehouse
    streams:
      - name: {stream}
        sync_mode: incremental_deduped_history
        cursor_field: {cursor}
        primary_key: {pk}
"""
DEFAULTS = dict(
    connector="source-s3",
    schema="raw",
    conn_id="warehouse",
    connection="shop_to_warehouse",
    source="shop",
    stream="users",
    cursor="updated_at",
    pk="[id]",
)


def declaration(**overrides: str) -> str:
    return BASE.format(**{**DEFAULTS, **overrides})


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "connections.yaml"
    path.write_text(text)
    with pytest.raises(ConnectionsConfigError) as info:
        load_connections(path)
    assert "nothing was applied" in str(info.value)
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_the_base_declaration_is_valid_without_a_catalog(tmp_path):
    """The control: with the defaults, the same file loads (source-s3 has no catalog snapshot)."""
    path = tmp_path / "connections.yaml"
    path.write_text(declaration())
    config = load_connections(path)
    assert config.connections[0].streams[0].name == "users"
    assert config.destinations["warehouse"].schema == "raw"


@pytest.mark.parametrize(
    ("field", "value", "needle", "expected"),
    [
        (
            "schema",
            "'raw\"; drop schema marts cascade; --'",
            "schema:",
            "schema 'raw\"; drop schema marts cascade; --'",
        ),
        ("schema", "Raw", "schema:", "schema 'Raw' is not allowed"),
        ("schema", "'r a w'", "schema:", "is not allowed"),
        ("conn_id", "'warehouse; rm -rf /'", "airflow_conn_id:", "airflow_conn_id"),
        ("connector", "../requirements/source-faker", "connector:", "is not a connector name"),
        ("connector", "source-faker/../../x", "connector:", "is not a connector name"),
        ("connector", "/etc/passwd", "connector:", "is not a connector name"),
        ("connector", "[source-faker]", "connector:", "is not a connector name"),
        ("connection", "'shop\"; --'", "- name:", "connection name"),
        ("source", "[shop, other]", "source: [", "source name ['shop', 'other'] is not a valid name"),
        ("source", "{a: 1}", "source: {", "is not a valid name"),
        ("stream", "'users\"; drop table raw.users; --'", "- name: 'users", "is not a valid name"),
        ("stream", "[users]", "- name: [", "is not a valid name"),
        ("cursor", "'updated_at\" desc; --'", "cursor_field:", "cursor_field of stream 'users'"),
        ("cursor", "[updated_at]", "cursor_field:", "cursor_field of stream 'users'"),
        ("pk", "['id\"; --']", "primary_key:", "primary_key column of stream 'users'"),
        ("pk", "[[id]]", "primary_key:", "primary_key column of stream 'users'"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None,
)
def test_every_name_is_checked_with_file_and_line(tmp_path, field, value, needle, expected):
    text = declaration(**{field: value})
    found = problems(tmp_path, text)
    path = tmp_path / "connections.yaml"
    where = f"{path}:{line_of(text, needle)}: "
    assert any(p.startswith(where) and expected in p and "Fix:" in p for p in found), found


def test_a_stream_name_is_checked_even_when_the_connector_has_no_catalog(tmp_path):
    assert not (connections_module.CATALOG_DIR / "source-s3.json").exists()  # the case under test
    text = declaration(stream="'../../etc'")
    assert any("not a valid name" in p for p in problems(tmp_path, text))


def test_file_stream_columns_are_checked(tmp_path):
    text = declaration().replace(
        "      bucket: b\n",
        "      bucket: b\n      streams:\n        - name: users\n          format: {filetype: jsonl}\n"
        "          input_schema:\n            id: integer\n            'x\"; drop table y; --': string\n",
    )
    found = problems(tmp_path, text)
    assert any(f":{line_of(text, 'drop table y')}: " in p and "input_schema column" in p for p in found), found


def test_a_connector_outside_its_folder_is_never_used_to_build_a_path(tmp_path, monkeypatch):
    """The traversal name is refused before any path is built from it."""
    looked_up: list[str] = []
    real = connections_module.load_catalog

    def spy(connector: str) -> dict:
        looked_up.append(connector)
        return real(connector)

    monkeypatch.setattr(connections_module, "load_catalog", spy)
    problems(tmp_path, declaration(connector="../requirements/source-faker"))
    assert looked_up == []
    assert connections_module.load_catalog("../requirements/source-faker") == {}


def test_a_non_text_key_is_a_yaml_error_with_its_line(tmp_path):
    text = declaration().replace("      bucket: b\n", "      bucket: b\n      ? [a, b]\n      : c\n")
    found = problems(tmp_path, text)
    assert found and f":{line_of(text, '? [a, b]')}: " in found[0] and "plain text" in found[0], found


# -- YAML limits ---------------------------------------------------------------------------------
def alias_bomb(levels: int = 9, fan: int = 9) -> str:
    """The billion-laughs shape: each level lists the previous one `fan` times (fan**levels leaves)."""
    lines = ["        l0: &l0 [" + ", ".join(["lol"] * fan) + "]"]
    for i in range(1, levels):
        lines.append(f"        l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_fails_fast_with_the_line(tmp_path):
    bomb = alias_bomb()
    text = declaration().replace("      bucket: b\n", "      bucket: b\n      bomb:\n" + bomb)
    # 9**9 leaves in fewer bytes than the 1,258-byte bomb
    assert len(text.encode()) < 2_000 and len(bomb.encode()) < 1_300
    started = time.monotonic()
    found = problems(tmp_path, text)
    seconds = time.monotonic() - started
    assert seconds < 5, f"took {seconds:.1f} s"
    assert len(found) == 1 and "aliases" in found[0] and "100,000" in found[0], found
    # the line of the first anchor whose expansion passes the limit (l5: 9**6 = 531,441 values)
    assert f":{line_of(text, 'l5: &l5')}: " in found[0], found


def test_modest_aliases_still_load(tmp_path):
    """Anchors are legitimate YAML: reusing one a few times stays under the cap."""
    text = declaration().replace("      bucket: b\n", "      bucket: b\n      bomb:\n" + alias_bomb(levels=3, fan=3))
    path = tmp_path / "connections.yaml"
    path.write_text(text)
    assert load_connections(path).sources["shop"].config["bomb"]["l2"][2][2] == ["lol"] * 3


def test_a_recursive_alias_is_refused(tmp_path):
    text = declaration().replace("      bucket: b\n", "      bucket: b\n      loop: &loop [a, *loop]\n")
    found = problems(tmp_path, text)
    assert found and f":{line_of(text, 'loop: &loop')}: " in found[0], found


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(yaml_lines, "MAX_FILE_BYTES", 4096)
    text = declaration() + "# padding\n" * 500
    found = problems(tmp_path, text)
    assert len(found) == 1 and "over the limit of 4,096" in found[0], found
    assert declaration().encode().__len__() < 4096  # the same file without padding is under the cap


def test_the_size_cap_is_generous_for_real_declarations():
    from include.pipeline import settings

    assert settings.CONNECTIONS_FILE.stat().st_size * 50 < yaml_lines.MAX_FILE_BYTES
