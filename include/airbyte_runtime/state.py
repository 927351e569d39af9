"""The connector's state in the warehouse: <schema>._airbyte_state, one row per stream.

The table and its rows are the ones PyAirbyte's cache kept (`CacheStreamStateModel`), so the state a
warehouse already holds carries over and locks.py's `forget_stored_state` and `stored_states`
below read the same rows: `source_name` (the connector), `stream_name` (`_GLOBAL` or
`_LEGACY` for those state types), `table_name` (the key: the stream's name), `state_json` (the
last AirbyteStateMessage of the stream, as airbyte-protocol-models dumps it) and `last_updated`.

A stream's state is written in the transaction that commits its rows (destination_postgres.py):
the cursor moves exactly when the rows it covers are in, never before, never without them.
"""

from __future__ import annotations

import json
from typing import Any

TABLE = "_airbyte_state"
GLOBAL_NAMES = {"GLOBAL": "_GLOBAL", "LEGACY": "_LEGACY"}


def ensure_table(cursor: Any, schema: str) -> None:
    from psycopg2 import sql

    cursor.execute("select to_regclass(%s)", [sql.Identifier(schema, TABLE).as_string(cursor)])
    if cursor.fetchone()[0] is not None:
        return  # checked first: creating, even `if not exists`, needs the right to create in the schema
    cursor.execute(
        sql.SQL(
            "create table if not exists {} (source_name VARCHAR, stream_name VARCHAR, table_name VARCHAR NOT NULL,"
            " state_json VARCHAR, last_updated TIMESTAMP WITH TIME ZONE, PRIMARY KEY (table_name))"
        ).format(sql.Identifier(schema, TABLE))
    )


def stream_of(message: Any) -> str | None:
    """The stream an AirbyteStateMessage's state belongs to (`_GLOBAL`/`_LEGACY` for those), or None."""
    kind = message.type.value if message.type is not None else "LEGACY"
    if kind in GLOBAL_NAMES:
        return GLOBAL_NAMES[kind]
    return message.stream.stream_descriptor.name if message.stream is not None else None


def stored_states(cursor: Any, schema: str, source_name: str) -> list[dict]:
    """The state messages this source stored for tables of its streams' own names (what the connector's
    `read` gets as its state), [] when there are none yet."""
    from psycopg2 import sql

    cursor.execute("select to_regclass(%s)", [sql.Identifier(schema, TABLE).as_string(cursor)])
    if cursor.fetchone()[0] is None:
        return []
    query = sql.SQL("select state_json from {} where source_name = %s and table_name = stream_name")
    cursor.execute(query.format(sql.Identifier(schema, TABLE)), [source_name])
    return [without_nulls(json.loads(row[0])) for row in cursor.fetchall()]


def without_nulls(value: Any) -> Any:
    """`value` with every None member of an object dropped (the models' dump writes unset fields as null)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def save(cursor: Any, schema: str, source_name: str, stream_name: str, message: Any) -> None:
    """Replace the stream's stored state with `message` (inside the caller's transaction)."""
    from psycopg2 import sql

    table = sql.Identifier(schema, TABLE)
    ensure_table(cursor, schema)
    cursor.execute(sql.SQL("delete from {} where table_name = %s").format(table), [stream_name])
    cursor.execute(
        sql.SQL(
            "insert into {} (source_name, stream_name, table_name, state_json, last_updated)"
            " values (%s, %s, %s, %s, now())"
        ).format(table),
        [source_name, stream_name, stream_name, message.model_dump_json()],  # as PyAirbyte stored it
    )
