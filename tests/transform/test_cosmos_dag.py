"""How Cosmos renders the dbt project in the daily DAG (from the manifest, no database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.pipeline import settings

PROBE = Path(__file__).with_name("cosmos_probe.py")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_"))}
    env.update(settings.airflow_env())
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db")
    proc = subprocess.run(
        [sys.executable, str(PROBE), str(settings.REPO_ROOT / "dags")], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBE ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    out = json.loads(lines[-1][len("PROBE ") :])
    assert out["import_errors"] == {}
    return out


MODELS = [
    "stg_faker__users", "stg_faker__products", "stg_faker__purchases", "stg_faker__quarantined_records",
    "int_purchases_enriched", "customers", "orders", "products", "daily_revenue", "monthly_cohort_retention",
]  # fmt: skip


def test_one_run_task_and_one_test_task_per_model_and_a_snapshot_task(rendered):
    tasks = rendered["tasks"]
    for model in MODELS:
        assert tasks[f"transform.{model}.run"]["operator"] == "DbtRunLocalOperator"
        assert tasks[f"transform.{model}.test"]["operator"] == "DbtTestLocalOperator"
        assert tasks[f"transform.{model}.test"]["upstream"] == [f"transform.{model}.run"]
    assert tasks["transform.customers_snapshot.snapshot"]["operator"] == "DbtSnapshotLocalOperator"
    assert tasks["transform.customers_snapshot.snapshot"]["upstream"] == ["transform.stg_faker__users.test"]


@pytest.mark.parametrize(
    ("model", "parents"),
    [
        ("int_purchases_enriched", ["stg_faker__products", "stg_faker__purchases", "stg_faker__users"]),
        ("orders", ["int_purchases_enriched"]),
        ("customers", ["int_purchases_enriched", "stg_faker__users"]),
    ],
)
def test_a_model_runs_only_after_its_parents_tests_so_a_failing_test_stops_it(rendered, model, parents):
    assert rendered["tasks"][f"transform.{model}.run"]["upstream"] == [f"transform.{p}.test" for p in parents]


def test_docs_are_generated_after_the_whole_transform(rendered):
    tasks = rendered["tasks"]
    assert tasks["dbt_docs"]["operator"] == "DbtDocsLocalOperator"
    transform = {t: v for t, v in tasks.items() if t.startswith("transform.")}
    # the transform group's last tasks: no other transform task waits for them
    leaves = {t for t in transform if not any(t in other["upstream"] for other in transform.values())}
    assert set(tasks["dbt_docs"]["upstream"]) == leaves and leaves


def test_the_full_refresh_param_reaches_dbt_as_a_flag(rendered):
    flags = rendered["full_refresh"]
    assert flags["true"] == {"rendered": "True", "flags": ["--full-refresh"]}
    assert flags["false"] == {"rendered": "False", "flags": []}
