"""A shop whose data moves day by day: the export of the logical date, then an incremental read.

The source is the shop's nightly export files in S3, read by source-s3 (connections.yaml,
source `shop`): day N's sync reads only the files that appeared since the last sync, i.e. that
day's new and changed records (about 2% of the demo shop, 1% new + 1% changed at the scale the
benchmark runs), never the whole shop again.

In the demo those files are written by a simulated shop (include/pipeline/ingest/shop.py), the
stand-in for the shop's own export job: the DAG's first task `shop_export` calls
`export_shop_day` for the logical date, for every source with a `simulator:` block, so both
ingestion engines (embedded PyAirbyte, an Airbyte server) read the same files. The export of a
date is the same on every run, and an unchanged file is not rewritten, so rerunning a day reads
nothing new and leaves every table as it was. With real exports (no `simulator:` block) the
task has nothing to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from include.pipeline.ingest.connections import Connection, Source
from include.pipeline.ingest.embedded import WarehouseTarget, sync_connection
from include.pipeline.ingest.shop import ANCHOR_DATE, ShopHistory, ShopSettings, day_index, export_day

__all__ = ["ANCHOR_DATE", "day_index", "expected_counts", "export_shop_day", "shop_settings", "sync_day"]


def shop_settings(source: Source) -> ShopSettings:
    """The simulated shop of `source` (its `simulator:` block), sized by SHOP_CUSTOMERS /
    SHOP_ORDERS when set (the benchmark's 1M shop), with the connection's bucket and format."""
    from include.pipeline import settings

    config = source.config
    fmt = {s.get("format", {}).get("filetype") for s in config.get("streams") or []}
    declared = {"bucket": config.get("bucket"), "format": fmt.pop() if len(fmt) == 1 else None}
    return ShopSettings.from_config({**declared, **(source.simulator or {})}, settings.shop_size_overrides())


def expected_counts(logical_date: dt.date | str, source: Source) -> dict[str, int]:
    """Raw rows once the shop's exports up to `logical_date` are synced: one per key."""
    history = ShopHistory(shop_settings(source), day_index(logical_date))
    return {stream: len(history.keys_in(stream, None)) for stream in ("users", "products", "purchases")}


def export_shop_day(
    source: Source,
    client: Any,
    logical_date: dt.date | str,
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
) -> dict | None:
    """Write the simulated shop's export of `logical_date` into its bucket (a `minio` client);
    None when `source` reads real exports (no `simulator:` block)."""
    if source.simulator is None:
        log(f"source '{source.name}' has no simulator: it reads real exports, nothing to write")
        return None
    return export_day(client, shop_settings(source), logical_date, full_refresh=full_refresh, log=log)


def sync_day(
    connection: Connection,
    target: WarehouseTarget,
    logical_date: dt.date | str,
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """The embedded sync of one day: source-s3 reads the files that are new since its state.
    A full refresh re-reads every file (after `shop_export` replaced them with one full export)."""
    if full_refresh:
        drop_dependent_views(target, connection.destination.schema, [s.name for s in connection.streams], log=log)
    log(
        f"daily data: {connection.name} for {str(logical_date)[:10]} (day {day_index(logical_date)} since {ANCHOR_DATE})"
    )
    return sync_connection(connection, target, full_refresh=full_refresh, log=log)


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
