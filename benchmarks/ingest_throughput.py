"""Embedded ingestion throughput: the connector's own read vs the embedded sync vs COPY.

    .venv/bin/python benchmarks/ingest_throughput.py [--counts 20000 100000] [--rounds 2]

For each faker `count` (users; purchases scale with it, products are a fixed list of 100) and
each round, against a throw-away Postgres in a temp folder (the same embedded server the stack
uses):

- connector read: the connector executable's own `read` of the declared streams (config from
  connections.yaml, a configured catalog with no state), its stdout counted and discarded: the
  floor any loader can reach, since a sync cannot be faster than its source;
- embedded sync: `include.pipeline.ingest.embedded.sync_connection` into a fresh database, as an
  Airflow task runs it (PyAirbyte runs the connector; records are loaded into raw.*), with the
  runner's peak RSS as it reports it, and the loading left after the read (the end of each
  stage table's COPY, which runs while the connector is read, + the move into the final table);
- COPY: the rows the sync wrote, dumped to CSV in memory, then loaded by `COPY ... FROM STDIN`
  into empty tables of the same shape: what Postgres itself needs for the same rows.

Prints every round, then one table (best and median of the rounds) with records/s and the ratio
embedded sync / connector read (goal: <= 1.5). Wall times on a shared machine are noisy: run at
least 2 rounds and read the best and the median. The CPU seconds (user + system of the connector
for the read; of the runner and the connector it runs for the sync) do not depend on the load,
so their ratio is the one to compare between machines and runs.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from psycopg2 import sql

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from include.pipeline.endpoints import Warehouse  # noqa: E402
from include.pipeline.ingest.declaration import load_connections  # noqa: E402
from include.pipeline.ingest.embedded import connector_executable, sync_connection  # noqa: E402
from include.pipeline.services.postgres import EmbeddedPostgres  # noqa: E402

CONNECTION = "shop_faker_to_warehouse"
DECLARATION = Path(__file__).with_name("faker_connections.yaml")
RECORD_PREFIXES = (b'{"type":"RECORD"', b'{"type": "RECORD"')
CATALOG_DIR = REPO_ROOT / "include" / "airbyte" / "catalogs"


def configured_catalog(connection) -> dict:
    """The catalog a first incremental sync sends the connector (from the discover snapshot)."""
    snapshot = json.loads((CATALOG_DIR / f"{connection.source.connector}.json").read_text())
    offered = {s["name"]: s for s in snapshot["streams"]}
    streams = []
    for s in connection.streams:
        incremental = s.sync_mode.startswith("incremental")
        streams.append({
            "stream": {
                "name": s.name,
                "json_schema": offered[s.name]["json_schema"],
                "supported_sync_modes": offered[s.name]["supported_sync_modes"],
            },
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "append_dedup" if s.sync_mode == "incremental_deduped_history" else "append",
            **({"cursor_field": [s.cursor_field]} if s.cursor_field else {}),
            **({"primary_key": [[k] for k in s.primary_key]} if s.primary_key else {}),
        })  # fmt: skip
    return {"streams": streams}


def children_cpu() -> float:
    """User + system CPU seconds of every finished child process (and theirs, once waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def connector_read(connection, count: int, work: Path) -> tuple[float, int]:
    """Seconds and records of the connector's own `read`, output counted and thrown away."""
    config = {**connection.source.resolved_config(), "count": count}
    (work / "config.json").write_text(json.dumps(config))
    (work / "catalog.json").write_text(json.dumps(configured_catalog(connection)))
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(connector_executable(connection.source.connector)), "read",
         "--config", str(work / "config.json"), "--catalog", str(work / "catalog.json")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    records, carry = 0, b""
    assert proc.stdout
    while chunk := proc.stdout.read(1 << 20):
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        records += sum(1 for line in lines if line.startswith(RECORD_PREFIXES))
    records += carry.startswith(RECORD_PREFIXES)
    if proc.wait() != 0:
        raise SystemExit(f"connector read exited {proc.returncode}")
    return time.monotonic() - started, records


def new_database(server: EmbeddedPostgres) -> Warehouse:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    conn = server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'create database "{name}"')
    conn.close()
    return Warehouse("127.0.0.1", server.port, server.superuser, server.password, name)


def embedded_sync(connection, warehouse: Warehouse, count: int) -> tuple[float, int, float | None, dict]:
    """Seconds, records, runner peak RSS (MiB) of one first sync into an empty database."""
    lines: list[str] = []
    started = time.monotonic()
    result = sync_connection(connection, warehouse, log=lines.append, config_overrides={"count": count})
    seconds = time.monotonic() - started
    records = sum(s["records"] for s in result["streams"].values())
    # what loading costs after the read (the end of each stage's COPY + the merge), as the runner reports it
    result["load_seconds"] = sum(float(s.get("load_seconds") or 0) for s in result["streams"].values())
    return seconds, records, result.get("runner_peak_rss_mib"), result


def copy_same_rows(server: EmbeddedPostgres, warehouse: Warehouse, streams: list[str]) -> tuple[float, int]:
    """Seconds to COPY the rows the sync wrote into empty tables of the same shape (CSV from memory)."""
    conn = server.connect(warehouse.database)
    dumps: dict[str, io.BytesIO] = {}
    rows = 0
    with conn, conn.cursor() as cur:
        cur.execute("create schema copy_bench")
        for name in streams:
            raw_table, bench_table = sql.Identifier("raw", name), sql.Identifier("copy_bench", name)
            cur.execute(sql.SQL("create table {} (like {})").format(bench_table, raw_table))
            buf = io.BytesIO()
            cur.copy_expert(sql.SQL("copy {} to stdout with (format csv)").format(raw_table).as_string(cur), buf)
            cur.execute(sql.SQL("select count(*) from {}").format(raw_table))
            rows += cur.fetchone()[0]
            dumps[name] = buf
    started = time.monotonic()
    with conn, conn.cursor() as cur:
        for name, buf in dumps.items():
            buf.seek(0)
            cur.copy_expert(f"copy copy_bench.{name} from stdin with (format csv)", buf)
    seconds = time.monotonic() - started
    conn.close()
    return seconds, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[20000, 100000], help="faker counts (users)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    # source-faker is not in the stack's declaration any more: its own file, its own venv
    from include.pipeline import settings
    from include.pipeline.cli.venvs import sync_venv

    sync_venv(REPO_ROOT / ".venv-source-faker", settings.AIRBYTE_REQUIREMENTS_DIR / "source-faker.txt")
    connection = load_connections(DECLARATION).connection(CONNECTION)
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "postgres", password=secrets.token_urlsafe(16))
        server.start()
        try:
            table = []
            for count in args.counts:
                runs: dict[str, list[float]] = {
                    "read": [], "sync": [], "load": [], "copy": [], "rss": [], "read_cpu": [], "sync_cpu": []
                }  # fmt: skip
                records = {}
                for round_ in range(1, args.rounds + 1):
                    work = Path(tmp) / f"read-{count}-{round_}"
                    work.mkdir()
                    cpu = children_cpu()
                    read_s, read_n = connector_read(connection, count, work)
                    read_cpu, cpu = children_cpu() - cpu, children_cpu()
                    warehouse = new_database(server)
                    sync_s, sync_n, rss, result = embedded_sync(connection, warehouse, count)
                    sync_cpu = children_cpu() - cpu  # the runner, and the connector it waited for
                    runs["read_cpu"].append(read_cpu)
                    runs["sync_cpu"].append(sync_cpu)
                    copy_s, copy_n = copy_same_rows(server, warehouse, list(result["streams"]))
                    records = {"read": read_n, "sync": sync_n, "copy": copy_n}
                    runs["read"].append(read_s)
                    runs["sync"].append(sync_s)
                    runs["copy"].append(copy_s)
                    runs["load"].append(result["load_seconds"])
                    if rss is not None:
                        runs["rss"].append(rss)
                    print(
                        f"count={count} round {round_}: read {read_s:.2f} s ({read_n} records), "
                        f"sync {sync_s:.2f} s ({sync_n} records, of which loading {result['load_seconds']:.2f} s; "
                        f"runner peak RSS {rss} MiB), "
                        f"copy {copy_s:.3f} s ({copy_n} rows), sync/read {sync_s / read_s:.2f}; "
                        f"CPU: read {read_cpu:.1f} s, sync {sync_cpu:.1f} s (runner + connector), "
                        f"sync/read {sync_cpu / read_cpu:.2f}",
                        flush=True,
                    )
                table.append((count, records, runs))
        finally:
            server.stop()

    print()
    print(f"{'count':>7} {'records':>8} | {'read s':>13} {'rec/s':>7} | {'sync s':>13} {'rec/s':>7} "
          f"{'RSS MiB':>7} | {'load s':>11} {'rec/s':>7} | {'COPY s':>13} {'rec/s':>9} | {'sync/read':>11}")  # fmt: skip
    for count, records, runs in table:
        best = {k: min(v) for k, v in runs.items() if v}
        med = {k: statistics.median(v) for k, v in runs.items() if v}
        n = records["sync"]

        def cell(key: str, best: dict = best, med: dict = med) -> str:
            return f"{best[key]:6.2f}/{med[key]:6.2f}"

        ratios = [s / r for s, r in zip(runs["sync"], runs["read"], strict=True)]
        print(
            f"{count:>7} {n:>8} | {cell('read')} {records['read'] / best['read']:>7.0f} | "
            f"{cell('sync')} {n / best['sync']:>7.0f} {max(runs['rss']) if runs['rss'] else float('nan'):>7.0f} | "
            f"{best['load']:5.2f}/{med['load']:5.2f} {n / max(best['load'], 1e-6):>7.0f} | "
            f"{best['copy']:6.3f}/{med['copy']:6.3f} {records['copy'] / best['copy']:>9.0f} | "
            f"{min(ratios):4.2f}/{statistics.median(ratios):4.2f}"
        )
        cpu_ratios = [s / r for s, r in zip(runs["sync_cpu"], runs["read_cpu"], strict=True)]
        print(
            f"{'':>7} {'':>8}   CPU s (user+sys): read {cell('read_cpu')}, sync {cell('sync_cpu')} "
            f"(runner + connector; Postgres not counted), sync/read {min(cpu_ratios):4.2f}/{statistics.median(cpu_ratios):4.2f}"
        )
    print("(times: best/median of the rounds; records/s from the best; ratio: best/median of per-round sync/read)")
    print("(CPU seconds do not depend on how loaded the machine is; wall seconds do)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
