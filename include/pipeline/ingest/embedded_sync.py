"""A shop whose data moves day by day: the export of the logical date, then an incremental read.

The source is the shop's nightly export files in S3, read by source-s3 (connections.yaml,
source `shop`): day N's sync reads only the files that appeared since the last sync, i.e. that
day's new and changed records (about 2% of the demo shop, 1% new + 1% changed at the scale the
benchmark runs), never the whole shop again.

In the demo those files are written by a simulated shop (include/simulator/shop.py), the
stand-in for the shop's own export job: the DAG's first task `shop_export` calls
`export_shop_day` for the logical date, for every source with a `simulator:` block, so both
ingestion engines (embedded PyAirbyte, an Airbyte server) read the same files. The export of a
date is the same on every run, and an unchanged file is not rewritten, so rerunning a day reads
nothing new and leaves every table as it was. With real exports (no `simulator:` block) the
task has nothing to do.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from include.pipeline.endpoints import Warehouse
from include.pipeline.ingest.declaration import Connection, Source, load_connections
from include.pipeline.ingest.embedded import sync_connection
from include.pipeline.ingest.lake_sync import lake_part, result_from_reader, sync_to_lake
from include.pipeline.ingest.shared_read import lake_read_by, shared_readers
from include.pipeline.ingest.stage_keys import connection_names, run_environ
from include.simulator.exports import export_day
from include.simulator.shop import ANCHOR_DATE, ShopHistory, ShopSettings, day_index

_log = logging.getLogger(__name__)

__all__ = [
    "ANCHOR_DATE", "day_index", "expected_counts", "export_shop_day", "run_embedded", "shop_settings", "sync_day",
]  # fmt: skip


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
    target: Warehouse,
    logical_date: dt.date | str,
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
    environ: dict[str, str] | None = None,
    lake: dict | None = None,
) -> dict:
    """The embedded sync of one day: source-s3 reads the files that are new since its state.
    A full refresh re-reads every file (after `shop_export` replaced them with one full export).
    `lake`: the lake connection the read also feeds (embedded.py `sync_connection`)."""
    if full_refresh:
        drop_dependent_views(target, connection.destination.schema, [s.name for s in connection.streams], log=log)
    log(
        f"daily data: {connection.name} for {str(logical_date)[:10]} (day {day_index(logical_date)} since {ANCHOR_DATE})"
    )
    return sync_connection(connection, target, full_refresh=full_refresh, log=log, environ=environ, lake=lake)


def run_embedded(
    connection_name: str,
    ds: str | None,
    full_refresh: bool = False,
    *,
    log: Callable[[str], None] | None = None,
    pull: Callable[[str], Any] | None = None,
) -> dict:
    """The embedded engine's sync of one declared connection, as the ingest task runs it.

    `ds`: the run's logical date (the shop moves day by day with it); None syncs what is there.
    `full_refresh` re-reads every stream. The warehouse is the destination's Airflow connection.
    `pull(connection)`: that connection's task result in this run (its XCom): a lake connection
    whose part another connection's read already wrote (shared_read.py) reads nothing.
    Returns the per-stream figures (the task's XCom, read by the metrics callback)."""

    log = log or _log.info
    config = load_connections()
    connection = config.connection(connection_name)
    # the S3 keys the declaration names, from their Airflow connections (never os.environ)
    environ = run_environ(connection_names(connection))
    if connection.destination.type == "s3":  # the lake: Parquet in Airbyte's S3 layout, no warehouse
        reader = shared_readers(config).get(connection_name)
        if reader and pull is not None and not full_refresh:
            try:
                reported = pull(reader)
            except Exception as e:  # noqa: BLE001 - the reader's result unknown: the lake reads on its own
                log(f"shared read: {reader}'s result could not be read ({type(e).__name__}: {e})")
                reported = None
            done = result_from_reader(connection, reader, reported, log=log, environ=environ)
            if done is not None:
                return done
        return sync_to_lake(connection, full_refresh=full_refresh, log=log, environ=environ)
    lake, fed = None, lake_read_by(config, connection_name)
    if fed is not None and full_refresh:
        log(f"shared read: {fed.name} reads on its own: a reset of the ingest this run")
    elif fed is not None:
        lake = lake_part(fed, run_environ(connection_names(fed)))
    target = Warehouse.from_airflow_connection(connection.destination.airflow_conn_id)
    if ds:
        return sync_day(connection, target, ds, full_refresh=full_refresh, log=log, environ=environ, lake=lake)
    return sync_connection(connection, target, full_refresh=full_refresh, log=log, environ=environ, lake=lake)


# Objects that depend on a relation (deptype 'n': the ones that stop a plain DROP), with what
# they are: a view's or materialized view's rewrite rule names its relation; anything else (a
# foreign key, a policy, a function body) is described by Postgres itself.
DEPENDENTS = """
    select distinct d.refobjid, c.oid, n.nspname, c.relname, c.relkind,
           pg_describe_object(d.classid, d.objid, d.objsubid)
    from pg_depend as d
    left join pg_rewrite as r on d.classid = 'pg_rewrite'::regclass and r.oid = d.objid
    left join pg_class as c on c.oid = r.ev_class
    left join pg_namespace as n on n.oid = c.relnamespace
    where d.refclassid = 'pg_class'::regclass and d.refobjid = any(%s) and d.deptype = 'n'
      and (c.oid is null or c.oid <> d.refobjid)
"""
RELATIONS = """
    select c.oid from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
    where n.nspname = %s and c.relname = any(%s)
"""


class FullRefreshBlocked(RuntimeError):
    """A full refresh would drop an object dbt does not manage: nothing was dropped."""


def dbt_managed_views(manifest: Path | None = None) -> set[tuple[str, str]]:
    """(schema, name) of the views and materialized views dbt builds, from its manifest."""
    from include.pipeline import settings

    path = manifest or settings.DBT_PROJECT_DIR / "target" / "manifest.json"
    if not path.exists():
        return set()
    nodes = json.loads(path.read_text())["nodes"].values()
    return {
        (node["schema"], node.get("alias") or node["name"])
        for node in nodes
        if node.get("resource_type") == "model"
        and node.get("config", {}).get("materialized") in ("view", "materialized_view")
    }


def drop_dependent_views(
    target: Warehouse,
    schema: str,
    tables: list[str],
    *,
    log: Callable[[str], None] = print,
    managed: set[tuple[str, str]] | None = None,
) -> list[str]:
    """Drop the dbt views that read the raw tables a full refresh is about to replace.

    A full refresh writes each stream to a new table, swaps it in and drops the old one; Postgres
    refuses that drop while views depend on the old table ("cannot drop table
    raw.purchases_deleteme because other objects depend on it"). The views dbt builds (its
    manifest says which) are dropped here and recreated by the dbt run that follows the ingest.
    Anything else that depends on those tables, directly or through a dbt view (a view of the
    user's, a materialized view, a foreign key), stops the refresh before anything is dropped,
    with a message naming it: it is the user's, and CASCADE would delete it without a word.
    Returns the views dropped.
    """
    from psycopg2 import sql

    managed = dbt_managed_views() if managed is None else managed
    conn = target.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(RELATIONS, (schema, list(tables)))
            frontier = [oid for (oid,) in cur.fetchall()]
            depth = dict.fromkeys(frontier, 0)  # longest path from a raw table: drop the deepest first
            views: dict[int, tuple[str, str, str]] = {}  # oid -> (schema, name, relkind)
            blockers: list[str] = []
            while frontier:
                cur.execute(DEPENDENTS, (frontier,))
                frontier = []
                for parent, oid, ns, name, kind, description in cur.fetchall():
                    if oid is not None and kind in ("v", "m") and (ns, name) in managed:
                        views[oid] = (ns, name, kind)
                        if depth.get(oid, -1) < depth[parent] + 1:
                            depth[oid] = depth[parent] + 1
                            frontier.append(oid)
                    else:
                        blockers.append(description)
            if blockers:
                raise FullRefreshBlocked(
                    f"full refresh of {schema} ({', '.join(tables)}) stopped, nothing was dropped: "
                    + "; ".join(sorted(set(blockers)))
                    + " depend(s) on those tables and dbt does not manage them. Fix: drop or move them "
                    "(e.g. make them dbt models), or refresh without full_refresh"
                )
            # deepest first and no CASCADE: anything unexpected that depends on a view fails the drop
            for oid in sorted(views, key=lambda o: -depth[o]):
                ns, name, kind = views[oid]
                statement = "drop materialized view {}" if kind == "m" else "drop view {}"
                cur.execute(sql.SQL(statement).format(sql.Identifier(ns, name)))
    finally:
        conn.close()
    dropped = [f"{ns}.{name}" for ns, name, _ in views.values()]
    if dropped:
        log(f"full refresh: dropped dbt's views over {schema} ({', '.join(dropped)}); the dbt run recreates them")
    return dropped
