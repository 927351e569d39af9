"""Guard against a quadratic plan coming back in the dbt project (issue 8).

The project is built on two synthetic shops (benchmarks/synthetic_shop.py), SMALL and LARGE
customers, and each model's compiled SQL is run again under `EXPLAIN (ANALYZE, BUFFERS)`. Its work
is counted deterministically, not timed: the rows every plan node handled (emitted plus removed by
filters) times its loops, and the shared buffers it touched. Per raw row, a linear model does the
same work at both sizes; a nested loop that re-runs a window per outer row (the old staging views:
1.5 s at 1,120 purchases, 71.8 s at 7,520) does LARGE / SMALL times more. A model fails the guard
when its work per raw row grows by more than MAX_GROWTH.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.synthetic_shop import fill_shop
from include.pipeline import settings
from include.pipeline.endpoints import Warehouse
from tests.support.dbt import Dbt
from tests.support.postgres import new_database

pytestmark = pytest.mark.integration

SMALL, LARGE = 1_000, 5_000
MAX_GROWTH = 2.0  # linear: ~1 (less where a table is bounded, e.g. 100 products); quadratic: ~5
COUNTED = ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Join Filter", "Rows Removed by Index Recheck")


def plan_work(node: dict) -> int:
    """Rows handled by `node` and the nodes under it, each times its loops."""
    rows = sum(node.get(key, 0) for key in COUNTED) * max(node.get("Actual Loops", 1), 1)
    return int(rows) + sum(plan_work(child) for child in node.get("Plans", []))


def connect(target: Warehouse):
    return target.connect()


def measure(target: Warehouse, customers: int, work: Path, project_dir: Path = settings.DBT_PROJECT_DIR) -> dict:
    """{model: (rows handled, shared buffers)} per raw row, for a shop of `customers` built from
    scratch with `dbt run` in the empty database `target`."""
    conn = connect(target)
    try:
        fill_shop(conn, customers)
        with conn.cursor() as cur:
            cur.execute("select (select count(*) from raw.users) + (select count(*) from raw.purchases)")
            raw_rows = cur.fetchone()[0]
        dbt = Dbt(target, work, project_dir=project_dir)
        dbt("run")
        out = {}
        with conn.cursor() as cur:
            cur.execute("set max_parallel_workers_per_gather = 0")  # one plan shape, whatever the load
            for result in dbt.run_results()["results"]:
                if not result["unique_id"].startswith("model."):  # the on-run-start hook's `do` blocks
                    continue
                name = result["unique_id"].split(".")[-1]
                cur.execute(f"explain (analyze, buffers, format json) {result['compiled_code']}")
                plan = cur.fetchone()[0][0]["Plan"]
                buffers = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
                out[name] = (plan_work(plan) / raw_rows, buffers / raw_rows)
        conn.rollback()
        return out
    finally:
        conn.close()


@pytest.fixture(scope="module")
def work_per_row(postgres_server, tmp_path_factory) -> dict[int, dict]:
    return {
        size: measure(new_database(postgres_server), size, tmp_path_factory.mktemp(f"dbt-scale-{size}"))
        for size in (SMALL, LARGE)
    }


def growth(work_per_row: dict[int, dict]) -> dict[str, tuple[float, float]]:
    """{model: (growth of rows handled per raw row, growth of buffers per raw row)} LARGE vs SMALL
    (a model with no work at either size, a work table empty on a first build, left out)."""
    small, large = work_per_row[SMALL], work_per_row[LARGE]
    return {
        m: (large[m][0] / small[m][0], large[m][1] / max(small[m][1], 1e-9))
        for m in small
        if small[m][0] or large[m][0]
    }


def empty_on_a_first_build(manifest: dict) -> set[str]:
    """Work tables (meta `work_table`) read only by daily builds: int_touched_purchases is empty on
    a first build, which this guard measures (test_dbt_incremental covers its daily builds)."""
    return {
        n["name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"].get("meta", {}).get("work_table")
    }


def test_every_model_is_measured(work_per_row, manifest):
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    may_be_empty = empty_on_a_first_build(manifest)
    for size in (SMALL, LARGE):
        assert set(work_per_row[size]) == models
        assert all(rows > 0 for m, (rows, _) in work_per_row[size].items() if m not in may_be_empty), work_per_row[size]


def test_no_model_does_more_work_per_row_on_a_bigger_shop(work_per_row):
    figures = growth(work_per_row)
    report = "\n".join(
        f"  {m:32} rows/raw row x{r:.2f}  buffers/raw row x{b:.2f}" for m, (r, b) in sorted(figures.items())
    )
    quadratic = sorted(m for m, (r, b) in figures.items() if r > MAX_GROWTH or b > MAX_GROWTH)
    assert not quadratic, (
        f"work per raw row grew more than {MAX_GROWTH}x from {SMALL:,} to {LARGE:,} customers in {quadratic}"
        f" (a nested loop over an unmaterialized dedupe?):\n{report}\n{json.dumps(work_per_row, indent=1)}"
    )
