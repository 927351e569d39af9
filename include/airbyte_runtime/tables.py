"""The warehouse layout the runtime writes: table and column names, SQL types, tables and stages.

The layout is the one PyAirbyte's Postgres cache made, kept so that warehouses written before, dbt's
sources and every reader of the raw schema see no difference:
- names: lower case, every character outside [A-Za-z0-9] an underscore, a leading digit prefixed
  with `_`, cut at Postgres's 63 characters (PyAirbyte's `PostgresNormalizer`);
- columns: each property of the stream's JSON schema, typed by its Airbyte type (docs.airbyte.com's
  supported data types), then `_airbyte_raw_id`, `_airbyte_extracted_at`, `_airbyte_meta`
  (Destinations V2). The DDL is the generic SQL PyAirbyte wrote (`TIMESTAMP` without a zone: it
  rendered SQLAlchemy types without the Postgres dialect), so new tables match older ones;
- a stream's stage is `<stream>_<9 lower-case characters>`, unlogged (locks.py drops left-overs by
  that pattern);
- every final table has an index on `_airbyte_extracted_at` (`ensure_extracted_at_index`): a daily
  dbt build reads only the records extracted since its last one, and finds them through it.
- a merged stream's table (incremental_deduped_history) has an index on its primary key
  (`ensure_key_index`): a merge deletes the staged keys' rows through it, not by a scan.
- every final table has a partial index on the records Airbyte flagged (`TYPE_ERRORS`,
  `ensure_type_errors_index`): the freshness gate counts them before each day's dbt build, and
  without it that count parses every record's `_airbyte_meta`, the whole history, every day.
Owned here rather than taken from PyAirbyte: its processor has no public API for its DDL.
"""

from __future__ import annotations

import functools
import re
import secrets
import string
from typing import Any

RAW_ID, EXTRACTED_AT, META = "_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"
AIRBYTE_COLUMNS = (RAW_ID, EXTRACTED_AT, META)
# A record Airbyte flagged: a value its column could not hold, nulled and listed in
# `_airbyte_meta.changes`. The predicate of the partial index below, and what readers filter on to
# use it (Postgres uses a partial index only for a query that repeats its predicate). Never raises:
# `changes` missing, null or not an array is no change.
TYPE_ERRORS = (
    "jsonb_typeof(_airbyte_meta::jsonb -> 'changes') = 'array' and _airbyte_meta::jsonb -> 'changes' <> '[]'::jsonb"
)
# Airbyte type -> the column type PyAirbyte declared for it (its CONVERSION_MAP, rendered generically)
SQL_TYPES = {
    "string": "VARCHAR", "integer": "BIGINT", "number": "DECIMAL(38, 9)", "boolean": "BOOLEAN", "date": "DATE",
    "timestamp_with_timezone": "TIMESTAMP", "timestamp_without_timezone": "TIMESTAMP",
    "time_with_timezone": "TIME", "time_without_timezone": "TIME", "object": "JSON", "array": "JSON",
    "vector_array": "FLOAT[]",
}  # fmt: skip
AIRBYTE_TYPES = {RAW_ID: "VARCHAR", EXTRACTED_AT: "TIMESTAMP", META: "JSON"}
_STAGE_CHARACTERS = string.digits + string.ascii_lowercase


@functools.cache
def normalize(name: str) -> str:
    """A table or column name as Postgres gets it (see the module doc)."""
    result = re.sub(r"[^A-Za-z0-9]", "_", name.lower())
    if result and result[0].isdigit():
        result = f"_{result}"
    if not result.replace("_", ""):
        raise ValueError(f"the name {name!r} is empty once normalized ({result!r}): rename it in the source")
    return result[:63]


def sql_type(definition: Any) -> str:
    """The column type of a JSON-schema property (a string column when its type is unknown)."""
    # here, not at the top: readers of the layout (the freshness gate) run without the runtime's orjson
    from include.airbyte_runtime.rows import airbyte_type

    kind = airbyte_type(definition)
    if kind in SQL_TYPES:
        return SQL_TYPES[kind]
    if not isinstance(definition, dict):
        return "VARCHAR"
    kind, form = definition.get("type"), definition.get("format")  # an Airbyte type without a column type
    if kind == "string" and form in ("date", "date-time"):
        return "DATE" if form == "date" else "TIMESTAMP"
    return "JSON" if kind in ("array", "object") else "VARCHAR"


def column_types(properties: dict) -> dict[str, str]:
    """Column -> SQL type of a stream whose JSON schema has `properties`, the Airbyte columns last."""
    columns = {normalize(name): sql_type(definition) for name, definition in properties.items()}
    return columns | AIRBYTE_TYPES


def new_stage_name(stream: str) -> str:
    return normalize(f"{stream}_{''.join(secrets.choice(_STAGE_CHARACTERS) for _ in range(9))}")


def create_table(cursor: Any, schema: str, table: str, columns: dict[str, str], *, unlogged: bool = False) -> None:
    from psycopg2 import sql

    cursor.execute(
        sql.SQL("create {}table {} ({})").format(
            sql.SQL("unlogged " if unlogged else ""),
            sql.Identifier(schema, table),
            sql.SQL(", ").join(sql.Identifier(c) + sql.SQL(" " + t) for c, t in columns.items()),
        )  # each type is one of SQL_TYPES' values, never user text
    )


def existing_columns(cursor: Any, schema: str, table: str) -> set[str] | None:
    """The columns of `schema.table`, or None if there is no such table."""
    cursor.execute(
        "select a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped",
        (schema, table),
    )
    found = {row[0] for row in cursor.fetchall()}
    if found:
        return found
    cursor.execute("select to_regclass(%s)", [f'"{schema}"."{table}"'])
    return set() if cursor.fetchone()[0] is not None else None


def ensure_final_table(cursor: Any, schema: str, table: str, columns: dict[str, str]) -> bool:
    """The stream's table, created if missing and given the columns it lacks: whether it existed."""
    from psycopg2 import sql

    found = existing_columns(cursor, schema, table)
    if found is None:
        create_table(cursor, schema, table, columns)
        ensure_extracted_at_index(cursor, schema, table)
        return False
    for column, kind in columns.items():
        if column not in found:
            cursor.execute(
                sql.SQL("alter table {} add column {} ").format(sql.Identifier(schema, table), sql.Identifier(column))
                + sql.SQL(kind)
            )
    ensure_extracted_at_index(cursor, schema, table)  # a table of an older runtime, or PyAirbyte's
    return True


def ensure_extracted_at_index(cursor: Any, schema: str, table: str) -> None:
    """An index on the table's `_airbyte_extracted_at`, created unless one leads with it already
    (a whole one: not the partial index of ensure_type_errors_index).

    Checked in the catalog first: `create index if not exists` would lock the table before it
    looks. Postgres names the index (`<table>__airbyte_extracted_at_idx`, cut and numbered to fit).
    """
    from psycopg2 import sql

    cursor.execute(
        "select 1 from pg_index i join pg_class c on c.oid = i.indrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " join pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]"
        " where n.nspname = %s and c.relname = %s and a.attname = %s and i.indpred is null",
        (schema, table, EXTRACTED_AT),
    )
    if cursor.fetchone() is None:
        cursor.execute(
            sql.SQL("create index on {} ({})").format(sql.Identifier(schema, table), sql.Identifier(EXTRACTED_AT))
        )


def ensure_type_errors_index(cursor: Any, schema: str, table: str) -> None:
    """A partial index holding only the records Airbyte flagged (`TYPE_ERRORS`), unless the table has
    one already (an index whose predicate reads `_airbyte_meta`). A count of them reads this index,
    a few entries, instead of parsing the `_airbyte_meta` of every record; an insert only evaluates
    the predicate (which parses its `_airbyte_meta`): made after a move's insert, so a first load
    builds it once on the whole table. Checked in the catalog first, as ensure_extracted_at_index.
    """
    from psycopg2 import sql

    cursor.execute(
        "select 1 from pg_index i join pg_class c on c.oid = i.indrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s and pg_get_expr(i.indpred, i.indrelid) like %s",
        (schema, table, f"%{META}%changes%"),
    )
    if cursor.fetchone() is None:
        cursor.execute(
            sql.SQL("create index on {} ({}) where ").format(
                sql.Identifier(schema, table), sql.Identifier(EXTRACTED_AT)
            )
            + sql.SQL(TYPE_ERRORS)
        )


def ensure_key_index(cursor: Any, schema: str, table: str, keys: list[str]) -> None:
    """An index on a merged stream's primary key (`keys`, normalized), created unless one leads with it.

    A merge deletes the staged keys' rows: without it that delete reads the whole table, every day
    (docs/benchmarks.md, "A day's merge into raw"). Not unique: keyless records are kept as they
    come. Made after the first merge's insert (built once on the whole table, not row by row).
    """
    from psycopg2 import sql

    cursor.execute(
        "select 1 from pg_index i join pg_class c on c.oid = i.indrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s and i.indnkeyatts >= %s"
        " and (select array_agg(a.attname::text order by k.position) from unnest(i.indkey[0:%s - 1])"
        "      with ordinality as k(attnum, position)"
        "      join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum) = %s::text[]",
        (schema, table, len(keys), len(keys), keys),
    )
    if cursor.fetchone() is None:
        columns = sql.SQL(", ").join(map(sql.Identifier, keys))
        cursor.execute(sql.SQL("create index on {} ({})").format(sql.Identifier(schema, table), columns))


class StreamKeys:
    """A stream's columns in index case (`index_keys`, grown by a propagated new column) and the
    index case of any record key (`to_index_case`): what rows.record_layout matches keys with."""

    def __init__(self, properties: dict) -> None:
        self.index_keys = [normalize(name) for name in properties]

    @staticmethod
    def to_index_case(key: str) -> str:
        return normalize(key)
