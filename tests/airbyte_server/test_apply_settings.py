"""`make airbyte-plan` / `airbyte-apply` right after `make setup` or `make services` (issue 10):
the warehouse connection comes from airflow_settings.yaml and .env, as `make settings` would load
it; before the embedded warehouse ever ran, the error names the command to run."""

from __future__ import annotations

import json
import os

import pytest

from include.pipeline import settings
from tests.fakes.airbyte_api import FakeAirbyteApi
from tests.support.airbyte import declared_count
from tests.support.declarations import warehouse_only
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_stack(tmp_path):
    """A stack after `make setup` only (.env; no services, Airflow's database never set up)."""
    fake = FakeAirbyteApi().start()
    stack = Stack(tmp_path)
    declaration = tmp_path / "connections-warehouse.yaml"  # the warehouse connection alone (conftest.py)
    declaration.write_text(warehouse_only(settings.CONNECTIONS_FILE.read_text()))
    stack.env.update(
        AIRBYTE_CONNECTIONS_FILE=str(declaration),
        AIRFLOW_CONN_AIRBYTE_DEFAULT=json.dumps(fake.airflow_connection()),
        NO_PROXY=",".join(p for p in (os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost") if p),
    )
    stack.fake = fake
    stack.declaration = declaration
    yield stack
    stack.cli("services", "stop", check=False)
    fake.stop()


def test_plan_before_the_warehouse_ever_ran_names_make_services(fresh_stack):
    plan = fresh_stack.cli("airbyte-plan", check=False)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "run `make services` first" in plan.stderr, plan.stderr
    assert "is not defined" not in plan.stderr
    assert fresh_stack.fake.requests == [], "nothing is called on the Airbyte server"


def test_apply_after_make_services_only(fresh_stack):
    """(plan goes through the same command: cli/connections.py cmd_airbyte)"""
    fresh_stack.cli("services", "start")
    assert not (fresh_stack.root / ".local" / "airflow" / "airflow.db").exists(), "no `make settings` ran"

    applied = fresh_stack.cli("airbyte-apply")
    total = declared_count(fresh_stack.declaration)
    assert f"Apply complete: {total} created" in applied.stdout, applied.stdout + applied.stderr
    [destination] = fresh_stack.fake.destinations()  # the warehouse: the lake's connection is left out
    port = json.loads((fresh_stack.root / ".local" / "services.json").read_text())["postgres"]["port"]
    assert (destination["configuration"]["host"], int(destination["configuration"]["port"])) == ("127.0.0.1", port)
    # the destination logs in as the ingest role (include/sql/warehouse), with its generated password
    generated = settings.read_env_file(fresh_stack.root / ".env")
    assert destination["configuration"]["username"] == "warehouse_ingest"
    assert destination["configuration"]["password"] == generated["WAREHOUSE_INGEST_PASSWORD"]
