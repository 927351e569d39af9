"""End to end: `airflow dags test` of the daily DAG, through the same command as `make demo`."""

from __future__ import annotations

import pytest

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
}


def counts(stack) -> dict[str, tuple[int, int]]:
    return {
        table: stack.sql(f"select count(*), count(distinct {key}) from {table}")[0] for table, key in LAYERS.items()
    }


def test_the_daily_dag_runs_green_and_a_rerun_of_the_same_day_changes_nothing(stack):
    out = stack.first_run.stdout
    assert "run state: success" in out, out[-3000:]
    assert "not successful" not in out
    first = counts(stack)
    # source-faker count 1000: 1000 users, 100 products, 1000 purchases; staging and marts follow raw
    assert first["raw.users"] == (1000, 1000)
    assert first["raw.products"] == (100, 100)
    assert first["raw.purchases"] == (1000, 1000)
    assert first["marts.customers"] == first["staging.stg_faker__users"] == (1000, 1000)
    # every dbt model ran as its own task, with its tests after it, and all succeeded
    for model in ("stg_faker__users", "stg_faker__products", "stg_faker__purchases", "customers"):
        assert model in out

    second = stack.cli("demo", "--date", E2E_DATE)
    assert "run state: success" in second.stdout, second.stdout[-3000:]
    assert counts(stack) == first, "the same day run twice: identical row counts, zero duplicate keys"


def test_the_summary_lists_layers_and_task_states(stack):
    out = stack.first_run.stdout
    assert f"Summary of ecommerce_daily for {E2E_DATE}" in out
    for relation in LAYERS:
        assert relation in out
    assert "tasks: 9 success" in out
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
    assert psql.stdout.strip() == "1000", psql.stderr
