"""The incremental models give what a full build gives (issues 8 and 27).

A synthetic shop (benchmarks/synthetic_shop.py) with duplicate extractions and flagged records
is built, then three days are appended and each built with `dbt build` (data tests and the
snapshot included): 1% new and 1% changed records a day, some flagged by Airbyte (their key
leaves staging for quarantine), one product re-priced. The changes hit old records (a changed
purchase moves to another customer, product and day, years back) and new purchases arrive late
(their day is any day of the shop's three years). Every model that keeps state from one build to
the next (incremental, from the manifest) and every mart is then copied and compared, row for
row (EXCEPT ALL both ways), with a `--full-refresh` build of the same raw data. Also: the daily
run wrote only about the day's records into staging and marts, a key whose newest extraction
is flagged left staging for quarantine, and the snapshot, reading only the day's changed
customers, holds each staged profile as its current row. The days' data tests read the rows the
day touched (macro get_where_subquery), and a last day bringing a new customer with an old,
untouched customer's e-mail still fails its `unique` test. A day's staging reads raw from a
literal time, which Postgres estimates from raw's `_airbyte_extracted_at` index; `daily_revenue`,
kept by difference, merges only the days the day touched (moved, returned and late purchases).
"""

from __future__ import annotations

import re

import pytest
from psycopg2 import sql

from benchmarks.synthetic_shop import add_day, fill_shop
from include.pipeline import identifiers
from tests.support.dbt import Dbt
from tests.support.postgres import new_database

pytestmark = pytest.mark.integration

CUSTOMERS = 2_000
DAYS = (1, 2, 3)
COPY = "incremental_copy"  # the schema the incremental builds' tables are copied to


def compared(manifest: dict) -> list[str]:
    """schema.name of every model that keeps state between builds (incremental) and every mart."""
    return sorted(
        f"{node['schema']}.{node['alias']}"
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and (node["config"]["materialized"] == "incremental" or node["fqn"][1] == "marts")
    )


def contents(conn, relation: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("select * from {} order by 1, 2, 3").format(identifiers.relation(relation)))
        return cur.fetchall()


def differences(conn, relation: str) -> tuple[int, int, int]:
    """(rows, rows only in the incremental build's copy, rows only in the full build) of `relation`."""
    schema, name = relation.split(".")
    full, copy = sql.Identifier(schema, name), sql.Identifier(COPY, name)
    query = sql.SQL(
        "select (select count(*) from {full}),"
        " (select count(*) from (select * from {copy} except all select * from {full}) as only_incremental),"
        " (select count(*) from (select * from {full} except all select * from {copy}) as only_full)"
    ).format(full=full, copy=copy)
    with conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchone()


def extract_a_quarantined_customer_clean(conn) -> int:
    """Append a clean, newer extraction of a customer the quarantine holds (its key must leave the
    quarantine and come back to staging); returns its id."""
    with conn.cursor() as cur:
        cur.execute(
            "select record_key::bigint from staging.stg_shop__quarantined_records"
            " where stream_name = 'users' and problem = 'airbyte_changes' order by 1 limit 1"
        )
        (customer,) = cur.fetchone()
        cur.execute(
            "insert into raw.users select id, created_at, updated_at, name, title, 40, email, telephone, gender,"
            " language, academic_degree, nationality, occupation, height, blood_type, weight, address,"
            " _airbyte_raw_id || '-clean', (select max(_airbyte_extracted_at) from raw.users), '{}'::json"
            " from raw.users where id = %s order by _airbyte_extracted_at desc limit 1",
            (customer,),
        )
    return customer


def extract_a_product(conn, flagged: bool, product: int | None = None) -> int:
    """Append a newer extraction of `product` (default: the highest id, which no synthetic day
    re-prices), flagged by Airbyte (its key leaves staging for the quarantine) or clean (it comes
    back); returns its id."""
    meta = '{"changes": [{"field": "price", "change": "NULLED", "reason": "SOURCE_SERIALIZATION_ERROR"}]}'
    with conn.cursor() as cur:
        cur.execute(
            "insert into raw.products select (jsonb_populate_record(null::raw.products, to_jsonb(p)"
            " || jsonb_build_object('_airbyte_raw_id', p._airbyte_raw_id || %s, '_airbyte_meta', %s::jsonb,"
            " '_airbyte_extracted_at', (select max(_airbyte_extracted_at) from raw.products)))).*"
            " from raw.products as p where p.id = coalesce(%s, (select max(id) from raw.products))"
            " order by p._airbyte_extracted_at desc limit 1 returning id",
            ("-flagged" if flagged else "-clean", meta if flagged else "{}", product),
        )
        return cur.fetchone()[0]


def product_rows(conn, product: int) -> dict[str, int]:
    """How many rows of `product` the quarantine, staging and the products mart hold."""
    with conn.cursor() as cur:
        cur.execute(
            "select (select count(*) from staging.stg_shop__quarantined_records where stream_name = 'products'"
            " and record_key = %(p)s::text), (select count(*) from staging.stg_shop__products where product_id = %(p)s),"
            " (select count(*) from marts.products where product_id = %(p)s)",
            {"p": product},
        )
        return dict(zip(("quarantine", "staging", "mart"), cur.fetchone(), strict=True))


@pytest.fixture(scope="module")
def builds(postgres_server, tmp_path_factory, manifest) -> dict:
    target = new_database(postgres_server)
    conn = target.connect()
    conn.autocommit = True  # no open transaction may hold a lock while dbt swaps tables
    dbt = Dbt(target, tmp_path_factory.mktemp("dbt-incremental"))
    size = fill_shop(conn, CUSTOMERS)
    dbt("build")
    out: dict = {"appended": [], "written": [], "compared": compared(manifest)}
    out["first_tests"] = compiled_tests(dbt.run_results())
    out["unit_tests"] = {
        r["unique_id"]: r["status"] for r in dbt.run_results()["results"] if r["unique_id"].startswith("unit_test.")
    }
    for day in DAYS:
        out["appended"].append(add_day(conn, size, day))
        if day == DAYS[0]:  # a product leaves for the quarantine, and comes back the next day
            out["product"] = extract_a_product(conn, flagged=True)
        if day == DAYS[1]:
            out["cleared"] = extract_a_quarantined_customer_clean(conn)
            extract_a_product(conn, flagged=False, product=out["product"])
        dbt("build")
        out.setdefault("product_rows", []).append(product_rows(conn, out["product"]))
        out["written"].append(
            {
                r["unique_id"].split(".")[-1]: r["adapter_response"].get("rows_affected")
                for r in dbt.run_results()["results"]
                if r["unique_id"].startswith(("model.", "snapshot."))
            }
        )
        out["tests"] = compiled_tests(dbt.run_results())
        out.setdefault("day_changes", []).append(day_changes(conn))
        out["raw_reads"] = raw_reads(conn, dbt.run_results())
    out["incremental"] = {
        r: contents(conn, r) for r in ("staging.stg_shop__users", "staging.stg_shop__quarantined_records")
    }
    with conn.cursor() as cur:
        cur.execute(sql.SQL("create schema {}").format(sql.Identifier(COPY)))
        for relation in out["compared"]:
            cur.execute(
                sql.SQL("create table {} as select * from {}").format(
                    sql.Identifier(COPY, relation.split(".")[1]), identifiers.relation(relation)
                )
            )
        # the snapshot's current row of each staged customer holds the staged profile
        cur.execute(
            "select count(*) from staging.stg_shop__users as s left join snapshots.customers_snapshot as c"
            " on c.customer_id = s.customer_id and c.dbt_valid_to is null"
            " where c.customer_id is null or (c.email, c.city) is distinct from (s.email, s.city)"
        )
        out["snapshot_behind"] = cur.fetchone()[0]
    with conn.cursor() as cur:
        cur.execute(
            "select count(*) from raw.users as u where u._airbyte_meta::jsonb -> 'changes' <> '[]'::jsonb"
            " and u._airbyte_extracted_at > '2026-01-02' and exists (select 1 from raw.users as o"
            " where o.id = u.id and o._airbyte_extracted_at < u._airbyte_extracted_at)"
        )
        out["newly_flagged_users"] = cur.fetchone()[0]
    dbt("run", "--full-refresh")
    out["differences"] = {relation: differences(conn, relation) for relation in out["compared"]}
    conn.close()
    out["target"], out["dbt"] = target, dbt
    return out


def day_changes(conn) -> dict[str, int]:
    """What the day's build recomputed (int_purchase_changes, before the full rebuild empties it):
    purchases moved to another day, purchases returned, new purchases of days long past (late),
    the days touched, and the days daily_revenue holds."""
    with conn.cursor() as cur:
        cur.execute(
            "select"
            " (select count(*) from intermediate.int_purchase_changes as b"
            "  join intermediate.int_purchases_enriched as e on e.purchase_id = b.purchase_id"
            "  where b.state = 'before' and b.order_date <> e.order_date),"
            " (select count(*) from intermediate.int_purchase_changes as b"
            "  join intermediate.int_purchases_enriched as e on e.purchase_id = b.purchase_id"
            "  where b.state = 'before' and b.order_status = 'purchased' and e.order_status = 'returned'),"
            " (select count(*) from intermediate.int_purchase_changes as a"
            "  where a.state = 'after' and a.order_date < date '2025-01-01' and not exists ("
            "   select from intermediate.int_purchase_changes as b"
            "   where b.state = 'before' and b.purchase_id = a.purchase_id)),"
            " (select count(distinct order_date) from intermediate.int_purchase_changes),"
            " (select count(*) from marts.daily_revenue)"
        )
        moved, returned, late, touched_days, days = cur.fetchone()
    return {"moved": moved, "returned": returned, "late": late, "touched_days": touched_days, "days": days}


def raw_reads(conn, results: dict) -> dict[str, dict]:
    """{staging model: its raw table's rows, the rows Postgres expects its day's read of raw to
    return, and the index it reads through when scans are barred} from EXPLAIN of the day's
    compiled SQL (which holds the time it reads from)."""
    out = {}
    for result in results["results"]:
        name = result["unique_id"].split(".")[-1]
        if name not in ("stg_shop__users", "stg_shop__purchases"):
            continue
        table = name.split("__")[1]
        with conn.cursor() as cur:
            cur.execute(identifiers.count_rows(f"raw.{table}"))
            (rows,) = cur.fetchone()
            cur.execute(f"explain (format json) {result['compiled_code']}")
            estimated = [
                n["Plan Rows"] for n in plan_nodes(cur.fetchone()[0][0]["Plan"]) if n.get("Relation Name") == table
            ]
            cur.execute("begin; set local enable_seqscan = off")
            cur.execute(f"explain (format json) {result['compiled_code']}")
            indexes = {n.get("Index Name") for n in plan_nodes(cur.fetchone()[0][0]["Plan"])} - {None}
            cur.execute("rollback")
        out[name] = {"rows": rows, "estimated": estimated, "indexes": indexes}
    return out


def plan_nodes(node: dict) -> list[dict]:
    return [node] + [n for child in node.get("Plans", []) for n in plan_nodes(child)]


def compiled_tests(results: dict) -> dict[str, str]:
    """{test name: its compiled SQL} of a build's data tests."""
    return {
        r["unique_id"].split(".")[2]: r["compiled_code"]
        for r in results["results"]
        if r["unique_id"].startswith("test.")
    }


@pytest.fixture(scope="module")
def duplicate_day(builds) -> dict:
    """After the daily builds (and their comparison), a day whose one new customer has the e-mail
    of a customer no day touched; its `dbt build`, expected to fail, and its run results."""
    conn = builds["target"].connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "insert into raw.users select (select max(id) + 1 from raw.users), created_at, updated_at, name, title,"
            " age, email, telephone, gender, language, academic_degree, nationality, occupation, height, blood_type,"
            " weight, address, _airbyte_raw_id || '-duplicate', (select max(_airbyte_extracted_at) + interval '1 day'"
            " from raw.users), '{}'::json from raw.users where id = (select min(id) from raw.users as old"
            " where not exists (select from raw.users as newer where newer.id = old.id"
            " and newer._airbyte_extracted_at > old._airbyte_extracted_at)) returning email"
        )
        (email,) = cur.fetchone()
    conn.close()
    proc = builds["dbt"]("build", check=False)
    return {"email": email, "returncode": proc.returncode, "results": builds["dbt"].run_results()}


def test_every_mart_and_incremental_model_is_compared(builds, manifest):
    marts = {n["alias"] for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["fqn"][1] == "marts"}
    assert marts and marts <= {relation.split(".")[1] for relation in builds["compared"]}
    assert any(relation.startswith("intermediate.") for relation in builds["compared"])


def test_incremental_days_equal_a_full_rebuild_row_for_row(builds):
    report = {relation: diff for relation, diff in builds["differences"].items() if diff[0] == 0 or diff[1] or diff[2]}
    assert not report, f"(rows, only after the daily builds, only after a full rebuild) per relation: {report}"


def test_the_snapshot_holds_every_staged_profile_as_current(builds):
    assert builds["snapshot_behind"] == 0


def test_a_daily_run_writes_about_the_days_records_into_staging(builds):
    for appended, written in zip(builds["appended"], builds["written"], strict=True):
        for stream, model in (("users", "stg_shop__users"), ("purchases", "stg_shop__purchases")):
            # the day's records, plus those re-read at the previous newest time stamp (>=)
            assert 0 < written[model] <= 1.5 * appended[stream], (model, written[model], appended)
        assert written["stg_shop__users"] < CUSTOMERS / 20
        # the marts rewrite the day's orders and customers, not the whole shop
        # (and every purchase of a product whose record changed: ~20 for each, 1 or 2 a day here)
        assert 0 < written["orders"] <= 3 * appended["purchases"] + CUSTOMERS // 50, (written["orders"], appended)
        assert 0 < written["customers"] < CUSTOMERS / 4, written["customers"]


def test_a_key_whose_newest_extraction_is_flagged_moves_to_quarantine(builds):
    assert builds["newly_flagged_users"] > 0, "the synthetic days flag some changed customers"
    quarantined = {
        int(row[3]) for row in builds["incremental"]["staging.stg_shop__quarantined_records"] if row[1] == "users"
    }  # source_name, stream_name, raw_record_id, record_key (text: any key type)
    staged = {row[0] for row in builds["incremental"]["staging.stg_shop__users"]}
    assert quarantined and not quarantined & staged


def test_a_product_quarantined_then_clean_again_leaves_and_comes_back_to_the_mart(builds):
    """The products mart is kept by difference; a product back from the quarantine has no row to
    add to while its purchases stayed in int_purchases_enriched (the full-rebuild comparison
    above checks its figures)."""
    quarantined, back, later = builds["product_rows"]
    assert quarantined == {"quarantine": 1, "staging": 0, "mart": 0}
    assert back == later == {"quarantine": 0, "staging": 1, "mart": 1}


def test_a_key_extracted_clean_again_leaves_the_quarantine_for_staging(builds):
    customer = builds["cleared"]
    quarantined = {
        int(row[3]) for row in builds["incremental"]["staging.stg_shop__quarantined_records"] if row[1] == "users"
    }
    assert customer not in quarantined
    assert customer in {row[0] for row in builds["incremental"]["staging.stg_shop__users"]}


def test_a_daily_build_tests_the_rows_it_touched(builds, manifest):
    """The day's tests of the big models read the touched keys (macro get_where_subquery), not
    whole tables; the first build's tests, and those of the small tables, read everything."""

    def restricted(code: str) -> bool:
        return "dbt_subquery" in code  # what get_where_subquery reads a filtered model as

    def tests_of(model: str, kinds: tuple[str, ...]) -> list[str]:
        return [
            n["name"] for n in manifest["nodes"].values()
            if n["resource_type"] == "test" and n.get("attached_node") == f"model.ecommerce.{model}"
            and (n.get("test_metadata") or {}).get("name") in kinds and n["name"] in builds["tests"]
        ]  # fmt: skip

    # keys are unique indexes or primary-key constraints, the marts' rules check constraints: the
    # tests left are looked at (a model may have none left: int_purchases_enriched, customers)
    kinds = ("unique", "not_null", "accepted_values", "accepted_range", "not_before", "relationships")
    big = ("stg_shop__users", "stg_shop__purchases", "int_purchases_enriched", "orders", "customers")
    for model in big:
        names = tests_of(model, kinds)
        assert all(restricted(builds["tests"][name]) for name in names), (model, names)
        assert not any(restricted(builds["first_tests"][name]) for name in names), model
    assert all(tests_of(model, kinds) for model in ("stg_shop__users", "stg_shop__purchases", "orders"))
    small = [
        name for model in ("stg_shop__products", "stg_shop__quarantined_records") for name in tests_of(model, kinds)
    ]
    assert small and not any(restricted(builds["tests"][name]) for name in small)
    # the shop's sources' one-row tests read the records landed since the last build, not all of
    # raw (a source of the user's own, not in macro touched_keys, is read whole)
    on_sources = [
        n["name"] for n in manifest["nodes"].values()
        if n["resource_type"] == "test" and n["name"] in builds["tests"]
        and any(parent.startswith("source.") for parent in n["depends_on"]["nodes"])
        and (n.get("test_metadata") or {}).get("name") == "not_null"
    ]  # fmt: skip
    daily = [name for name in on_sources if restricted(builds["tests"][name])]
    assert daily and all("_airbyte_extracted_at >= " in builds["tests"][name] for name in daily), on_sources
    assert not any(restricted(builds["first_tests"][name]) for name in on_sources)


def test_the_unit_tests_run_and_pass_here_as_the_daily_dag_leaves_them_out(builds, manifest):
    """The DAG's build excludes dbt's unit tests (fixed rows: they follow the code, not the day's
    data; cosmos_config.py); a plain `dbt build`, as here in `make test`, runs every one."""
    assert set(builds["unit_tests"]) == set(manifest["unit_tests"]) and manifest["unit_tests"]
    assert set(builds["unit_tests"].values()) == {"pass"}


def test_the_constraints_and_unique_indexes_that_replace_tests_are_in_the_database(builds, manifest):
    """Where the database holds a key or a rule, no data test reads the table again for it: the
    marts' not_null, primary-key and check constraints (enforced contracts), the unique indexes of staging,
    int_purchases_enriched and the snapshot (their `indexes` config). All are on the tables the
    daily builds wrote into, so a null or a duplicate fails the build that writes it."""
    conn = builds["target"].connect()
    checked = 0
    try:
        with conn.cursor() as cur:
            for node in manifest["nodes"].values():
                if node["resource_type"] not in ("model", "snapshot"):
                    continue
                relation = f"{node['schema']}.{node['alias']}"
                cur.execute(
                    "select a.attname from pg_attribute as a where a.attrelid = %s::regclass and a.attnotnull",
                    (relation,),
                )
                not_null = {r[0] for r in cur.fetchall()}
                cur.execute(
                    "select array(select a.attname from unnest(i.indkey) as k join pg_attribute as a"
                    " on a.attrelid = i.indrelid and a.attnum = k), i.indisprimary from pg_index as i"
                    " where i.indrelid = %s::regclass and i.indisunique",
                    (relation,),
                )
                unique = {(tuple(sorted(cols)), primary) for cols, primary in cur.fetchall()}
                cur.execute(
                    "select pg_get_constraintdef(oid) from pg_constraint where conrelid = %s::regclass"
                    " and contype = 'c'",
                    (relation,),
                )
                checks = [" ".join(r[0].split()) for r in cur.fetchall()]
                declared = [c for column in node["columns"].values() for c in column.get("constraints", [])] + list(
                    node.get("constraints") or []
                )
                assert len([c for c in declared if c["type"] == "check"]) <= len(checks), (relation, checks)
                for c in declared:
                    if c["type"] == "check":  # Postgres writes it back its own way: its column names are there
                        words = set(re.findall(r"[a-z_]+", c["expression"])) - {"in", "and", "between", "or"}
                        assert any(words <= set(re.findall(r"[a-z_]+", found)) for found in checks), (relation, c)
                        checked += 1
                    if c["type"] == "primary_key" and c.get("columns"):
                        assert (tuple(sorted(c["columns"])), True) in unique, f"{relation}: no primary key {c}"
                for name, column in node["columns"].items():
                    types = {c["type"] for c in column.get("constraints", [])}
                    if types & {"not_null", "primary_key"}:
                        assert name in not_null, f"{relation}.{name}: not null in its contract, not in the table"
                        checked += 1
                    if "primary_key" in types:
                        assert ((name,), True) in unique, f"{relation}: no primary key on {name}"
                for index in node["config"].get("indexes") or []:
                    if index.get("unique"):
                        columns = tuple(sorted(index["columns"]))
                        assert {u for u, _ in unique} >= {columns}, f"{relation}: no unique index on {columns}"
                        checked += 1
    finally:
        conn.close()
    assert checked > 10


@pytest.mark.parametrize(
    ("mart", "column", "value"),
    [("orders", "order_status", "'shipped'"), ("customers", "lifetime_value", "-1"), ("products", "return_rate", "2")],
)
def test_a_row_breaking_a_marts_rule_is_refused_as_it_is_written(builds, mart, column, value):
    """The rules the marts' tests used to read back are check constraints: Postgres refuses the
    row (a day's merge writing it fails, in its transaction: the mart keeps its rows)."""
    import psycopg2.errors

    conn = builds["target"].connect()
    try:
        with pytest.raises(psycopg2.errors.CheckViolation), conn.cursor() as cur:
            cur.execute(f"update marts.{mart} set {column} = {value} where ctid = (select min(ctid) from marts.{mart})")  # noqa: S608 - literals
    finally:
        conn.rollback()
        conn.close()


def test_a_duplicate_brought_by_a_day_fails_that_days_restricted_test(duplicate_day):
    """A new customer with an old, untouched customer's e-mail: the day's `unique` test on e-mail,
    restricted to the e-mails the day's rows hold, reads both rows and fails the build."""
    assert duplicate_day["returncode"] != 0
    failed = {
        r["unique_id"].split(".")[2]: r for r in duplicate_day["results"]["results"] if r["status"] in ("fail", "error")
    }
    name = next((n for n in failed if n.startswith("unique_stg_shop__users_email")), None)
    assert name, sorted(failed)
    assert failed[name]["failures"] == 1
    assert "dbt_subquery" in failed[name]["compiled_code"], "the test was not restricted to the day's rows"


def index_columns(conn, relation: str) -> list[tuple[str, ...]]:
    """The column lists of the indexes of `relation` (schema.table)."""
    with conn.cursor() as cur:
        cur.execute(
            "select array_agg(a.attname::text order by k.position) from pg_index as i"
            " cross join unnest(i.indkey) with ordinality as k (attnum, position)"
            " join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum"
            " where i.indrelid = %s::regclass group by i.indexrelid",
            (relation,),
        )
        return [tuple(row[0]) for row in cur.fetchall()]


def test_an_index_its_config_declares_is_added_to_a_table_built_before_it(builds, manifest):
    """dbt creates a model's `indexes` with its table only; an incremental run adds those the
    table lacks (macro create_missing_indexes), so a warehouse built before an index was declared
    does not read through a missing one until its next full refresh."""
    declared = {
        f"{n['schema']}.{n['alias']}": [tuple(i["columns"]) for i in n["config"].get("indexes") or []]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"]["materialized"] == "incremental"
    }
    declared = {relation: indexes for relation, indexes in declared.items() if indexes}
    assert declared
    conn = builds["target"].connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        for relation in declared:
            cur.execute(
                "select i.indexrelid::regclass::text from pg_index as i where i.indrelid = %s::regclass"
                " and not i.indisunique and not i.indisprimary",
                (relation,),
            )
            for (index,) in cur.fetchall():
                cur.execute(sql.SQL("drop index {}").format(sql.SQL(index)))
    dropped = {relation: set(indexes) - set(index_columns(conn, relation)) for relation, indexes in declared.items()}
    assert any(dropped.values())
    builds["dbt"]("run", "--select", *(relation.split(".")[1] for relation, lost in dropped.items() if lost))
    missing = {relation: set(indexes) - set(index_columns(conn, relation)) for relation, indexes in declared.items()}
    conn.close()
    assert not any(missing.values()), missing


def test_a_day_reads_raw_through_the_extracted_at_index(builds):
    """Staging's day reads raw from a literal time (macro newest_extraction): Postgres expects the
    day's few records, not a third of the table, and can read them through the runtime's index."""
    for model, read in builds["raw_reads"].items():
        assert read["estimated"] and max(read["estimated"]) < read["rows"] / 10, (model, read)
        assert any("_airbyte_extracted_at" in index for index in read["indexes"]), (model, read)


def test_daily_revenue_is_kept_by_difference_through_moved_late_and_returned_orders(builds):
    """The days moved purchases between days, returned some and brought late ones (equality with
    a full rebuild: test_incremental_days_equal_a_full_rebuild_row_for_row); each day's build
    merged the days it touched only, not every day."""
    days = builds["day_changes"]
    for kind in ("moved", "returned", "late"):
        assert sum(day[kind] for day in days) > 0, (kind, days)
    for day, written in zip(days, builds["written"], strict=True):
        assert 0 < written["daily_revenue"] <= day["touched_days"] < day["days"], (written["daily_revenue"], day)
