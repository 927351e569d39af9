"""After a whole `make demo` run (the session's `stack`): each stage did its work as its own role.

Who owns an object is who created it (or was given it by the migration), so the owners of the
relations the run built say which role each stage connected as; Airflow holds no superuser login.
"""

from __future__ import annotations

import sqlite3

import pytest

from include.pipeline.services.warehouse import migrate

pytestmark = pytest.mark.e2e


def owners(stack, schema: str) -> set[str]:
    rows = stack.sql(
        "select distinct pg_get_userbyid(c.relowner) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm')",
        (schema,),
    )
    return {r[0] for r in rows}


def test_every_stage_wrote_as_its_own_role(stack):
    assert "run state: success" in stack.first_run.stdout, stack.first_run.stdout[-3000:]
    assert owners(stack, "raw") == {"warehouse_ingest"}, "the embedded sync connects as the ingest role"
    for schema in ("staging", "marts", "snapshots"):
        assert owners(stack, schema) == {"warehouse_transform"}, f"dbt (Cosmos) builds {schema} as the transform role"
    assert owners(stack, "metrics") == {"warehouse_metrics"}, "the metrics schema migrates as the metrics role"
    tries = stack.sql("select count(*) from metrics.task_runs where dag_id = 'ecommerce_daily'")
    assert tries[0][0] > 0, "and the listener wrote its rows as that role"


def test_airflow_holds_one_connection_per_role_and_none_for_the_superuser(stack):
    with sqlite3.connect(stack.root / ".local" / "airflow" / "airflow.db") as db:  # the metadata DB
        logins = dict(db.execute("select conn_id, login from connection where conn_type = 'postgres'").fetchall())
    assert logins == {
        "warehouse_ingest": "warehouse_ingest",
        "warehouse_transform": "warehouse_transform",
        "warehouse_reader": "warehouse_reader",
        "metrics": "warehouse_metrics",
    }


def test_setting_up_again_changes_nothing_and_retires_the_superusers_connection(own_stack):
    """`make settings` a second time: no migration left to apply. An Airflow upgraded from before
    the roles still had the connection `warehouse` (the superuser's): loading the settings deletes it."""
    wh = own_stack.warehouse()
    params = {"host": wh.host, "port": wh.port, "user": wh.user, "password": wh.password, "dbname": wh.database}
    assert migrate(params) == []
    uri = f"postgresql://{wh.user}:{wh.password}@{wh.host}:{wh.port}/{wh.database}"
    own_stack.cli("airflow", "connections", "add", "warehouse", "--conn-uri", uri)
    out = own_stack.cli("settings").stdout
    assert "warehouse roles on" in out and "up to date" in out, out[-2000:]
    assert "1 retired connections" in out, out[-2000:]
    with sqlite3.connect(own_stack.root / ".local" / "airflow" / "airflow.db") as db:
        assert db.execute("select count(*) from connection where conn_id = 'warehouse'").fetchone() == (0,)
    assert own_stack.sql("select version from public.warehouse_migrations") == [("001",)]
