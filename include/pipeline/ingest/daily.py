"""A shop whose data moves day by day, derived from the run's logical date (embedded engine).

source-faker generates a fixed shop for a (count, seed) pair, and with `always_updated: false`
it emits nothing once its cursor state exists. A real shop grows and changes every day, so the
daily DAG asks it for a shop that depends on the logical date, deterministically:

- growth: `count` = base count + `DAILY_NEW_CUSTOMERS` per day since `ANCHOR_DATE`, re-emitted in
  full every day (`always_updated: true`) and merged on the primary key by the destination, so
  each day brings new customers and their purchases;
- changes: a second, small read regenerates the first `DAILY_CHANGED_CUSTOMERS` customers and
  their purchases with a seed derived from the day (new profile, address, products, cart /
  purchase / return times), merged over yesterday's version: old orders change status and
  amount, old customers change, so incremental models and the snapshot see real updates.

The same logical date always yields the same records (rerunning a day changes nothing), except
the wall-clock fields faker stamps itself (`updated_at`, and timestamps it draws up to "today").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from include.pipeline.ingest.connections import Connection
from include.pipeline.ingest.embedded import WarehouseTarget, sync_connection

ANCHOR_DATE = dt.date(2026, 1, 1)  # the DAG's start_date: day 0 of the shop
DAILY_NEW_CUSTOMERS = 20
DAILY_CHANGED_CUSTOMERS = 20


@dataclass(frozen=True)
class DailyPlan:
    """The reads that make up one logical day of the shop."""

    day: int
    growth: dict  # config overrides of the full read
    changes: dict | None  # config overrides of the small read that changes old records, or None


def day_index(logical_date: dt.date | str) -> int:
    if isinstance(logical_date, str):
        logical_date = dt.date.fromisoformat(logical_date[:10])
    return max(0, (logical_date - ANCHOR_DATE).days)


def plan(logical_date: dt.date | str, base_config: dict) -> DailyPlan:
    """Config overrides for `logical_date`, from the connection's declared `count` and `seed`."""
    day = day_index(logical_date)
    base_count = int(base_config.get("count", 1000))
    seed = int(base_config.get("seed", 42))
    growth = {"count": base_count + DAILY_NEW_CUSTOMERS * day, "seed": seed, "always_updated": True}
    changes = None
    if day > 0:
        changes = {
            "count": min(DAILY_CHANGED_CUSTOMERS, base_count),
            "seed": seed + 1000 + day,  # far from the base seed, one per day
            "always_updated": True,
        }
    return DailyPlan(day, growth, changes)


def expected_counts(logical_date: dt.date | str, base_config: dict) -> dict[str, int]:
    """Raw rows after the day's sync (faker: products are a fixed list of 100; purchases, see
    source_faker/purchase_generator.py: every 10 users make 10 purchases, ids 1..count)."""
    count = plan(logical_date, base_config).growth["count"]
    return {"users": count, "products": min(count, 100), "purchases": count}


def sync_day(
    connection: Connection,
    target: WarehouseTarget,
    logical_date: dt.date | str,
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the day's reads for `connection` (a faker source); return the growth read's figures
    with the change read's under 'changes'. Full refresh applies to the growth read only: the
    change read always merges over it."""
    if full_refresh:
        drop_dependent_views(target, connection.destination.schema, [s.name for s in connection.streams], log=log)
    if connection.source.connector != "source-faker":
        return sync_connection(connection, target, full_refresh=full_refresh, log=log)
    day = plan(logical_date, connection.source.resolved_config())
    log(f"daily data: day {day.day} since {ANCHOR_DATE}: growth read {day.growth}, change read {day.changes}")
    result = sync_connection(connection, target, full_refresh=full_refresh, log=log, config_overrides=day.growth)
    if day.changes:
        merged = replace(
            connection,
            streams=tuple(s for s in connection.streams if s.name in ("users", "purchases")) or connection.streams,
        )
        result["changes"] = sync_connection(merged, target, log=log, config_overrides=day.changes)
    return result


DEPENDENT_VIEWS = """
    select distinct view_ns.nspname, view_class.relname
    from pg_depend
    join pg_rewrite on pg_depend.objid = pg_rewrite.oid
    join pg_class as view_class on pg_rewrite.ev_class = view_class.oid
    join pg_namespace as view_ns on view_class.relnamespace = view_ns.oid
    join pg_class as table_class on pg_depend.refobjid = table_class.oid
    join pg_namespace as table_ns on table_class.relnamespace = table_ns.oid
    where table_ns.nspname = %s and table_class.relname = any(%s) and view_class.oid <> table_class.oid
"""


def drop_dependent_views(
    target: WarehouseTarget, schema: str, tables: list[str], *, log: Callable[[str], None] = print
) -> list[str]:
    """Drop (cascade) the views that read the raw tables a full refresh is about to replace.

    A full refresh writes each stream to a new table, swaps it in and drops the old one; Postgres
    refuses that drop while dbt's staging views depend on the old table ("cannot drop table
    raw.purchases_deleteme because other objects depend on it"). Airbyte's Postgres destination
    has the same problem and offers `drop_cascade`; here the views are dropped first and the dbt
    run that follows the ingest recreates them. Returns the views dropped.
    """
    import psycopg2

    conn = psycopg2.connect(
        host=target.host, port=target.port, user=target.user, password=target.password,
        dbname=target.database, connect_timeout=10,
    )  # fmt: skip
    try:
        with conn, conn.cursor() as cur:
            cur.execute(DEPENDENT_VIEWS, (schema, list(tables)))
            views = [f'"{ns}"."{name}"' for ns, name in cur.fetchall()]
            for view in views:
                cur.execute(f"drop view if exists {view} cascade")
    finally:
        conn.close()
    if views:
        log(f"full refresh: dropped the views over {schema} ({', '.join(views)}); the dbt run recreates them")
    return views
