"""Every connection airflow_settings.yaml makes is editable in the web UI: its type has a form in
the installed providers, the fields it fills are shown there, and it says what it is for."""

from __future__ import annotations

import pytest

from include.pipeline import airflow_settings, settings

FIELDS = {"conn_host": "host", "conn_port": "port", "conn_login": "login", "conn_password": "password",
          "conn_schema": "schema", "conn_extra": "extra"}  # fmt: skip


@pytest.fixture(scope="module")
def connections() -> list[dict]:
    path = settings.AIRFLOW_SETTINGS_FILE
    names = set(airflow_settings._PLACEHOLDER.findall(path.read_text()))
    return airflow_settings.render(path, {name: "1" for name in names})["connections"]


@pytest.fixture(scope="module")
def providers():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    return manager.hooks, manager.field_behaviours


def test_every_connection_type_has_a_form_with_the_fields_it_fills(connections, providers):
    hooks, behaviours = providers
    assert connections
    for c in connections:
        assert c["conn_type"] in hooks, (
            f"{c['conn_id']}: type {c['conn_type']!r} has no form (installed: {sorted(hooks)})"
        )
        hidden = set((behaviours.get(c["conn_type"]) or {}).get("hidden_fields", []))
        shown = {field for key, field in FIELDS.items() if c.get(key) not in (None, "")}
        assert not shown & hidden, f"{c['conn_id']}: its form hides {sorted(shown & hidden)}, which it sets"


def test_every_connection_says_what_it_is_for(connections):
    for c in connections:
        assert len(c.get("conn_description") or "") > 30, f"{c['conn_id']} has no description"
