"""The incremental staging and orders models give what a full build gives (issue 8).

A synthetic shop (benchmarks/synthetic_shop.py) with duplicate extractions and flagged records
is built, then two days are appended (1% new and changed records each, some flagged by Airbyte,
one product re-priced) and built incrementally. The tables are then compared, row for row, with
a `--full-refresh` build of the same raw data. Also: the daily run wrote only about the day's
records into staging, and a key whose newest extraction is flagged left staging for quarantine.
"""

from __future__ import annotations

import pytest
from psycopg2 import sql

from benchmarks.synthetic_shop import add_day, fill_shop
from include.pipeline import identifiers
from tests.support.dbt import Dbt
from tests.support.postgres import new_database

pytestmark = pytest.mark.integration

CUSTOMERS = 2_000
COMPARED = [
    "staging.stg_shop__users", "staging.stg_shop__products", "staging.stg_shop__purchases",
    "staging.stg_shop__quarantined_records", "intermediate.int_purchases_enriched", "marts.orders",
    "marts.customers", "marts.products", "marts.daily_revenue",
]  # fmt: skip


def contents(conn, relation: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("select * from {} order by 1, 2, 3").format(identifiers.relation(relation)))
        return cur.fetchall()


@pytest.fixture(scope="module")
def builds(postgres_server, tmp_path_factory) -> dict:
    target = new_database(postgres_server)
    conn = target.connect()
    conn.autocommit = True  # no open transaction may hold a lock while dbt swaps tables
    dbt = Dbt(target, tmp_path_factory.mktemp("dbt-incremental"))
    size = fill_shop(conn, CUSTOMERS)
    dbt("run")
    out: dict = {"appended": [], "written": []}
    for day in (1, 2):
        out["appended"].append(add_day(conn, size, day))
        dbt("run")
        out["written"].append(
            {
                r["unique_id"].split(".")[-1]: r["adapter_response"].get("rows_affected")
                for r in dbt.run_results()["results"]
            }
        )
    out["incremental"] = {r: contents(conn, r) for r in COMPARED}
    with conn.cursor() as cur:
        cur.execute(
            "select count(*) from raw.users as u where u._airbyte_meta::jsonb -> 'changes' <> '[]'::jsonb"
            " and u._airbyte_extracted_at > '2026-01-02' and exists (select 1 from raw.users as o"
            " where o.id = u.id and o._airbyte_extracted_at < u._airbyte_extracted_at)"
        )
        out["newly_flagged_users"] = cur.fetchone()[0]
    dbt("run", "--full-refresh")
    out["full"] = {r: contents(conn, r) for r in COMPARED}
    conn.close()
    return out


@pytest.mark.parametrize("relation", COMPARED)
def test_incremental_runs_equal_a_full_refresh(builds, relation):
    incremental, full = builds["incremental"][relation], builds["full"][relation]
    assert incremental, relation
    assert incremental == full, f"{relation}: {len(set(incremental) ^ set(full))} rows differ"


def test_a_daily_run_writes_about_the_days_records_into_staging(builds):
    for appended, written in zip(builds["appended"], builds["written"], strict=True):
        for stream, model in (("users", "stg_shop__users"), ("purchases", "stg_shop__purchases")):
            # the day's records, plus those re-read at the previous newest time stamp (>=)
            assert 0 < written[model] <= 1.5 * appended[stream], (model, written[model], appended)
        assert written["stg_shop__users"] < CUSTOMERS / 20


def test_a_key_whose_newest_extraction_is_flagged_moves_to_quarantine(builds):
    assert builds["newly_flagged_users"] > 0, "the synthetic days flag some changed customers"
    quarantined = {
        int(row[3]) for row in builds["incremental"]["staging.stg_shop__quarantined_records"] if row[1] == "users"
    }  # source_name, stream_name, raw_record_id, record_key (text: any key type)
    staged = {row[0] for row in builds["incremental"]["staging.stg_shop__users"]}
    assert quarantined and not quarantined & staged
