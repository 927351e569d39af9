"""End to end: `airflow dags test` of the daily DAG, through the same command as `make demo`."""

from __future__ import annotations

import pytest

from include.pipeline.ingest.connections import load_connections
from include.pipeline.ingest.daily import expected_counts
from tests.conftest import E2E_DATE

pytestmark = pytest.mark.e2e

LAYERS = {
    "raw.users": "id",
    "raw.products": "id",
    "raw.purchases": "id",
    "staging.stg_faker__users": "customer_id",
    "staging.stg_faker__products": "product_id",
    "staging.stg_faker__purchases": "purchase_id",
    "marts.customers": "customer_id",
    "marts.orders": "order_id",
    "marts.products": "product_id",
}


def expected() -> dict[str, int]:
    """Raw rows for E2E_DATE: the faker count grows with the logical date (ingest/daily.py)."""
    config = load_connections().connection("shop_faker_to_warehouse").source.resolved_config()
    return expected_counts(E2E_DATE, config)


def counts(stack) -> dict[str, tuple[int, int]]:
    return {
        table: stack.sql(f"select count(*), count(distinct {key}) from {table}")[0] for table, key in LAYERS.items()
    }


def test_the_daily_dag_runs_green_and_a_rerun_of_the_same_day_changes_nothing(stack):
    out = stack.first_run.stdout
    assert "run state: success" in out, out[-3000:]
    assert "not successful" not in out
    first = counts(stack)
    # source-faker: count users (1000 + 20 a day since 2026-01-01), 100 products, count purchases;
    # staging and marts follow raw
    rows = expected()
    assert rows["users"] == 1080
    for stream in ("users", "products", "purchases"):
        assert first[f"raw.{stream}"] == (rows[stream], rows[stream])
    assert first["marts.customers"] == first["staging.stg_faker__users"] == (rows["users"], rows["users"])
    assert first["marts.orders"] == first["staging.stg_faker__purchases"] == (rows["purchases"], rows["purchases"])
    # every dbt model ran as its own task, with its tests after it, and all succeeded
    for model in ("stg_faker__users", "stg_faker__products", "stg_faker__purchases", "customers", "orders"):
        assert f"task_id=transform.{model}.run" in out and f"task_id=transform.{model}.test" in out

    second = stack.cli("demo", "--date", E2E_DATE)
    assert "run state: success" in second.stdout, second.stdout[-3000:]
    assert counts(stack) == first, "the same day run twice: identical row counts, zero duplicate keys"


def test_the_summary_lists_layers_and_task_states(stack):
    out = stack.first_run.stdout
    assert f"Summary of ecommerce_daily for {E2E_DATE}" in out
    for relation in LAYERS:
        assert relation in out
    import re

    assert re.search(r"run state: success; tasks: \d+ success\n", out), "every task succeeded, none in another state"
    assert "wall time: dags test" in out


def test_services_print_a_url_psql_can_open_and_a_second_start_is_harmless(stack):
    started = stack.cli("services", "start")
    assert "already running" in started.stdout
    assert "postgresql://postgres:***@127.0.0.1:" in started.stdout
    url = stack.cli("services", "url").stdout.strip()
    import shutil
    import subprocess

    from include.pipeline.services.postgres import _bin_dir

    psql_bin = shutil.which("psql") or str(_bin_dir() / "psql")  # Debian's client, else the wheel's own
    psql = subprocess.run([psql_bin, url, "-tAc", "select count(*) from raw.users"], capture_output=True, text=True)
    assert psql.stdout.strip() == str(expected()["users"]), psql.stderr
