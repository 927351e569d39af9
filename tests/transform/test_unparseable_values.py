"""Bad values never stop the line and never vanish (issue 25): staging parses raw strings with the
parse_as macro, a value that does not parse sends its record to the quarantine (with the column and
the value) and the build stays green; an ISO time's offset is honoured (the instant is kept).

The shop's raw tables are made as both engines load them (scaffold.raw_table_sql, from
connections.yaml) and filled by SQL; the whole project is built on a real Postgres.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from decimal import Decimal

import psycopg2
import pytest

from include.pipeline import settings
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.observe import quarantine, writer
from include.pipeline.transform import scaffold
from tests.support.dbt import Dbt
from tests.support.postgres import new_database

pytestmark = pytest.mark.integration

UTC = dt.UTC
T0 = "2026-01-08T09:00:00Z"
OFFSET = "2026-01-09T10:00:00+02:00"  # the instant 08:00 UTC
NAIVE = "2026-01-09 10:00:00"  # no offset: taken as UTC


def insert(cur, table: str, record: dict, extracted_at: str) -> None:
    columns = [*record, "_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"]
    values = [*record.values(), str(uuid.uuid4()), extracted_at, json.dumps({"changes": []})]
    cur.execute(
        f"insert into raw.{table} ({', '.join(columns)}) values ({', '.join(['%s'] * len(values))})",  # noqa: S608
        values,
    )


def purchase(pid: int, **times) -> dict:
    base = {"added_to_cart_at": T0, "purchased_at": None, "returned_at": None, "created_at": T0, "updated_at": T0}
    return {"id": pid, "user_id": 1, "product_id": 1, **base, **times}


@pytest.fixture(scope="module")
def built(postgres_server, tmp_path_factory) -> dict:
    target = new_database(postgres_server)
    conn = target.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("create schema raw")
        for stream in scaffold.warehouse_streams(load_connections()):
            cur.execute(scaffold.raw_table_sql(stream))
        insert(cur, "users", {"id": 1, "email": "a@example.com", "created_at": T0, "updated_at": T0}, T0)
        insert(cur, "users", {"id": 2, "email": "b@example.com", "created_at": "yesterday-ish", "updated_at": T0}, T0)
        insert(cur, "products", {"id": 1, "price": 10, "created_at": T0, "updated_at": T0}, T0)
        insert(cur, "purchases", purchase(1, purchased_at=OFFSET, updated_at=OFFSET), T0)
        insert(cur, "purchases", purchase(2, purchased_at="not a time"), T0)
        insert(cur, "purchases", purchase(3, purchased_at=NAIVE), T0)
        insert(cur, "purchases", purchase(4, purchased_at="2026-02-30T10:00:00Z"), T0)  # no such day
        insert(cur, "purchases", purchase(5, purchased_at="now"), T0)  # Postgres parses it: we do not
    dbt = Dbt(target, tmp_path_factory.mktemp("dbt-unparseable"))
    proc = dbt("build", check=False)
    # the same session time zone as a user's far from UTC: no instant may depend on it
    conn.cursor().execute("set timezone to 'Asia/Tokyo'")

    def rows(query: str, params=None) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []

    yield {"proc": proc, "rows": rows, "results": dbt.run_results()["results"], "target": target, "work": dbt.work}
    conn.close()


def test_the_build_stays_green_with_unparseable_times(built):
    failed = [(r["unique_id"], r["status"]) for r in built["results"] if r["status"] not in ("success", "pass")]
    assert built["proc"].returncode == 0 and not failed, failed or built["proc"].stdout[-3000:]


def test_an_unparseable_time_sends_its_record_to_the_quarantine_with_column_and_value(built):
    quarantined = built["rows"](
        "select stream_name, record_key, problem, column_name, bad_value"
        " from staging.stg_shop__quarantined_records order by 1, 2"
    )
    assert quarantined == [
        ("purchases", "2", "unparseable_value", "purchased_at", "not a time"),
        ("purchases", "4", "unparseable_value", "purchased_at", "2026-02-30T10:00:00Z"),
        ("purchases", "5", "unparseable_value", "purchased_at", "now"),
        ("users", "2", "unparseable_value", "created_at", "yesterday-ish"),
    ]
    assert built["rows"]("select purchase_id from staging.stg_shop__purchases order by 1") == [(1,), (3,)]
    assert built["rows"]("select customer_id from staging.stg_shop__users") == [(1,)]
    assert built["rows"]("select order_id from marts.orders order by 1") == [(1,), (3,)]


def test_offsets_are_honoured_and_a_time_without_one_is_utc(built):
    times = dict(built["rows"]("select purchase_id, purchased_at from staging.stg_shop__purchases"))
    assert times[1] == dt.datetime(2026, 1, 9, 8, 0, tzinfo=UTC)
    assert times[3] == dt.datetime(2026, 1, 9, 10, 0, tzinfo=UTC)
    assert built["rows"]("select data_type from information_schema.columns where table_schema = 'marts'"
                         " and table_name = 'orders' and column_name = 'purchased_at'") == [("timestamp with time zone",)]  # fmt: skip
    # the day is the UTC day, whatever the session's time zone (here Tokyo, 9 hours ahead)
    assert built["rows"]("select order_id, order_date from marts.orders order by 1") == [
        (1, dt.date(2026, 1, 9)),
        (3, dt.date(2026, 1, 9)),
    ]


CASES = [
    # (raw value, type, parsed as text (in UTC) or None)
    ("12.5", "numeric", "12.5"),
    ("1e3", "numeric", "1000"),
    ("n/a", "numeric", None),
    ("NaN", "numeric", None),
    ("123456789012.345", "numeric(12, 2)", None),  # does not fit
    ("1234.567", "numeric(12, 2)", "1234.57"),
    ("42", "bigint", "42"),
    ("4.2", "bigint", None),
    ("99999999999999999999", "bigint", None),
    ("yes", "boolean", "true"),
    ("maybe", "boolean", None),
    ("2026-01-09", "date", "2026-01-09"),
    ("09/01/2026", "date", None),
    ("today", "date", None),
    ("2026-01-09T10:00:00+02:00", "timestamp", "2026-01-09 08:00:00"),
    ("2026-01-09T10:00:00", "timestamp", "2026-01-09 10:00:00"),
    ("2026-01-09T10:00:00.250Z", "timestamptz", "2026-01-09 10:00:00.25"),
    ("2026-01-09T10:00:00-0530", "timestamptz", "2026-01-09 15:30:00"),
    ("2026-01-09T10:00:00", "timestamptz", "2026-01-09 10:00:00"),  # no offset: UTC
    ("2026-01-09", "timestamptz", "2026-01-09 00:00:00"),
    (" 2026-01-09T10:00:00Z", "timestamptz", "2026-01-09 10:00:00"),
    ("2026-01-09 10:00:00 PM", "timestamptz", "2026-01-09 22:00:00"),  # PM is no zone: UTC
    ("2026-01-09 10:00:00 Europe/Paris", "timestamptz", "2026-01-09 09:00:00"),
    ("09/01/2026 10:00", "timestamptz", None),  # not ISO: day or month first depends on DateStyle
    ("epoch", "timestamptz", None),
    ("2026-13-01T00:00:00Z", "timestamptz", None),
]


@pytest.mark.parametrize("functions", ["sql", "plpgsql"])
def test_parse_as_parses_numbers_booleans_dates_and_times_or_gives_null(built, tmp_path_factory, functions):
    """Every type the macro takes, through the macro itself (compiled by dbt, run on the functions
    on-run-start made), in a session set to Tokyo: Postgres 16's plain SQL functions, then the
    PL/pgSQL ones older servers get (`parse_as_plpgsql`), made by a build that selects one model."""
    if functions == "plpgsql":
        Dbt(built["target"], tmp_path_factory.mktemp("dbt-plpgsql"))(
            "build", "--select", "stg_shop__quarantined_records", "--vars", "{parse_as_plpgsql: true}"
        )
    language = built["rows"]("select l.lanname from pg_proc as p join pg_language as l on l.oid = p.prolang"
                             " where p.proname = 'try_cast_timestamptz'")  # fmt: skip
    assert language == [(functions,)]
    # the values come from a table, as in a model (a literal would be folded by the planner)
    built["rows"]("create temp table if not exists cases (i int, v text); truncate cases")
    for i, (v, _, _) in enumerate(CASES):
        built["rows"]("insert into cases values (%s, %s)", (i, v))
    shown = {"timestamptz": " at time zone 'UTC'"}  # the instant, shown in UTC
    cases = " union all ".join(
        f"select i, ({{{{ parse_expression('v', '{t}') }}}}{shown.get(t, '')})::text from cases where i = {i}"  # noqa: S608
        for i, (_, t, _) in enumerate(CASES)
    )
    dbt = Dbt(built["target"], tmp_path_factory.mktemp("dbt-compile"))
    compiled = dbt("compile", "--quiet", "--inline", cases, "--output", "text").stdout.strip()
    assert built["rows"]("show timezone") == [("Asia/Tokyo",)]
    parsed = built["rows"](compiled + " order by i")
    assert [p for _, p in parsed] == [expected for _, _, expected in CASES]


LEDGER = scaffold.StagedStream(
    source="ledger",
    name="entries",
    schema="raw",
    primary_key=("id",),
    columns={"id": "integer", "booked_at": "date-time", "booked_on": "date", "amount": "string"},
)


@pytest.fixture(scope="module")
def scaffolded(postgres_server, tmp_path_factory) -> dict:
    """A source scaffolded from a connector's catalog (a date-time and a date column: parsed with
    parse_as) whose `amount` string a user retyped as a number, as docs/transform.md says: the
    model's cast plus `parse_as` in the sources yml. Raw holds the strings as a loader lands them."""
    root = tmp_path_factory.mktemp("ledger")
    project = root / "dbt"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    folder = project / "models" / "staging" / "ledger"
    folder.mkdir()
    model = scaffold.staging_sql(LEDGER)
    assert "{{ parse_as('booked_at', 'timestamptz') }} as booked_at" in model
    assert "{{ parse_as('booked_on', 'date') }} as booked_on" in model
    (folder / "stg_ledger__entries.sql").write_text(
        model.replace("amount::varchar as amount", "{{ parse_as('amount', 'numeric(12, 2)') }} as amount")
    )
    (folder / "stg_ledger__quarantined_records.sql").write_text(scaffold.quarantine_sql("ledger", [LEDGER]))
    (folder / "_ledger__models.yml").write_text(scaffold.models_yml("ledger", [LEDGER]))
    sources = scaffold.sources_yml("ledger", [LEDGER])
    assert sources.count("config: {meta: {parse_as: ") == 2
    target = new_database(postgres_server)
    conn = target.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("create schema raw")
        cur.execute(
            "create table raw.entries (id bigint, booked_at varchar, booked_on varchar, amount varchar,"
            " _airbyte_raw_id varchar, _airbyte_extracted_at timestamp, _airbyte_meta jsonb)"
        )
        for i, (at, on, amount) in enumerate([
            (OFFSET, "2026-01-09", "12.50"),
            ("not a time", "2026-01-09", "1"),
            (T0, "2026-02-30", "1"),
            (T0, "2026-01-09", "twelve"),
            (T0, None, None),
        ], start=1):  # fmt: skip
            cur.execute(
                "insert into raw.entries values (%s, %s, %s, %s, %s, '2026-01-09', '{}')",
                (i, at, on, amount, f"raw-{i}"),
            )
    dbt = Dbt(target, root / "work", project)
    select = ("--select", "path:models/staging/ledger")
    out = {}
    # without `parse_as` on `amount` in the sources yml, its bad values would vanish: refused
    (folder / "_ledger__sources.yml").write_text(sources)
    out["undeclared"] = dbt("build", *select, check=False)
    (folder / "_ledger__sources.yml").write_text(
        sources.replace(
            "          - name: amount\n            description: Declared as string in connections.yaml.\n",
            "          - name: amount\n            description: A number sent as text.\n"
            "            config: {meta: {parse_as: 'numeric(12, 2)'}}\n",
        )
    )
    out["build"] = dbt("build", *select, check=False)
    with conn.cursor() as cur:
        cur.execute("select id, booked_at, booked_on, amount from staging.stg_ledger__entries order by 1")
        out["staging"] = cur.fetchall()
        cur.execute(
            "select record_key, problem, column_name, bad_value from staging.stg_ledger__quarantined_records order by 1"
        )
        out["quarantine"] = cur.fetchall()
    conn.close()
    return out


def test_a_scaffolded_source_parses_times_and_a_retyped_number_with_the_same_macro(scaffolded):
    undeclared = scaffolded["undeclared"]
    assert undeclared.returncode != 0
    assert "parse_as('amount', 'numeric(12, 2)') needs the column declared" in undeclared.stdout
    assert "config: {meta: {parse_as: 'numeric(12, 2)'}}" in undeclared.stdout
    assert scaffolded["build"].returncode == 0, scaffolded["build"].stdout[-4000:]
    assert scaffolded["staging"] == [
        (1, dt.datetime(2026, 1, 9, 8, 0, tzinfo=UTC), dt.date(2026, 1, 9), Decimal("12.50")),
        (5, dt.datetime(2026, 1, 8, 9, 0, tzinfo=UTC), None, None),
    ]
    assert scaffolded["quarantine"] == [
        ("2", "unparseable_value", "booked_at", "not a time"),
        ("3", "unparseable_value", "booked_on", "2026-02-30"),
        ("4", "unparseable_value", "amount", "twelve"),
    ]


def test_the_quarantine_counts_reach_metrics_and_the_run_summary(built, metrics_params):
    """What record_dbt_results writes after the build (observe/quarantine.py): one data_quality row
    per source.stream, problem and column; the run summary prints the same counts."""
    relations = quarantine.manifest_models(built["work"])
    assert relations == [("staging", "stg_shop__quarantined_records")]
    conn = built["target"].connect()
    try:
        with conn, conn.cursor() as cur:
            rows = quarantine.counts(cur, [*relations, ("staging", "stg_not_built__quarantined_records")])
    finally:
        conn.close()
    assert writer.write("test", quarantine.statements("ecommerce_daily", "run-1", rows, relations), metrics_params)
    with psycopg2.connect(**metrics_params) as mconn, mconn.cursor() as cur:
        cur.execute(
            "select subject, value from metrics.data_quality where check_name = 'quarantined_records' order by 1"
        )
        assert cur.fetchall() == [
            ("shop.purchases: unparseable_value (purchased_at)", 3),
            ("shop.users: unparseable_value (created_at)", 1),
            ("shop: all streams", 4),
        ]
    empty = quarantine.statements("d", "r", [], [("staging", "stg_helpdesk__quarantined_records")])
    assert [params["subject"] for _, params in empty] == ["helpdesk: all streams"]
    assert [params["value"] for _, params in empty] == [0]
    assert quarantine.lines(rows) == [
        "quarantine: 4 record(s) left out of staging (stg_<source>__quarantined_records)",
        "  shop.purchases: unparseable_value (purchased_at): 3",
        "  shop.users: unparseable_value (created_at): 1",
    ]
    assert quarantine.lines([]) == ["quarantine: empty"]
