"""Reliability case 17, end to end: after the daily DAG's run (the session's `stack`, no extra
run), no generated secret appears in any task log, PyAirbyte log, XCom, rendered template,
metrics row or the command's output. Every generated secret is checked (settings.GENERATED_SECRETS:
the superuser's, each role's, the S3 admin key and each stage identity's keys). The source's S3
keys reach its connector through `${S3_EXPORTS_READER_ACCESS_KEY}` / `_SECRET_KEY` in
connections.yaml, which the ingest task fills from the Airflow connection `shop_exports`; the
warehouse password through the Airflow connection."""

from __future__ import annotations

import sqlite3

import pytest
from psycopg2 import sql

from include.pipeline import settings

pytestmark = pytest.mark.e2e


def generated_secrets(stack) -> dict[str, str]:
    values = settings.read_env_file(stack.root / ".env")
    found = {k: values[k] for k in settings.GENERATED_SECRETS if values.get(k)}
    found.update({k: stack.env[k] for k in ("WAREHOUSE_PASSWORD", "AIRFLOW_ADMIN_PASSWORD")})
    assert set(found) == set(settings.GENERATED_SECRETS), "every generated secret is checked"
    return found


def places(stack) -> dict[str, str]:
    """Everything a run leaves that a user, a dashboard or a log shipper can read."""
    out = {"demo output": stack.first_run.stdout + stack.first_run.stderr}
    # `airflow dags test` runs the tasks in-process: their logs are the command's output, which
    # the demo writes to .local/logs/demo-<time>.log (read below with the other logs)
    assert "embedded engine: syncing connection" in stack.demo_log(stack.first_run), "the ingest task's log is there"
    local = stack.root / ".local"
    for path in (p for folder in (local / "airflow" / "logs", local / "logs") for p in folder.rglob("*")):
        if path.is_file():  # Airflow's log folder, PyAirbyte's and the connector's logs
            out[str(path.relative_to(stack.root))] = path.read_bytes().decode("utf-8", "replace")
    # every table of Airflow's metadata DB (XComs, rendered templates, audit log, serialized DAGs)
    # except `connection`, where the secrets are meant to be
    db = sqlite3.connect(local / "airflow" / "airflow.db")
    try:
        names = [t for (t,) in db.execute("select name from sqlite_master where type = 'table'") if t != "connection"]
        for table in names:
            rows = db.execute(f'select * from "{table}"').fetchall()  # noqa: S608 (names from sqlite_master)
            out[f"airflow.db {table}"] = "\n".join(" ".join(map(str, row)) for row in rows)
        assert out["airflow.db xcom"], "the run pushed XComs (the sync figures)"
    finally:
        db.close()
    tables = [
        t for (t,) in stack.sql("select table_name from information_schema.tables where table_schema = 'metrics'")
    ]
    for table in tables:
        query = sql.SQL("select row_to_json(t)::text from {} as t").format(sql.Identifier("metrics", table))
        out[f"metrics.{table}"] = "\n".join(r for (r,) in stack.sql(query))
    assert out.get("metrics.syncs"), "the run wrote sync metrics rows"
    return out


def test_case_17_no_secret_anywhere_a_run_leaves(stack):
    leaks = [
        f"{name} in {where}"
        for name, value in generated_secrets(stack).items()
        for where, text in places(stack).items()
        if value in text
    ]
    assert leaks == []
