"""A synthetic shop in the raw tables, at any size, in seconds: for dbt measurements without an ingest.

The faker connector emits ~5,000 records/s and the embedded loader less, so a 1M-customer shop
takes hours to ingest; dbt's behaviour at scale only needs the raw tables' shape and contents.
`fill_shop` writes `raw.users`, `raw.products`, `raw.purchases` in the exact shape PyAirbyte's
Postgres cache gives them (Destinations V2: `_airbyte_raw_id`, `_airbyte_extracted_at`,
`_airbyte_meta`; column types as in a real sync; the index on `_airbyte_extracted_at` the
runtime gives every raw table, include/airbyte_runtime/tables.py), generated inside Postgres with
`generate_series`, so nothing crosses the wire. Everything is a function of (size, seed, day):
the same call always writes the same rows.

What the staging models must handle is there on purpose:
- duplicate extractions (as an `append` sync leaves them): `duplicate_share` of the keys also
  have an older extraction with other values; the latest must win;
- records Airbyte flagged (`_airbyte_meta.changes`, the value nulled): `problem_share` of the
  keys' latest extraction; they belong in quarantine, not staging;
- on request (`null_keys`), records with no primary key: quarantined as `missing_primary_key`,
  and the sources' `not_null` test on `id` fails the build, as it should.

`add_day` appends day N's extraction: about `share` of the shop, half new customers with their
purchases, half changed customers and purchases (new profile, cart paid, purchase returned),
plus one product's new price (which re-prices that product's purchases downstream). One changed
record in `flag_every` comes flagged by Airbyte: its key leaves staging for quarantine.

Used by tests/transform/test_dbt_scale_guard.py and benchmarks/dbt_scale.py; importable as
`benchmarks.synthetic_shop` from the repository root.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.pipeline.identifiers import count_rows

PRODUCTS = 100  # source-faker's catalogue is a fixed list of 100 cars
INITIAL_EXTRACTION = "2026-01-01 02:00:00"

TABLES = """
create schema if not exists raw;
drop table if exists raw.users cascade;
drop table if exists raw.products cascade;
drop table if exists raw.purchases cascade;
create table raw.users (
    id bigint, created_at timestamp, updated_at timestamp, name varchar, title varchar, age bigint,
    email varchar, telephone varchar, gender varchar, language varchar, academic_degree varchar,
    nationality varchar, occupation varchar, height varchar, blood_type varchar, weight bigint,
    address json, _airbyte_raw_id varchar, _airbyte_extracted_at timestamp, _airbyte_meta json
);
create table raw.products (
    id bigint, make varchar, model varchar, year bigint, price numeric, created_at timestamp,
    updated_at timestamp, _airbyte_raw_id varchar, _airbyte_extracted_at timestamp, _airbyte_meta json
);
create table raw.purchases (
    id bigint, user_id bigint, product_id bigint, created_at timestamp, updated_at timestamp,
    added_to_cart_at timestamp, purchased_at timestamp, returned_at timestamp,
    _airbyte_raw_id varchar, _airbyte_extracted_at timestamp, _airbyte_meta json
);
"""

# r(i, n, v, salt, m): a deterministic pseudo-random integer in [0, m) for the row (key i, or
# null-key number n; extraction version v: 0 = an older one, 1 = the initial load, 1 + d = day d).
RANDOM = """
create or replace function pg_temp.r(i bigint, n bigint, v int, salt int, m bigint) returns bigint
language sql immutable as $$ select (hashint8(coalesce(i, -n) * 1000003 + v * 7919 + salt) & 2147483647) % m $$
"""
FLAGGED = """'{"changes": [{"field": "age", "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}]}'"""

USERS = """
insert into raw.users
select
    i, created, created + interval '1 day' * v, 'Customer ' || i || ' v' || v,
    (array['Mr.', 'Ms.', 'Dr.'])[1 + pg_temp.r(i, n, v, 1, 3)],
    case when flagged then null else 18 + pg_temp.r(i, n, v, 2, 80) end,
    'customer' || i || case when v = 1 then '' else '.v' || v end || '@example.com',
    '+1-555-' || lpad((i % 10000)::text, 4, '0'), (array['female', 'male', 'other'])[1 + pg_temp.r(i, n, v, 3, 3)],
    'English', 'Master', 'Canadian', 'Engineer', '180', 'O+', 70,
    json_build_object(
        'street_number', (1 + pg_temp.r(i, n, v, 4, 999))::text, 'street_name', 'Street ' || v,
        'city', 'City ' || pg_temp.r(i, n, v, 5, 500), 'state', 'State ' || pg_temp.r(i, n, v, 6, 50),
        'province', 'Province', 'postal_code', lpad(pg_temp.r(i, n, v, 7, 99999)::text, 5, '0'),
        'country_code', (array['US', 'FR', 'DE', 'CA', 'JP'])[1 + pg_temp.r(i, n, v, 8, 5)]
    ),
    'users-' || coalesce(i::text, 'null-' || n) || '-' || v, extracted,
    (case when flagged then {flagged} else '{{}}' end)::json
from ({keys}) as keys
cross join lateral (select timestamp '2020-01-01' + interval '1 minute' * coalesce(i, 0) as created) as c
"""

PURCHASES = """
insert into raw.purchases
select
    i, 1 + pg_temp.r(i, n, v, 1, {customers}), 1 + pg_temp.r(i, n, v, 2, {products}),
    cart - interval '1 hour', cart + interval '1 day' * v, cart,
    case when flagged then null when pg_temp.r(i, n, v, 3, 1000) < 800 or v > 1 then cart + interval '2 hours' end,
    case
        when not flagged and (pg_temp.r(i, n, v, 3, 1000) < 100 or (v > 1 and pg_temp.r(i, n, v, 4, 2) = 0))
            then cart + interval '3 days'
    end,
    'purchases-' || coalesce(i::text, 'null-' || n) || '-' || v, extracted,
    (case when flagged then {flagged} else '{{}}' end)::json
from ({keys}) as keys
cross join lateral (
    -- carts spread over three years whatever the size (daily and monthly marts get ~1,100 days)
    select timestamp '2021-01-01' + interval '1 minute' * pg_temp.r(i, n, 0, 10, 1576800) + interval '1 hour' * v as cart
) as c
"""

PRODUCTS_SQL = """
insert into raw.products
select
    i, (array['Audi', 'BMW', 'Ford', 'Honda', 'Toyota'])[1 + i % 5], 'Model ' || i, 1990 + i % 30,
    (1000 + i * 537 % 90000 + 100 * v)::numeric(12, 2), timestamp '2019-01-01',
    timestamp '2019-01-01' + interval '1 day' * v, 'products-' || i || '-' || v, extracted, '{{}}'::json
from ({keys}) as keys
"""


def _fill(template: str, keys: str, customers: int, products: int = PRODUCTS) -> str:
    return template.format(keys=keys, customers=max(customers, 1), products=products, flagged=FLAGGED)


def _keys(first: int, last: int, version: str, extracted: str, flagged: str = "false", where: str = "true") -> str:
    """A key set: ids first..last, extraction `version` at `extracted` (SQL expressions of i)."""
    # SQL expressions written in this module and integers: no name from outside reaches this text
    return (
        f"select i, 0::bigint as n, ({version})::int as v, ({extracted})::timestamp as extracted,"  # noqa: S608
        f" ({flagged}) as flagged from generate_series({first}::bigint, {last}::bigint) as i where {where}"
    )


def _null_keys(count: int, extracted: str) -> str:
    """`count` records with no primary key (Airbyte's append mode lets them through)."""
    # integers and this module's expressions only
    return (
        f"select i, n, 1 as v, ({extracted})::timestamp as extracted, false as flagged"  # noqa: S608
        f" from (select null::bigint as i, n from generate_series(1::bigint, {count}::bigint) as n) as nulls"
    )


@dataclass(frozen=True)
class ShopSize:
    customers: int
    purchases: int
    products: int = PRODUCTS


def _exec(conn, statements: list[str]) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.commit()


def fill_shop(
    conn,
    customers: int,
    purchases: int | None = None,
    *,
    duplicate_share: float = 0.02,
    problem_share: float = 0.001,
    null_keys: int = 0,
    extracted_at_index: bool = True,
) -> ShopSize:
    """Replace raw.users/products/purchases with a shop of `customers` (and as many purchases
    unless given) on the psycopg2 connection `conn`. Returns the size. `extracted_at_index=False`
    leaves out the runtime's raw index (to measure what it saves)."""
    purchases = customers if purchases is None else purchases
    size = ShopSize(customers, purchases)
    base = f"timestamp '{INITIAL_EXTRACTION}' + interval '1 millisecond' * (coalesce(i, 0) % 1000)"
    dup = max(1, round(1 / duplicate_share)) if duplicate_share else 0
    bad = max(1, round(1 / problem_share)) if problem_share else 0
    flagged = f"i % {bad} = {bad // 2}" if bad else "false"
    older = f"timestamp '{INITIAL_EXTRACTION}' - interval '1 day'"
    statements = [TABLES, RANDOM]
    if extracted_at_index:  # as the runtime creates a raw table: with its index, before the rows
        statements += [
            f"create index on raw.{table} (_airbyte_extracted_at)" for table in ("users", "products", "purchases")
        ]
    for template, count in ((USERS, customers), (PURCHASES, purchases)):
        statements.append(_fill(template, _keys(1, count, "1", base, flagged), customers))
        if dup:
            statements.append(_fill(template, _keys(1, count, "0", older, where=f"i % {dup} = 0"), customers))
        if null_keys:
            statements.append(_fill(template, _null_keys(null_keys, base), customers))
    statements.append(_fill(PRODUCTS_SQL, _keys(1, size.products, "1", base), customers))
    statements.append("analyze raw.users; analyze raw.products; analyze raw.purchases")
    statements += other_raw_tables(customers)
    _exec(conn, statements)
    return size


SHOP_STREAMS = {("shop", "users"), ("shop", "products"), ("shop", "purchases")}
# A value of each declared type for row i (a generated series), for the user's own streams.
SYNTHETIC = {
    "integer": "i",
    "number": "i * 1.5",
    "float": "i * 1.5",
    "boolean": "i % 2 = 0",
    "object": "jsonb_build_object('n', i)",
    "array": "jsonb_build_array(i)",
    "date-time": "timestamptz '2026-01-01' + i * interval '1 minute'",
    "date": "date '2026-01-01' + i % 365",
}


def other_raw_tables(rows: int = 0) -> list[str]:
    """The raw tables of every stream connections.yaml lands in the warehouse besides the shop's
    three (a source of the user's own), each with `rows` synthetic records (a distinct key each,
    every value of its declared type): the dbt project's staging models read them."""
    from include.pipeline.ingest.declaration import load_connections
    from include.pipeline.transform.scaffold import column, raw_table_sql, warehouse_streams

    statements = []
    for s in warehouse_streams(load_connections()):
        if (s.source, s.name) in SHOP_STREAMS:
            continue
        statements += [f"create schema if not exists {column(s.schema)}", raw_table_sql(s)]
        if rows:
            names = [column(c) for c in s.columns] + ["_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"]
            values = [SYNTHETIC.get(kind, "'v' || i") for kind in s.columns.values()]
            values += [f"'{s.name}-' || i", f"timestamp '{INITIAL_EXTRACTION}'", "'{\"changes\": []}'::jsonb"]
            table, series = f"{column(s.schema)}.{column(s.name)}", f"generate_series(1, {int(rows)}) as i"
            # names from the validated declaration, quoted by `column`
            insert = f"insert into {table} ({', '.join(names)}) select {', '.join(values)} from {series}"  # noqa: S608
            statements.append(insert)
    return statements


def create_other_raw_tables(conn, rows: int = 0) -> None:
    """`other_raw_tables` on the psycopg2 connection `conn` (committed)."""
    _exec(conn, other_raw_tables(rows))


def add_day(conn, size: ShopSize, day: int, *, share: float = 0.01, flag_every: int = 50) -> dict[str, int]:
    """Append day `day`'s extraction (day >= 1) to a shop made by `fill_shop(size)` and the days
    before: `share / 2` new customers and purchases, `share / 2` changed ones, one product's new
    price. Returns the records appended per stream."""
    if day < 1:
        raise ValueError("day counts from 1 (day 0 is fill_shop)")
    new_c, new_p = max(1, round(size.customers * share / 2)), max(1, round(size.purchases * share / 2))
    every = max(1, round(2 / share))
    extracted = f"timestamp '{INITIAL_EXTRACTION}' + interval '1 day' * {day} + interval '1 millisecond' * (coalesce(i, 0) % 1000)"
    first_c, first_p = size.customers + (day - 1) * new_c + 1, size.purchases + (day - 1) * new_p + 1
    changed = f"(hashint8(i * 31 + {day}) & 2147483647) % {every} = 0"
    flagged = f"(hashint8(i * 37 + {day}) & 2147483647) % {flag_every} = 0" if flag_every else "false"
    version = f"1 + {day}"
    total_c = size.customers + day * new_c
    statements = [
        RANDOM,
        _fill(USERS, _keys(first_c, first_c + new_c - 1, "1", extracted), total_c),
        _fill(USERS, _keys(1, first_c - 1, version, extracted, flagged, where=changed), total_c),
        _fill(PURCHASES, _keys(first_p, first_p + new_p - 1, "1", extracted), total_c),
        _fill(PURCHASES, _keys(1, first_p - 1, version, extracted, flagged, where=changed), total_c),
        _fill(PRODUCTS_SQL, _keys(1 + day % size.products, 1 + day % size.products, version, extracted), total_c),
        "analyze raw.users; analyze raw.products; analyze raw.purchases",
    ]
    with conn.cursor() as cur:
        counts = {}
        for table in ("users", "purchases", "products"):
            cur.execute(count_rows(f"raw.{table}"))
            counts[table] = cur.fetchone()[0]
    _exec(conn, statements)
    with conn.cursor() as cur:
        for table in counts:
            cur.execute(count_rows(f"raw.{table}"))
            counts[table] = cur.fetchone()[0] - counts[table]
    return counts
