"""`make bench`: the whole stack at real shop volumes, under Airflow's real scheduler.

    .venv/bin/python benchmarks/scale.py [--sizes 100000 1000000] [--work-dir .local/bench] [--keep] [--json F] [--dag-only]
    .venv/bin/python benchmarks/scale.py --report F [F ...]   # one table from runs made separately

For each size N (customers, and as many orders), in a stack of its own under --work-dir:
1. `cli services` (Postgres, S3) and `cli settings`, then `cli up` (api-server, scheduler,
   dag-processor, triggerer, sized to the machine); idle RSS of the whole Airflow tree;
2. day 0 (2026-01-01), the initial full load: the simulated shop's first export holds its whole
   history (N customers, N orders, 100 products); a run triggered through the REST API, as the
   web UI does: wall time of the run, of each stage (shop_export, ingest, the dbt part), records
   ingested per second, the largest RSS of any one process while it ran;
3. day 1 (2026-01-02), the first daily increment (the day's new and changed records), the same
   figures;
4. with Airflow stopped, on the same data (after one untimed `dbt parse`: each timed build reads
   the project through dbt's partial parsing, as the DAG's producer does with Cosmos's cache):
   one plain `dbt build --full-refresh` (what the day-0 dbt part does) and one plain `dbt build` (what the day-1 dbt part does, with nothing new
   left to read, so a lower bound); then day 2's export and sync without Airflow and one plain
   `dbt build` of that increment (the fair base of the day-1 dbt part: a day's new and changed
   records of the same shop); source-s3's own read of every export file (no destination, the
   configured catalog the sync sends, no state), then the embedded sync of the same files alone
   (into a schema of its own with no state yet, so every file, as a first sync: in the DAG the
   same sync also writes the lake's part, one read for both); COPY of the raw rows into fresh tables;
5. the disk the stack's folder uses (Postgres, S3, logs) after all that;
6. one table for all sizes, and the ratios: embedded sync vs the connector's own read vs COPY,
   the DAG's dbt part vs one dbt build, a day's dbt build vs a full rebuild (issue 27: at most
   0.25x), day 1 vs day 0, and the largest size vs the smallest.

`--daily-share S`: a day of S new and S changed customers and orders (of day 0's size) instead of
connections.yaml's 2% + 2%: `--sizes 10000000 --daily-share 0.002` is the 1M shop's day (80,000
records) on 10x its history, the cost of a day of the same change on a bigger shop.

`--dag-only`: steps 1-3 and 5 only (the two runs under the scheduler, the disk): at 10M, ~45 min
instead of ~1.5 h; the table then has the DAG's rows alone.

Nothing is typed in: every figure is measured by this run. It takes a while (measured: 100k ~6 min, 1M ~20 min).
10M is a run of its own (`make bench SIZES=10000000`: expect an hour or more on 2 cores and about
10x the disk the 1M run reports; `--json` then `--report` joins it to the default sizes' table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.airflow_stack import AirflowUp, cli, stack_env  # noqa: E402

DAY0, DAY1, DAY2 = "2026-01-01", "2026-01-02", "2026-01-03"
CONNECTION_TASK = "ingest.shop_to_warehouse"
RAW_STREAMS = ("users", "products", "purchases")
MB = 1024 * 1024


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run_figures(up: AirflowUp, date: str) -> dict:
    """Trigger the run of `date`, wait for it, return its figures."""
    up.sampler.reset()
    result = up.run(date, timeout=4 * 3600)
    if result.state != "success":
        bad = {t: v["state"] for t, v in result.tasks.items() if v["state"] != "success"}
        raise RuntimeError(f"run of {date} ended {result.state}: {bad}\n{up.tail(6000)}")
    sync = up.xcom(result.run_id, CONNECTION_TASK) or {}
    records = sum(int(s.get("records") or 0) for s in (sync.get("streams") or {}).values())
    ingest = result.tasks.get(CONNECTION_TASK, {})
    peak_rss, peak_label = (up.sampler.top(1) or [(0, "-")])[0]
    first = min((t["start"] for t in result.tasks.values() if t["start"]), default=None)
    return {
        "wall": result.seconds,
        "export": result.span("shop_export"),
        "ingest": float(ingest.get("duration") or result.span("ingest.")),
        "sync_seconds": float(sync.get("seconds") or 0),
        # the write path's share: COPY into the stage tables + stage -> final (merge), every stream
        "load_seconds": sum(float(s.get("load_seconds") or 0) for s in (sync.get("streams") or {}).values()),
        "records": records,
        "dbt": result.span("transform."),
        "peak_rss": peak_rss,
        "peak_process": peak_label,
        "tree_peak": up.sampler.tree_peak,
        # each task's start offset and seconds, for the run's timeline (in --json)
        "tasks": {
            tid: [round((t["start"] - first).total_seconds(), 1), round(float(t["duration"] or 0), 1)]
            for tid, t in result.tasks.items()
            if t["start"]
        },
    }


def dbt_command(env: dict[str, str], work: Path, command: str, *extra: str) -> float:
    """Wall seconds of one plain `dbt <command>` on the stack's warehouse (threads as in the
    profile), its target and logs in `work`: the plain builds share one target, so each after
    the first `dbt parse` reads the project through dbt's partial parsing, as the DAG's producer
    does (Cosmos keeps the last run's partial_parse.msgpack and gives it to the next run)."""
    dbt = Path(sys.executable).with_name("dbt")
    project = ROOT / "include" / "dbt"
    # the DAG's build: without dbt's unit tests (include/pipeline/transform/cosmos_config.py)
    excluded = ("--exclude-resource-type", "unit_test") if command == "build" else ()
    cmd = [str(dbt), command, "--project-dir", str(project), "--profiles-dir", str(project),
           "--target-path", str(work / "target"), "--log-path", str(work / "logs"), *excluded, *extra]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(cmd, env={**env, **warehouse_env(env)}, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"dbt {command} {' '.join(extra)} failed:\n{proc.stdout[-4000:]}")
    return seconds


# Day 2's export and warehouse sync outside Airflow (what the DAG's shop_export and ingest tasks do),
# so that one plain `dbt build` can be timed on a day's increment: the fair base of the day-1 dbt part
# (same shop, same share of new and changed records; day 1's own data is already transformed).
INCREMENT = """
import json, os, sys
from urllib.parse import urlparse
from minio import Minio
from include.pipeline import settings
from include.pipeline import environments
from include.pipeline import endpoints
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded_sync import export_shop_day, sync_day
s3 = endpoints.S3.from_settings()
os.environ.update(environments.s3_env())  # the stage keys connections.yaml names
url = urlparse(s3.endpoint)
client = Minio(url.netloc, access_key=s3.access_key, secret_key=s3.secret_key, secure=url.scheme == "https")
connection = load_connections().connection(sys.argv[1])
export_shop_day(connection.source, client, sys.argv[2], log=lambda _: None)
figures = sync_day(connection, endpoints.Warehouse.for_role("ingest"), sys.argv[2], log=lambda _: None)
print(json.dumps(sum(int(s.get("records") or 0) for s in figures["streams"].values())))
"""


# The same connection's sync of every export file, alone on the machine (in the DAG the same read
# also feeds the lake's connection: include/pipeline/ingest/shared_read.py): into a schema of its own, as the warehouse's admin. No state there
# yet, so it reads every file, as a first sync does (incremental streams, merge, the cached catalog).
SYNC_ALONE = """
import json, os, sys
from include.pipeline import endpoints, environments
from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.embedded import sync_connection
os.environ.update(environments.s3_env())  # the stage keys connections.yaml names
connection = load_connections().connection(sys.argv[1])
connection = connection.model_copy(update={"destination": connection.destination.model_copy(update={"schema": "bench_sync"})})
admin = endpoints.Warehouse.from_settings()
figures = sync_connection(connection, admin, log=lambda _: None)
with admin.connect() as conn, conn.cursor() as cur:
    cur.execute("drop schema bench_sync cascade")
records = sum(int(s.get("records") or 0) for s in figures["streams"].values())
load = sum(float(s.get("load_seconds") or 0) for s in figures["streams"].values())
print(json.dumps([figures["seconds"], records, load]))
"""


def sync_alone(env: dict[str, str]) -> tuple[float, int, float]:
    """The embedded sync of every export file with nothing else running: seconds, records, load seconds."""
    proc = subprocess.run([sys.executable, "-c", SYNC_ALONE, CONNECTION_TASK.split(".", 1)[1]], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"the sync alone failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    seconds, records, load = json.loads(proc.stdout.strip().splitlines()[-1])
    return seconds, records, load


def ingest_increment(env: dict[str, str], date: str) -> int:
    """Export and sync `date` into the stack's warehouse without Airflow: records synced."""
    proc = subprocess.run([sys.executable, "-c", INCREMENT, CONNECTION_TASK.split(".", 1)[1], date], cwd=ROOT,
                          env=env, capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"day {date}'s export and sync failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return int(proc.stdout.strip().splitlines()[-1])


def warehouse_env(env: dict[str, str]) -> dict[str, str]:
    """WAREHOUSE_* of the stack, as the CLI resolves them (its .env and services state)."""
    code = "import json; from include.pipeline.environments import warehouse_env; print(json.dumps(warehouse_env()))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def copy_seconds(env: dict[str, str]) -> tuple[float, int]:
    """Seconds to COPY every raw row into fresh tables of the same shape (the load only), and rows."""
    import psycopg2

    wh = warehouse_env(env)
    conn = psycopg2.connect(
        host=wh["WAREHOUSE_HOST"], port=wh["WAREHOUSE_PORT"], user=wh["WAREHOUSE_USER"],
        password=wh["WAREHOUSE_PASSWORD"], dbname=wh["WAREHOUSE_DB"],
    )  # fmt: skip
    total, rows = 0.0, 0
    try:
        with conn, conn.cursor() as cur, tempfile.TemporaryDirectory(prefix="bench-copy-") as tmp:
            cur.execute("create schema if not exists bench_copy")
            for stream in RAW_STREAMS:
                path = Path(tmp) / f"{stream}.csv"
                with path.open("w") as out:
                    cur.copy_expert(f"copy raw.{stream} to stdout with (format csv)", out)
                cur.execute(f"drop table if exists bench_copy.{stream}")
                cur.execute(f"create table bench_copy.{stream} (like raw.{stream})")
                started = time.monotonic()
                with path.open() as source:
                    cur.copy_expert(f"copy bench_copy.{stream} from stdin with (format csv)", source)
                total += time.monotonic() - started
                rows += cur.rowcount
            cur.execute("drop schema bench_copy cascade")
    finally:
        conn.close()
    return total, rows


def connector_read(env: dict[str, str]) -> tuple[float, int]:
    """source-s3's own read of every export file of the stack's S3 (no destination; the catalog the
    sync sends, no state): seconds, records."""
    code = (
        "import json, sys, time; sys.path.insert(0, 'benchmarks');"
        "from benchmarks.shop_exports import read_all_exports;"
        "seconds, records = read_all_exports(); print(json.dumps([seconds, records]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"connector read failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    seconds, records = json.loads(proc.stdout.strip().splitlines()[-1])
    return seconds, records


def bench_size(size: int, work_dir: Path, keep: bool, dag_only: bool = False, daily_share: float | None = None) -> dict:
    root = work_dir / str(size)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    # the day's new and changed share: the declaration's (2% + 2%) unless --daily-share
    share = {} if daily_share is None else {"SHOP_DAILY_NEW": str(daily_share), "SHOP_DAILY_CHANGED": str(daily_share)}
    env = stack_env(root, SHOP_CUSTOMERS=str(size), SHOP_ORDERS=str(size), **share)
    say(
        f"{size:,} customers and orders: stack in {root}"
        + (f" (a day: {daily_share:.2%} new, {daily_share:.2%} changed)" if share else "")
    )
    cli(env, "setup-runtime")  # .env secrets of this stack (the venvs are shared and up to date)
    cli(env, "services", "start")
    figures: dict = {"size": size, "daily_share": daily_share}
    try:
        with AirflowUp(env, root / "up.log") as up:
            figures["idle_rss"] = up.idle_rss()
            say(f"idle: Airflow's process tree holds {figures['idle_rss'] / MB:.0f} MB")
            for name, date in (("day0", DAY0), ("day1", DAY1)):
                say(f"{name}: run of {date} under the scheduler")
                figures[name] = run_figures(up, date)
                f = figures[name]
                say(f"{name}: {f['wall']:.0f} s, {f['records']:,} records ingested in {f['ingest']:.0f} s, "
                    f"dbt part {f['dbt']:.0f} s, largest process {f['peak_rss'] / MB:.0f} MB ({f['peak_process']})")  # fmt: skip
        if dag_only:
            figures["disk_bytes"] = disk_used(root)
            say(f"disk used by the stack (Postgres, S3, logs): {figures['disk_bytes'] / MB:,.0f} MB")
            return figures
        say("one plain dbt build --full-refresh, then one plain dbt build, on the same data")
        dbt_work = root / "dbt-builds"
        dbt_command(env, dbt_work, "parse")  # not timed: every timed build finds the parse done
        figures["dbt_build_full"] = dbt_command(env, dbt_work, "build", "--full-refresh")
        figures["dbt_build"] = dbt_command(env, dbt_work, "build")
        say(f"{DAY2}'s increment exported and synced without Airflow, then one plain dbt build of it")
        figures["increment_records"] = ingest_increment(env, DAY2)
        figures["dbt_build_increment"] = dbt_command(env, dbt_work, "build")
        figures["disk_bytes"] = disk_used(root)
        say(f"disk used by the stack (Postgres, S3, logs): {figures['disk_bytes'] / MB:,.0f} MB")
        say("source-s3's own read of every export file (the sync's catalog, no state, no destination)")
        figures["read_seconds"], figures["read_records"] = connector_read(env)
        say("the embedded sync of the same files, alone (into a schema of its own, no state yet)")
        figures["alone_seconds"], figures["alone_records"], figures["alone_load"] = sync_alone(env)
        say("COPY of the raw rows into fresh tables")
        figures["copy_seconds"], figures["copy_rows"] = copy_seconds(env)
    finally:
        subprocess.run([sys.executable, "-m", "include.pipeline.cli", "services", "stop"], cwd=ROOT, env=env,
                       capture_output=True)  # fmt: skip
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return figures


def disk_used(root: Path) -> int:
    """Bytes of the files under `root` (the stack's Postgres and S3 data, logs)."""
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())


def rate(records: float, seconds: float) -> str:
    return f"{records / seconds:,.0f}/s" if seconds else "-"


def print_report(results: list[dict]) -> None:
    import psutil

    print()
    print(f"Machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"{platform.system()} {platform.machine()}, Python {platform.python_version()}")  # fmt: skip
    header = ("size", "run", "stage", "wall s", "records", "records/s", "peak RSS MB")
    rows = []
    for r in results:
        size = f"{r['size']:,}" + (f" (day {r['daily_share']:.1%})" if r.get("daily_share") is not None else "")
        for name, label in (("day0", "initial full load"), ("day1", "daily increment")):
            f = r[name]
            rows += [
                (size, label, "shop_export (simulated shop)", f"{f['export']:.0f}", "", "", ""),
                (size, label, "ingest (embedded sync)", f"{f['ingest']:.0f}", f"{f['records']:,}",
                 rate(f["records"], f["sync_seconds"] or f["ingest"]), ""),
                *([(size, label, "  of which loading after the read", f"{f['load_seconds']:.1f}", f"{f['records']:,}",
                     rate(f["records"], f["load_seconds"]), "")] if f.get("load_seconds") else []),
                (size, label, "dbt part (Cosmos)", f"{f['dbt']:.0f}", "", "", ""),
                (size, label, "whole DAG under the scheduler", f"{f['wall']:.0f}", "", "",
                 f"{f['peak_rss'] / MB:.0f}"),
            ]  # fmt: skip
        if "dbt_build_full" in r:  # not in a --dag-only run
            rows += [
                (size, "same data", "one dbt build --full-refresh", f"{r['dbt_build_full']:.0f}", "", "", ""),
                (size, "same data", "one dbt build (nothing new)", f"{r['dbt_build']:.0f}", "", "", ""),
                *([(size, "next day", "one dbt build of its increment", f"{r['dbt_build_increment']:.0f}",
                    f"{r['increment_records']:,}", "", "")] if "dbt_build_increment" in r else []),
                (size, "same data", "source-s3 own read, all files", f"{r['read_seconds']:.0f}", f"{r['read_records']:,}",
                 rate(r["read_records"], r["read_seconds"]), ""),
                *([(size, "same data", "embedded sync alone, all files", f"{r['alone_seconds']:.0f}",
                    f"{r['alone_records']:,}", rate(r["alone_records"], r["alone_seconds"]), "")] if "alone_seconds" in r else []),
                (size, "same data", "COPY of the raw rows", f"{r['copy_seconds']:.1f}", f"{r['copy_rows']:,}",
                 rate(r["copy_rows"], r["copy_seconds"]), ""),
            ]  # fmt: skip
        rows += [
            (size, "idle", "Airflow (make up), whole tree", "", "", "", f"{r['idle_rss'] / MB:.0f}"),
            *([(size, "after", "disk used by the stack, MB", f"{r['disk_bytes'] / MB:,.0f}", "", "", "")]
              if "disk_bytes" in r else []),
        ]  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for i, row in enumerate([header, *rows]):
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))

    print("\nRatios")
    for r in results:
        d0, d1 = r["day0"], r["day1"]
        if "dbt_build_full" in r:  # not in a --dag-only run
            sync_rate = d0["records"] / (d0["sync_seconds"] or d0["ingest"])
            read_rate = r["read_records"] / r["read_seconds"]
            alone = (f"; alone, same files: {read_rate / (r['alone_records'] / r['alone_seconds']):.2f}x"
                     if "alone_seconds" in r else "")  # fmt: skip
            print(f"  {r['size']:>9,}: embedded sync / connector's own read (time per record) "
                  f"{read_rate / sync_rate:.2f}x in the DAG (one read feeding the lake too){alone}; "
                  f"COPY is {r['copy_rows'] / r['copy_seconds'] / sync_rate:.0f}x faster than the sync")  # fmt: skip
            fair = (f", {d1['dbt'] / r['dbt_build_increment']:.2f}x vs one dbt build of the next day's increment"
                    if "dbt_build_increment" in r else "")  # fmt: skip
            print(f"  {'':>9}  dbt part / one dbt build: day 0 {d0['dbt'] / r['dbt_build_full']:.2f}x "
                  f"(vs --full-refresh), day 1 {d1['dbt'] / r['dbt_build']:.2f}x (vs nothing new){fair}")  # fmt: skip
            if "dbt_build_increment" in r:  # issue 27's target: at most 0.25x
                print(f"  {'':>9}  a day's dbt build / a full rebuild (dbt build --full-refresh): "
                      f"{r['dbt_build_increment'] / r['dbt_build_full']:.2f}x")  # fmt: skip
        else:
            print(f"  {r['size']:>9,}: (--dag-only: no plain dbt builds, no ingest-alone rows)")
        print(f"  {'':>9}  day 1 / day 0 whole DAG: {d1['wall'] / d0['wall']:.2f}x; largest process "
              f"{max(d0['peak_rss'], d1['peak_rss']) / MB:.0f} MB ({d0['peak_process']})")  # fmt: skip
    if len(results) > 1:
        small, big = results[0], results[-1]
        factor = big["size"] / small["size"]
        print(f"  {big['size']:,} vs {small['size']:,} ({factor:.0f}x the data): whole DAG day 0 "
              f"{big['day0']['wall'] / small['day0']['wall']:.1f}x, day 1 {big['day1']['wall'] / small['day1']['wall']:.1f}x, "
              f"dbt part day 0 {big['day0']['dbt'] / small['day0']['dbt']:.1f}x")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".local" / "bench")
    parser.add_argument("--keep", action="store_true", help="keep each stack's folder (data, logs)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--dag-only", action="store_true",
                        help="only the two runs under the scheduler and the disk (no plain dbt builds, no ingest-alone rows)")  # fmt: skip
    parser.add_argument("--daily-share", type=float, metavar="S",
                        help="each day's new and also changed customers and orders, as a share of day 0's "
                             "(default: connections.yaml's, 0.02; 0.002 at 10M: the 1M shop's day on 10x the history)")  # fmt: skip
    parser.add_argument("--report", type=Path, nargs="+", metavar="JSON",
                        help="run nothing: print the table of earlier runs' --json files (sizes run separately)")  # fmt: skip
    args = parser.parse_args()
    if args.report:
        results = sorted((r for path in args.report for r in json.loads(path.read_text())), key=lambda r: r["size"])
        print_report(results)
        return 0
    started = time.monotonic()
    results = []
    for size in args.sizes:
        results.append(bench_size(size, args.work_dir, args.keep, args.dag_only, args.daily_share))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    print_report(results)
    print(f"\n  benchmark wall time: {(time.monotonic() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
