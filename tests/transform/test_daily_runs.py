"""Three consecutive days of the shop, the last day again, then a full refresh: each the shop's
export of that day into a real S3 server, a real source-s3 sync by PyAirbyte
(include/pipeline/ingest/embedded_sync.py), then `dbt build`, on a real Postgres. Checks the issue's
acceptance: a day's sync reads only that day's new and changed records, unique keys in every
layer, the orders mart equal to a recount from raw, revenue equal to SQL over raw, the snapshot
keeping a changed customer's history, a rerun of a day reading nothing and changing nothing.
Then a customer exported again with an age that is not a number is flagged by the loader in
_airbyte_meta, goes to quarantine, and the build goes on."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg2 import sql

from benchmarks.synthetic_shop import create_other_raw_tables
from include.pipeline import endpoints, identifiers, settings
from include.pipeline.identifiers import count_rows
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded_sync import expected_counts, export_shop_day, shop_settings, sync_day
from include.pipeline.observe import freshness
from include.simulator.shop import ShopHistory, day_index
from tests.support.dbt import Dbt
from tests.support.postgres import new_database

pytestmark = pytest.mark.integration

DAYS = ["2026-01-02", "2026-01-03", "2026-01-04"]

# (relation, key) for every layer; the snapshot's key is its version id
KEYS = [
    ("raw.users", "id"), ("raw.products", "id"), ("raw.purchases", "id"),
    ("staging.stg_shop__users", "customer_id"), ("staging.stg_shop__products", "product_id"),
    ("staging.stg_shop__purchases", "purchase_id"), ("staging.stg_shop__quarantined_records", "raw_record_id"),
    ("intermediate.int_purchases_enriched", "purchase_id"),
    ("marts.customers", "customer_id"), ("marts.orders", "order_id"), ("marts.products", "product_id"),
    ("marts.daily_revenue", "order_date"), ("marts.monthly_cohort_retention", "cohort_month, months_since_first_order"),
    ("snapshots.customers_snapshot", "dbt_scd_id"),
]  # fmt: skip

# The order status and amounts computed straight from the raw tables, without dbt.
RAW_ORDERS = """
    select
        p.id as order_id, p.user_id as customer_id, p.product_id,
        case when p.purchased_at is not null and p.returned_at is not null then 'returned'
             when p.purchased_at is not null then 'purchased'
             when p.added_to_cart_at is not null then 'in_cart' else 'created' end as order_status,
        case when p.purchased_at is not null then pr.price else 0 end::numeric(14, 2) as gross_amount,
        case when p.purchased_at is not null and p.returned_at is not null then pr.price else 0 end::numeric(14, 2)
            as refund_amount
    from raw.purchases p left join raw.products pr on pr.id = p.product_id
"""


class Warehouse:
    def __init__(self, target: endpoints.Warehouse):
        self.target = target

    def sql(self, query: str, params=None) -> list[tuple]:
        t = self.target
        with t.connect() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []

    def state(self) -> dict:
        """Everything the checks compare, after one run."""
        s: dict = {"rows": {}, "duplicates": {}}
        for relation, key in KEYS:
            s["rows"][relation] = self.sql(count_rows(relation))[0][0]
            s["duplicates"][relation] = self.sql(
                sql.SQL("select count(*) from (select {k} from {r} group by {k} having count(*) > 1) d").format(
                    k=sql.SQL(", ").join(sql.Identifier(c.strip()) for c in key.split(",")),
                    r=identifiers.relation(relation),
                )
            )[0][0]
        raw_orders = sql.SQL(RAW_ORDERS)  # a constant query of this module
        s["orders_vs_raw"] = self.sql(
            sql.SQL(
                "select count(*) from ((select order_id, customer_id, product_id, order_status, gross_amount,"
                " refund_amount from marts.orders except all ({raw})) union all (({raw}) except all"
                " select order_id, customer_id, product_id, order_status, gross_amount, refund_amount from marts.orders)) d"
            ).format(raw=raw_orders)
        )[0][0]
        s["raw_revenue"] = self.sql(
            sql.SQL(
                "select sum(gross_amount), sum(refund_amount), sum(gross_amount - refund_amount) from ({raw}) o"
            ).format(raw=raw_orders)
        )[0]
        s["mart_revenue"] = {
            "orders": self.sql("select sum(gross_amount), sum(refund_amount), sum(net_amount) from marts.orders")[0],
            "daily_revenue": self.sql(
                "select sum(gross_revenue), sum(refunded_amount), sum(net_revenue) from marts.daily_revenue"
            )[0],
            "products": self.sql(
                "select sum(gross_revenue), sum(refunded_amount), sum(net_revenue) from marts.products"
            )[0],
        }
        s["lifetime_value"] = self.sql("select sum(lifetime_value) from marts.customers")[0][0]
        s["changed_orders"] = self.sql(
            "select order_id, product_id, order_status from marts.orders where order_id = any(%s) order by 1",
            (CHANGED_ORDERS,),
        )
        s["customer_versions"] = self.sql(
            "select email, dbt_valid_to is null from snapshots.customers_snapshot where customer_id = %s"
            " order by dbt_valid_from",
            (CHANGED_CUSTOMER,),
        )
        s["customer_now"] = self.sql(
            "select email from staging.stg_shop__users where customer_id = %s", (CHANGED_CUSTOMER,)
        )[0][0]
        s["orders_oid"] = self.sql("select 'marts.orders'::regclass::oid")[0][0]
        return s


SOURCE = load_connections().sources["shop"]
_HISTORY = ShopHistory(shop_settings(SOURCE), day_index(DAYS[-1]))
# orders the shop changed on the last two days, and a day-0 customer changed on the last day
CHANGED_ORDERS = sorted(
    {*_HISTORY.changed_order_ids(day_index(DAYS[1])), *_HISTORY.changed_order_ids(day_index(DAYS[2]))}
)
CHANGED_ORDERS = [int(i) for i in CHANGED_ORDERS]
CHANGED_CUSTOMER = int(min(_HISTORY.changed_customer_ids(day_index(DAYS[-1]))))


@pytest.fixture(scope="module")
def runs(postgres_server, s3_server, exports_env, tmp_path_factory) -> dict:
    target = new_database(postgres_server)
    conn = target.connect()  # the raw tables of any source besides the shop's (empty)
    create_other_raw_tables(conn)
    conn.close()
    wh = Warehouse(target)
    dbt = Dbt(target, tmp_path_factory.mktemp("dbt"))
    connection = load_connections().connection("shop_to_warehouse")
    client = s3_server.client()
    quiet = lambda _: None  # noqa: E731

    out: dict = {"exports": {}, "syncs": {}}
    for label, day, full in [(d, d, False) for d in DAYS] + [("again", DAYS[-1], False), ("full", DAYS[-1], True)]:
        out["exports"][label] = export_shop_day(connection.source, client, day, full_refresh=full, log=quiet)
        out["syncs"][label] = sync_day(connection, target, day, full_refresh=full, log=quiet)
        dbt("build", *(["--full-refresh"] if full else []))
        out[label] = wh.state()

    # reliability case 13: the shop exports customer 5 again with an age that is not a number.
    # The loader flags it as Airbyte's Postgres destination does (age NULL, the change listed in
    # _airbyte_meta), dbt quarantines the record, the build goes on, the freshness check counts it.
    put_bad_age(client, 5)
    out["flag_sync"] = sync_day(connection, target, DAYS[-1], log=quiet)
    out["raw_5"] = wh.sql("select age, _airbyte_meta::jsonb -> 'changes' from raw.users where id = 5")
    with target.connect() as conn, conn.cursor() as cur:
        out["type_errors"] = freshness.measure(cur, "raw.users")["type_errors"]
    out["quarantine_build"] = dbt("build", check=False)
    out["quarantine"] = wh.sql(
        "select source_name, stream_name, record_key, problem from staging.stg_shop__quarantined_records"
    )
    out["customer_5"] = wh.sql("select count(*) from marts.customers where customer_id = 5")[0][0]
    out["wh"] = wh
    return out


def put_bad_age(client, customer_id: int) -> None:
    """A new export file in the bucket with customer `customer_id`'s record, its age a string."""
    import io

    import pyarrow as pa

    from include.simulator.exports import encode
    from include.simulator.shop import COLUMNS

    settings = shop_settings(SOURCE)
    columns = COLUMNS["users"](ShopHistory(settings, day_index(DAYS[-1])), np.array([customer_id]))
    columns["age"] = pa.array(["not a number"])
    data = encode("users", columns, settings.format)
    key = f"users/{DAYS[-1]}/late-fix-part-0000.{settings.format}"
    client.put_object(settings.bucket, key, io.BytesIO(data), len(data))


def records(sync: dict) -> dict[str, int]:
    return {name: figures["records"] for name, figures in sync["streams"].items()}


@pytest.mark.parametrize("label", [*DAYS, "again", "full"])
def test_every_key_is_unique_in_every_layer(runs, label):
    assert runs[label]["duplicates"] == dict.fromkeys(runs[label]["duplicates"], 0)


@pytest.mark.parametrize("label", [*DAYS, "again", "full"])
def test_orders_equal_a_recount_from_raw_and_revenue_equals_sql_over_raw(runs, label):
    state = runs[label]
    assert state["orders_vs_raw"] == 0, "marts.orders differs from the orders computed from raw"
    assert state["rows"]["marts.orders"] == state["rows"]["raw.purchases"]
    for mart, totals in state["mart_revenue"].items():
        assert totals == state["raw_revenue"], mart
    assert state["lifetime_value"] == state["raw_revenue"][2]


def test_each_day_brings_new_customers_and_orders(runs):
    rows = [runs[d]["rows"] for d in DAYS]
    for day, r in zip(DAYS, rows, strict=True):
        expected = expected_counts(day, SOURCE)
        assert r["raw.users"] == r["marts.customers"] == expected["users"]
        assert r["raw.purchases"] == r["marts.orders"] == expected["purchases"]
        assert r["raw.products"] == r["marts.products"] == expected["products"]
    assert rows[0]["marts.orders"] < rows[1]["marts.orders"] < rows[2]["marts.orders"]


def test_the_first_day_reads_the_whole_shop_and_each_later_day_only_its_new_and_changed_records(runs):
    first = runs["exports"][DAYS[0]]
    assert first["kind"] == "full" and records(runs["syncs"][DAYS[0]]) == first["rows"]
    for before, day in zip(DAYS, DAYS[1:], strict=False):
        export, read = runs["exports"][day], records(runs["syncs"][day])
        assert export["kind"] == "daily"
        # what the shop exported that day, and nothing more, is what source-s3 read
        assert read == {"users": export["rows"]["users"], "products": 0, "purchases": export["rows"]["purchases"]}
        history = ShopHistory(shop_settings(SOURCE), day_index(day))
        for stream, table in (("users", "raw.users"), ("purchases", "raw.purchases")):
            new = runs[day]["rows"][table] - runs[before]["rows"][table]
            changed = len(
                history.changed_customer_ids(day_index(day))
                if stream == "users"
                else history.changed_order_ids(day_index(day))
            )
            assert read[stream] == new + changed, stream  # the day's new keys plus its changed ones
            assert read[stream] <= 0.05 * runs[day]["rows"][table], "an increment, not the whole shop"


def test_old_orders_change_from_day_to_day_and_the_incremental_model_merges_them(runs):
    versions = [runs[d]["changed_orders"] for d in DAYS]
    assert versions[0] != versions[1] != versions[2], "the day's changes advance orders (cart, purchased, returned)"
    # merged in place: the incremental table is the same relation from day to day
    assert runs[DAYS[0]]["orders_oid"] == runs[DAYS[1]]["orders_oid"] == runs[DAYS[2]]["orders_oid"]


def test_the_snapshot_keeps_the_history_of_a_changed_customer(runs):
    before, after = runs[DAYS[-2]]["customer_versions"], runs[DAYS[-1]]["customer_versions"]
    assert len(after) == len(before) + 1, after  # the last day's change is a new version
    assert len({email for email, _ in after}) == len(after), "a move comes with a new e-mail"
    assert [current for _, current in after] == [False] * (len(after) - 1) + [True]
    assert after[-1][0] == runs[DAYS[-1]]["customer_now"]


def test_rerunning_the_same_day_reads_nothing_and_changes_nothing(runs):
    last, again = runs[DAYS[-1]], runs["again"]
    export = runs["exports"]["again"]
    assert export["written"] == 0 and export["unchanged"] == runs["exports"][DAYS[-1]]["written"] > 0
    assert records(runs["syncs"]["again"]) == {"users": 0, "products": 0, "purchases": 0}
    for key in ("rows", "changed_orders", "raw_revenue", "customer_versions", "orders_oid"):
        assert again[key] == last[key], key


def test_a_full_refresh_rebuilds_the_incremental_model_with_the_same_result(runs):
    last, full = runs[DAYS[-1]], runs["full"]
    assert runs["exports"]["full"]["kind"] == "full"
    assert records(runs["syncs"]["full"]) == runs["exports"]["full"]["rows"], "one full export, re-read once"
    assert full["orders_oid"] != last["orders_oid"], "--full-refresh recreates marts.orders"
    for key in ("rows", "changed_orders", "raw_revenue", "customer_versions"):
        assert full[key] == last[key], key


def test_the_sync_after_a_full_refresh_reads_only_the_new_file(runs):
    """The full refresh read every file in incremental mode from no state, so its cursor is real:
    the next sync reads the one file written since (put_bad_age), not every file again."""
    assert records(runs["flag_sync"]) == {"users": 1, "products": 0, "purchases": 0}


def test_a_record_flagged_by_airbyte_is_quarantined_and_the_build_goes_on(runs):
    # the sync went on (after the full refresh above, source-s3 reads only the new file)
    assert records(runs["flag_sync"])["users"] >= 1
    nulled = [{"field": "age", "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"}]
    assert runs["raw_5"] == [(None, nulled)], "flagged by the loader, not by a test's UPDATE"
    assert runs["type_errors"] == 1, "the freshness check reports it to the metrics"
    build = runs["quarantine_build"]
    assert build.returncode == 0, build.stdout[-4000:]
    assert runs["quarantine"] == [("shop", "users", "5", "airbyte_changes")]
    assert runs["customer_5"] == 0
    # its orders stay; the marts' relationship test warns about the quarantined parent (a touched
    # key of the day; staging's tests read the rows written since: docs/transform.md)
    assert "WARN" in build.stdout and "relationships_orders_customer_id" in build.stdout


def test_a_contracted_mart_whose_column_type_changes_fails_and_loads_nothing(runs, tmp_path):
    """Reliability case 14: a mart's SQL starts returning text for a numeric column."""
    import shutil

    project = tmp_path / "dbt"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    sql = project / "models" / "marts" / "products.sql"
    sql.write_text(sql.read_text().replace("products.price,", "products.price::text as price,"))
    wh = runs["wh"]
    before = wh.sql("select count(*), sum(price) from marts.products")
    dbt = Dbt(wh.target, tmp_path / "work", project_dir=project)
    build = dbt("build", "--select", "products+", check=False)
    assert build.returncode == 1
    assert "contract" in build.stdout.lower() and "price" in build.stdout, build.stdout[-3000:]
    results = {r["unique_id"]: r["status"] for r in dbt.run_results()["results"]}
    assert results["model.ecommerce.products"] == "error"
    assert {s for uid, s in results.items() if uid.startswith("test.")} == {"skipped"}, "its tests are skipped"
    assert wh.sql("select count(*), sum(price) from marts.products") == before, "the old table is untouched"
    assert wh.sql(
        "select data_type from information_schema.columns where table_schema = 'marts'"
        " and table_name = 'products' and column_name = 'price'"
    ) == [("numeric",)]
