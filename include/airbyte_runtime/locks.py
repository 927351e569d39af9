"""One sync of a stream into a schema at a time, and what a killed sync left behind.

Two syncs of the same streams into the same schema would race in their merges and could duplicate
keys, so each takes a session-level advisory lock per stream for its whole run (Postgres releases
it however the process ends). Once held, every stage table of those streams is a left-over.
A full refresh deletes the streams' stored state here, once the streams are held.
"""

from __future__ import annotations

import re
from typing import Any

from include.airbyte_runtime.report import log
from include.airbyte_runtime.tables import normalize

# This sync's claim on its streams (a session-level advisory lock per <schema>.<stream>), held until
# the runner exits: Postgres releases it when the session ends, however the runner ended.
STREAM_LOCKS: Any = None


def claim_streams(connect: Any, spec: dict) -> None:
    """Hold this sync's streams for its whole run, then drop the stage tables a killed sync of them left.

    A stage is created at a stream's first rows and dropped after the merge, or when the sync fails;
    a runner killed outright (SIGKILL, a lost machine) cannot drop it. Only unlogged tables named as
    tables.py names stages (`<stream>_<9 lower-case characters>`) are dropped: final tables are logged.
    Each sync first takes an advisory lock per stream and holds it for its whole run: a second sync
    of the same streams into the same schema waits for the first to end (their merges would race
    and could duplicate keys), and once it holds them, every stage of its streams is a left-over.
    """
    global STREAM_LOCKS  # noqa: PLW0603 - one runner, one claim, until it exits
    from psycopg2 import sql

    streams = [normalize(s["name"]) for s in spec["streams"]]
    if not streams:
        return
    STREAM_LOCKS = connect()
    db = STREAM_LOCKS.cursor()
    for stream in sorted(streams):  # one order for every sync: two cannot wait on each other
        key = (f"embedded-sync:{spec['schema']}.{stream}",)
        db.execute("select pg_try_advisory_lock(hashtext(%s)::bigint)", key)
        if not db.fetchone()[0]:
            log(f"another sync of {stream} into {spec['schema']} is running: waiting for it to end")
            db.execute("select pg_advisory_lock(hashtext(%s)::bigint)", key)
            log(f"the other sync of {stream} ended: going on")
    STREAM_LOCKS.commit()  # session-level locks outlive the transaction; no transaction stays open
    raw = connect()
    try:
        db = raw.cursor()
        db.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relkind = 'r' and c.relpersistence = 'u' and c.relname ~ %s",
            (spec["schema"], f"^({'|'.join(re.escape(s) for s in streams)})_[0-9a-z]{{9}}$"),
        )
        left = sorted(row[0] for row in db.fetchall())
        for name in left:
            db.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(spec["schema"], name)))
        raw.commit()
    finally:
        raw.close()
    if left:
        log(f"dropped {len(left)} stage table(s) an interrupted sync left: {', '.join(left)}")


def forget_stored_state(connect: Any, spec: dict) -> None:
    """Delete the state stored for this sync's streams (a full refresh: a reset of the
    ingest). Called once the streams are held (`claim_streams`): the read then starts from no
    state and replaces every table. Should the sync fail after this, the tables are as they were
    and the next sync reads every file again, merging on the primary key."""
    from psycopg2 import sql

    names = [s["name"] for s in spec["streams"]]
    raw = connect()
    try:
        db = raw.cursor()
        db.execute("select to_regclass(%s)", [f'"{spec["schema"]}"._airbyte_state'])
        if db.fetchone()[0] is None:
            return
        db.execute(
            sql.SQL("delete from {} where source_name = %s and stream_name = any(%s)").format(
                sql.Identifier(spec["schema"], "_airbyte_state")
            ),
            (spec["connector"], names),
        )
        forgotten = db.rowcount
        raw.commit()
    finally:
        raw.close()
    log(f"full refresh: the stored state of {forgotten} stream(s) deleted; every file is read again")
