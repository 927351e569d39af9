"""The runtime's entry point: one declared connection synced into the warehouse.

Input: a JSON spec on stdin (built by include/pipeline/ingest/embedded.py); the warehouse password
comes in WAREHOUSE_PASSWORD, never on the command line. Output: progress lines, then `RESULT
<json>` with per-stream figures (or `PROBLEMS`/`FAILURE` lines before a deliberate stop).
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys
import time
import types
import warnings

from include.airbyte_runtime import checks as sync_checks
from include.airbyte_runtime.catalog import read_groups
from include.airbyte_runtime.connector import die_with_parent
from include.airbyte_runtime.early import EarlyAnswers, EarlyRead, hook_connector_start
from include.airbyte_runtime.locks import claim_streams, forget_stored_state
from include.airbyte_runtime.messages import fast_execute
from include.airbyte_runtime.metadata_cache import read_metadata_cache, use_metadata_cache
from include.airbyte_runtime.postgres import copy_cache_class
from include.airbyte_runtime.report import LOAD_SECONDS, RECORDS, log
from include.airbyte_runtime.rows import record_layout
from include.pipeline.ingest import bad_files, schema_changes


def main() -> int:
    spec = json.loads(sys.stdin.readline())  # one line; stdin then stays open (die_with_parent)
    die_with_parent()
    os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # the connector registry is unreachable
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("NO_LIVE_PROGRESS", "1")
    cached = read_metadata_cache(spec)
    early = EarlyAnswers(spec, cached)  # the connector's spec/discover, beside the import below
    early_read = EarlyRead(spec, cached)  # the connector's read itself, when it can be foreseen

    import airbyte as ab

    wh = spec["warehouse"]
    cache = copy_cache_class()(
        host=wh["host"],
        port=wh["port"],
        username=wh["user"],
        password=os.environ["WAREHOUSE_PASSWORD"],
        database=wh["database"],
        schema_name=spec["schema"],
        **({"cache_dir": spec["work_dir"]} if spec.get("work_dir") else {}),
    )
    streams = spec["streams"]
    sync_checks.setup(log_function=log, layout_function=record_layout, changes_module=schema_changes,
                      files_module=bad_files, spec=spec)  # fmt: skip
    claim_streams(cache, spec)
    if spec.get("full_refresh"):
        forget_stored_state(cache, spec)
    source = ab.get_source(
        spec["connector"],
        config=spec["config"],
        local_executable=spec["executable"],
        install_if_missing=False,
    )
    source._execute = types.MethodType(fast_execute, source)  # noqa: SLF001 - see fast_execute
    hook_connector_start(early_read)
    remember = use_metadata_cache(source, spec, cached, early)
    source.select_streams([s["name"] for s in streams])  # needs the catalog: cached or discovered
    for stream in streams:
        if stream.get("cursor_field"):
            source.set_cursor_key(stream["name"], stream["cursor_field"])
        if stream.get("primary_key"):
            source.set_primary_key(stream["name"], list(stream["primary_key"]))

    figures: dict[str, dict] = {}
    for strategy, full, names in read_groups(spec):
        started = time.monotonic()
        log(
            f"reading {', '.join(names)} (write strategy {strategy}, full refresh {full or bool(spec.get('full_refresh'))})"
        )
        with warnings.catch_warnings():  # replace without force_full_refresh: the state was deleted
            warnings.filterwarnings("ignore", category=ab.exceptions.PyAirbyteDataLossWarning)
            try:
                source.read(cache=cache, streams=names, write_strategy=strategy, force_full_refresh=full)
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
                "table": f"{spec['schema']}.{name}",
                "write_strategy": strategy,
                "seconds": seconds,
                "load_seconds": round(LOAD_SECONDS.get(name, 0.0), 3),
            }
            log(f"stream {name}: {figures[name]['records']} records -> {spec['schema']}.{name}")

    early_read.close()  # its files; a read never handed over (PyAirbyte started another) is stopped
    remember()
    from psycopg2 import sql

    raw = cache.get_sql_engine().raw_connection()
    try:
        db = raw.cursor()
        for name, fig in figures.items():
            db.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(spec["schema"], name)))
            fig["rows_in_table"] = db.fetchone()[0]
    finally:
        raw.close()

    peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    log(f"peak RSS of this runner: {peak_rss_mib} MiB")
    result = {"connection": spec["connection"], "streams": figures, "runner_peak_rss_mib": peak_rss_mib}
    result |= sync_checks.REPORT  # schema_changes, bad_files
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def run() -> None:
    """Run the sync and leave (the process exits with its code)."""
    code = main()
    # The rows are committed and RESULT is out: run the exit handlers (logging's flush, the early
    # read's files) and leave without the interpreter's teardown (freeing PyAirbyte's modules takes a while).
    atexit._run_exitfuncs()  # noqa: SLF001
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
