"""Does every dbt model stay linear in the shop's size? `dbt build` on synthetic shops of given sizes.

    .venv/bin/python benchmarks/dbt_scale.py --customers 100000 1000000 [--days 1] [--share 0.01]
        [--project-dir include/dbt] [--no-raw-index] [--timeout 3600]

For each size: a fresh database on a throw-away embedded Postgres, `fill_shop` (the raw tables in
the Destinations-V2 shape, benchmarks/synthetic_shop.py), one `dbt build` (the initial load),
then for each of --days days `add_day` (about --share of the shop new or changed) and another
`dbt build` (the daily run), and last a `dbt build --full-refresh` of the same data (the day's
build / full rebuild ratio, issue 27's target: at most 0.25x). Prints, per model and snapshot: rows in the relation, wall time of
the initial build and time per row, the daily run's time, the daily/initial ratio and the rows
the daily run wrote (dbt's rows_affected: merged, inserted or snapshotted); then the
tests' summed time and each build's wall time. Per-model times are dbt's own (run_results.json).
--project-dir measures another copy of the project (e.g. the old staging SQL, for a before/after);
--no-raw-index leaves out the index on raw's `_airbyte_extracted_at` the runtime creates; --threads
sets dbt's threads (default: the profile's, 2, as the DAG).
Every build is the DAG's: `--exclude-resource-type unit_test` (--unit-tests runs them too).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic_shop import add_day, fill_shop  # noqa: E402
from include.pipeline import identifiers  # noqa: E402
from include.pipeline.services.postgres import EmbeddedPostgres  # noqa: E402

DBT = Path(sys.executable).with_name("dbt")
# Every build here is the one the DAG runs: without dbt's unit tests (fixed rows, not the day's
# data: include/pipeline/transform/cosmos_config.py); --unit-tests puts them back.
DAG_BUILD = ("--exclude-resource-type", "unit_test")


def run_dbt(
    args: list[str], project: Path, work: Path, env: dict, timeout: float, logs: str = "logs"
) -> tuple[float, dict]:
    """Run dbt, its log (dbt.log: every statement and its seconds) in `work`/`logs`; return
    (wall seconds, run_results.json). Raises when dbt fails."""
    cmd = [
        str(DBT), *args, "--project-dir", str(project), "--profiles-dir", str(project),
        "--target-path", str(work / "target"), "--log-path", str(work / logs),
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-5000:]}")
    return wall, json.loads((work / "target" / "run_results.json").read_text())


def relations(results: dict) -> dict[str, dict]:
    """{node name: {seconds, relation}} of the models and snapshots in `results`."""
    out = {}
    for r in results["results"]:
        kind, _, name = r["unique_id"].split(".", 2)
        if kind in ("model", "snapshot"):
            affected = (r.get("adapter_response") or {}).get("rows_affected")
            out[name] = {
                "seconds": r["execution_time"], "relation": r.get("relation_name"), "kind": kind, "rows": affected,
            }  # fmt: skip
    return out


def tests_seconds(results: dict) -> float:
    return sum(r["execution_time"] for r in results["results"] if r["unique_id"].startswith(("test.", "unit_test.")))


def top_nodes(results: dict, n: int) -> list[tuple[str, float]]:
    """The `n` nodes (models, snapshots, tests) of `results` that took longest, with their seconds."""
    timed = [(r["unique_id"].split(".", 2)[2], r["execution_time"]) for r in results["results"]]
    return sorted(timed, key=lambda item: -item[1])[:n]


_LINE = re.compile(r"^\S*\s*\d\d:\d\d:\d\d\.\d+ \[\w+ *\] \[([^\]]*)\]: (.*)$")
_STATUS = re.compile(r"SQL status: (.*) in (\d+\.\d+) seconds")


def slow_statements(log: Path, n: int) -> list[tuple[float, str, str]]:
    """The `n` slowest SQL statements of a dbt.log: (seconds, node, the statement's start)."""
    found, node, statement = [], {}, {}
    thread = None
    for line in log.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if not match:
            if thread is not None and not statement.get(thread, "").strip():
                statement[thread] = line.strip()  # the statement's first line after dbt's comment
            continue
        thread, text = match.groups()
        if text.startswith("On ") and ": " in text:
            who, _, rest = text[3:].partition(": ")
            node[thread] = who
            statement[thread] = re.sub(r"^/\*.*?\*/\s*", "", rest)
        elif status := _STATUS.search(text):
            found.append((float(status.group(2)), node.get(thread, "?"), statement.get(thread, "")[:90]))
        else:
            thread = None
    return sorted(found, key=lambda item: -item[0])[:n]


def count_rows(conn, relation: str | None) -> int | None:
    if not relation:
        return None
    with conn.cursor() as cur:
        cur.execute(identifiers.count_rows(relation))  # dbt's quoted "db"."schema"."name"
        return cur.fetchone()[0]


def measure(server: EmbeddedPostgres, customers: int, args: argparse.Namespace) -> None:
    import psycopg2

    database = f"shop_{customers}"
    admin = server.connect()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'drop database if exists "{database}"')
        cur.execute(f'create database "{database}"')
    admin.close()
    conn = psycopg2.connect(
        host="127.0.0.1", port=server.port, user=server.superuser, password=server.password, dbname=database
    )
    conn.autocommit = True  # no open transaction may hold a lock while dbt swaps tables
    env = {
        **os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "WAREHOUSE_HOST": "127.0.0.1", "WAREHOUSE_PORT": str(server.port), "WAREHOUSE_USER": server.superuser,
        "WAREHOUSE_PASSWORD": server.password, "WAREHOUSE_DB": database,
    }  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix=f"dbt-scale-{customers}-"))
    project = Path(args.project_dir).resolve()
    build_flags = (() if args.unit_tests else DAG_BUILD) + ((f"--threads={args.threads}",) if args.threads else ())

    started = time.monotonic()
    size = fill_shop(conn, customers, args.purchases, extracted_at_index=args.raw_index)
    print(
        f"\n== {customers:,} customers, {size.purchases:,} purchases (raw filled in {time.monotonic() - started:.1f} s)"
    )
    wall0, initial = run_dbt(["build", *build_flags], project, work, env, args.timeout)
    nodes0 = relations(initial)
    rows = {name: count_rows(conn, n["relation"]) for name, n in nodes0.items()}
    daily: list[tuple[dict, float, dict, dict]] = []
    for day in range(1, args.days + 1):
        appended = add_day(conn, size, day, share=args.share)
        wall, results = run_dbt(["build", *build_flags], project, work, env, args.timeout, logs=f"logs-day{day}")
        (work / f"run_results_day{day}.json").write_text(json.dumps(results))
        daily.append((appended, wall, relations(results), results))
    # the same project rebuilt from scratch on the same data: what the day's build is measured against
    wall_full, full = run_dbt(
        ["build", "--full-refresh", *build_flags], project, work, env, args.timeout, logs="logs-full"
    )

    header = f"{'node':34} {'rows':>10} {'initial s':>10} {'us/row':>8}"
    for day in range(1, args.days + 1):
        header += f" {f'day {day} s':>9} {'day/init':>8} {'written':>8}"
    print(header)
    for name, node in nodes0.items():
        n = rows[name] or 0
        line = f"{name:34} {n:>10,} {node['seconds']:>10.2f} {1e6 * node['seconds'] / max(n, 1):>8.1f}"
        for _, _, nodes, _ in daily:
            s = nodes.get(name, {}).get("seconds", float("nan"))
            written = nodes.get(name, {}).get("rows")
            line += f" {s:>9.2f} {s / max(node['seconds'], 1e-9):>8.2f} {written if written is not None else '':>8}"
        print(line)
    line = f"{'(tests, summed)':34} {'':>10} {tests_seconds(initial):>10.2f} {'':>8}"
    for *_, results in daily:
        line += f" {tests_seconds(results):>9.2f} {'':>8} {'':>8}"
    print(line)
    line = f"{'dbt build, wall':34} {'':>10} {wall0:>10.2f} {'':>8}"
    for _, wall, _, _ in daily:
        line += f" {wall:>9.2f} {wall / wall0:>8.2f} {'':>8}"
    print(line)
    print(f"{'dbt build --full-refresh, wall':34} {'':>10} {wall_full:>10.2f} (tests {tests_seconds(full):.2f} s)")
    for day, (appended, wall, _, results) in enumerate(daily, start=1):
        print(f"day {day} appended to raw: {appended}; day's build / full rebuild: {wall / wall_full:.2f}x")
        print(f"day {day}'s {args.top} costliest nodes (dbt's execution_time; {work}/run_results_day{day}.json):")
        for name, seconds in top_nodes(results, args.top):
            print(f"  {seconds:8.2f} s  {name}")
        print(f"day {day}'s {args.top} slowest statements ({work}/logs-day{day}/dbt.log):")
        for seconds, node, statement in slow_statements(work / f"logs-day{day}" / "dbt.log", args.top):
            print(f"  {seconds:8.2f} s  {node}: {statement}")
    print(f"full rebuild's {args.top} costliest nodes:")
    for name, seconds in top_nodes(full, args.top):
        print(f"  {seconds:8.2f} s  {name}")
    with conn.cursor() as cur:
        cur.execute("select pg_size_pretty(pg_database_size(current_database()))")
        print(f"database size after the runs: {cur.fetchone()[0]}")
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--purchases", type=int, default=None, help="purchases per shop (default: = customers)")
    parser.add_argument("--days", type=int, default=1, help="daily runs after the initial build")
    parser.add_argument("--share", type=float, default=0.01, help="share of the shop new or changed per day")
    parser.add_argument("--project-dir", default=str(ROOT / "include" / "dbt"))
    parser.add_argument(
        "--no-raw-index", dest="raw_index", action="store_false", help="raw tables without the runtime's index"
    )
    parser.add_argument("--unit-tests", action="store_true", help="run dbt's unit tests too (the DAG does not)")
    parser.add_argument("--top", type=int, default=5, help="costliest nodes listed per build")
    parser.add_argument(
        "--threads", type=int, default=None, help="dbt's threads (default: the profile's 2, as the DAG)"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per dbt build")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="dbt-scale-pg-"))
    server = EmbeddedPostgres(data, password=secrets.token_urlsafe(16))
    try:
        server.start()
        print(f"machine: {os.cpu_count()} cores; project: {args.project_dir}")
        for customers in args.customers:
            measure(server, customers, args)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)  # the shop's Postgres: ~3 GB at 1.1M customers, ~10x at 10M
    return 0


if __name__ == "__main__":
    sys.exit(main())
