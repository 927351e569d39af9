"""The DAG's `full_refresh` and `reset_ingest` Params, end to end on the session stack: the
ingest re-reads every stream, Cosmos passes --full-refresh to dbt, the incremental orders mart is
rebuilt, and the result is the same as the incremental runs'; the day after, the sync reads that
day's files only. The run's dbt docs are kept with its artifacts."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from include.pipeline.identifiers import count_rows
from tests.support import E2E_DATE

pytestmark = pytest.mark.e2e

RELATIONS = [
    "raw.users", "raw.purchases", "staging.stg_shop__users", "staging.stg_shop__purchases",
    "intermediate.int_purchases_enriched", "marts.customers", "marts.orders", "marts.daily_revenue",
    "snapshots.customers_snapshot",
]  # fmt: skip


def figures(stack) -> dict:
    out = {r: stack.sql(count_rows(r))[0][0] for r in RELATIONS}
    out["net revenue"] = stack.sql("select sum(net_amount) from marts.orders")[0][0]
    return out


def test_a_full_refresh_run_rebuilds_the_incremental_mart_with_the_same_result(own_stack):
    stack = own_stack  # the full refresh rebuilds every table
    oid = stack.sql("select 'marts.orders'::regclass::oid")[0][0]
    staging_oid = stack.sql("select 'staging.stg_shop__users'::regclass::oid")[0][0]
    before = figures(stack)

    run = stack.cli("demo", "--date", E2E_DATE, "--full-refresh", "--reset-ingest")

    out, log = run.stdout, stack.demo_log(run)
    assert "run state: success" in out, out[-3000:]
    assert "write strategy replace, full refresh True" in log, "the ingest re-read every stream"
    assert "--full-refresh" in log, "Cosmos passed the flag to dbt"
    assert stack.sql("select 'marts.orders'::regclass::oid")[0][0] != oid, "marts.orders was recreated"
    assert stack.sql("select 'staging.stg_shop__users'::regclass::oid")[0][0] != staging_oid, (
        "the incremental staging table was rebuilt"
    )
    assert figures(stack) == before

    # The day after: the ingest's cursor is the one the full read ended with, so the warehouse's
    # sync reads that day's export only (it re-read every file, 2,460 records instead of 80).
    next_day = (dt.date.fromisoformat(E2E_DATE) + dt.timedelta(days=1)).isoformat()
    after = stack.cli("demo", "--date", next_day)
    assert "run state: success" in after.stdout, after.stdout[-3000:]
    log = stack.demo_log(after)
    exported = counts(log, rf"shop export {next_day} \(daily\): ([^;]+);")
    synced = counts(log, r"embedded engine: 'shop_to_warehouse' done in [\d.]+ s, \d+ records: ([a-z=0-9, ]+)")
    assert exported and sum(exported.values()) < 200, exported
    assert {k: v for k, v in synced.items() if v} == exported, (synced, exported)


def counts(log: str, pattern: str) -> dict[str, int]:
    """{stream: records} from the one log line `pattern` matches (its group: `users=40, purchases=40`)."""
    [found] = re.findall(pattern, log)
    return {name: int(n) for name, n in (part.strip().split("=") for part in found.split(","))}


def test_each_run_keeps_its_dbt_docs_with_its_artifacts(stack):
    sites = sorted((stack.root / ".local" / "artifacts").glob("*/dbt_docs"))
    assert sites, "no .local/artifacts/<run_id>/dbt_docs folder"
    for site in sites:
        assert {"index.html", "manifest.json", "catalog.json"} <= {p.name for p in site.iterdir()}
    import json

    catalog = json.loads((sites[-1] / "catalog.json").read_text())
    assert "model.ecommerce.orders" in catalog["nodes"], "the catalog describes the built marts"
