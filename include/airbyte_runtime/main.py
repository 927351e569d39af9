"""The runtime's entry point: one declared connection synced into the warehouse.

Input: a JSON spec on stdin (built by include/pipeline/ingest/embedded.py); the warehouse password
comes in WAREHOUSE_PASSWORD, never on the command line. Output: progress lines, then `RESULT
<json>` with per-stream figures (or `PROBLEMS`/`FAILURE` lines before a deliberate stop).

The steps: hold the streams (locks.py), the connector's spec and catalog (metadata_cache.py), the
config checked against the spec, then one `read` per write strategy (sync.py) into the warehouse
(destination_postgres.py), each stream committed with its state. A spec with a `lake` part (the
lake connection this one reads for) also feeds that lake from the same read when it can
(shared_lake.py); RESULT's `lake` then says what the lake got (the S3 keys in the spec, on stdin).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

from include.airbyte_runtime import checks as sync_checks
from include.airbyte_runtime.catalog import check_config, configured_catalog, missing_streams, read_groups
from include.airbyte_runtime.connector import ConnectorError, die_with_parent
from include.airbyte_runtime.destination_postgres import WarehouseWriter
from include.airbyte_runtime.locks import claim_streams, forget_stored_state
from include.airbyte_runtime.metadata_cache import connector_answers, read_metadata_cache, remember
from include.airbyte_runtime.report import LOAD_SECONDS, RECORDS, log
from include.airbyte_runtime.rows import record_layout
from include.airbyte_runtime.shared_lake import TwoDestinations, open_lake
from include.airbyte_runtime.state import stored_states
from include.airbyte_runtime.sync import read_into
from include.pipeline.ingest import bad_files, schema_changes


def warehouse_connector(spec: dict):  # noqa: ANN201
    """A function that opens a new connection to the spec's warehouse (psycopg2, autocommit off)."""
    import psycopg2

    wh = spec["warehouse"]
    password = os.environ["WAREHOUSE_PASSWORD"]

    def connect():  # noqa: ANN202
        return psycopg2.connect(
            host=wh["host"], port=wh["port"], user=wh["user"], password=password, dbname=wh["database"],
            connect_timeout=30,
        )  # fmt: skip

    return connect


def main() -> int:
    spec = json.loads(sys.stdin.readline())  # one line; stdin then stays open (die_with_parent)
    die_with_parent()
    cached = read_metadata_cache(spec)
    connect = warehouse_connector(spec)
    schema, streams = spec["schema"], spec["streams"]
    sync_checks.setup(log_function=log, layout_function=record_layout, changes_module=schema_changes,
                      files_module=bad_files, spec=spec)  # fmt: skip
    try:
        answers = connector_answers(spec, cached)
        check_config(spec, answers["spec"])
        missing = missing_streams(answers["catalog"], [s["name"] for s in streams])
        if missing:
            offered = sorted(s.get("name") for s in answers["catalog"].get("streams", []))
            raise ValueError(f"{spec['connector']} offers no stream {missing} (its catalog has {offered})")
    except (ConnectorError, ValueError) as e:
        print(f"FAILURE {e}", flush=True)
        return 1
    from psycopg2 import sql

    raw = connect()
    try:  # created only if missing: the ingest role may use a schema without the right to create one
        db = raw.cursor()
        db.execute("select 1 from pg_namespace where nspname = %s", [schema])
        if db.fetchone() is None:
            db.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        raw.commit()
    finally:
        raw.close()
    claim_streams(connect, spec)
    if spec.get("full_refresh"):
        forget_stored_state(connect, spec)

    figures: dict[str, dict] = {}
    groups = read_groups(spec)
    shared, sink, asked = None, None, False  # the lake connection this read also feeds (shared_lake.py)
    for strategy, full, names in groups:
        started = time.monotonic()
        log(
            f"reading {', '.join(names)} (write strategy {strategy}, full refresh {full or bool(spec.get('full_refresh'))})"
        )
        catalog = configured_catalog(spec, answers["catalog"], names, full)
        # a full refresh reads from no state: forget_stored_state deleted it
        state = [] if full or spec.get("full_refresh") else _stored(connect, schema, spec["connector"])
        writer = WarehouseWriter(connect, schema, spec["connector"], catalog, strategy)
        if spec.get("lake") and not asked:
            asked, lake_name = True, spec["lake"]["connection"]
            sink, why = open_lake(spec, catalog, len(groups), state)
            if sink is None:
                log(f"lake: {lake_name} reads on its own: {why}")
            else:
                where = f"s3://{sink.s3.bucket}/{sink.s3.path_prefix}/"
                log(f"lake: one read for two destinations: {lake_name}'s records into {where} too")
                shared = writer = TwoDestinations(writer, sink, catalog)
        try:
            read_into(spec, catalog, state, writer)
        except ConnectorError as e:
            sync_checks.report_problems("PROBLEMS")
            print(f"FAILURE {e}", flush=True)
            return 1
        except Exception as e:
            stop = sync_checks.stopped_by(e)
            if stop is None:
                raise
            sync_checks.report_problems("PROBLEMS")
            print(f"FAILURE {stop}", flush=True)
            return 1
        unread = sync_checks.unread_bad_files()
        if unread:
            sync_checks.report_problems("PROBLEMS")
            print(f"FAILURE {unread}", flush=True)
            return 1
        seconds = round(time.monotonic() - started, 3)
        for name in names:
            figures[name] = {
                "records": RECORDS.get(name, 0),
                "table": f"{schema}.{name}",
                "write_strategy": strategy,
                "seconds": seconds,
                "load_seconds": round(LOAD_SECONDS.get(name, 0.0), 3),
            }
            log(f"stream {name}: {figures[name]['records']} records -> {schema}.{name}")

    if answers != cached:  # asked of the connector this time: kept for the next sync
        remember(spec, answers)
    raw = connect()
    try:
        db = raw.cursor()
        for name, fig in figures.items():
            db.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name)))
            fig["rows_in_table"] = db.fetchone()[0]
    finally:
        raw.close()

    peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    log(f"peak RSS of this runner: {peak_rss_mib} MiB")
    result = {"connection": spec["connection"], "streams": figures, "runner_peak_rss_mib": peak_rss_mib}
    result |= sync_checks.REPORT  # schema_changes, bad_files
    if sink is not None:
        result["lake"] = shared.outcome(sink)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _stored(connect, schema: str, connector: str) -> list:  # noqa: ANN001
    raw = connect()
    try:
        return stored_states(raw.cursor(), schema, connector)
    finally:
        raw.close()


def run() -> None:
    """Run the sync and leave (the process exits with its code)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the rows are committed and RESULT is out; daemon threads need no teardown
