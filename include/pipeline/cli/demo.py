"""`demo`: services, Airflow's DB and settings, then the daily DAG for N days, one line per task.

Airflow's own output (thousands of lines: every task's log, since `dags test` runs the tasks
in-process) goes to a file whose path is printed first; the terminal shows one progress line per
task as it finishes (task, state, seconds), read from Airflow's metadata DB, then the summary
of each day (report.py) and, over several days, the marts growing (summary.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

from include.pipeline import environments, settings
from include.pipeline.cli._common import PY, run, say
from include.pipeline.services.airflow_init import migrate_and_load_settings
from include.pipeline.services.stack import start_services

DAG_ID = settings.DAG_ID
# The demo's default last day: a week into the shop's life (it starts on the DAG's start_date,
# 2026-01-01, and grows by 20 customers a day), so `make demo` is quick and prints the same
# figures every time. Any later date works too: DATE=2026-11-20 is a shop of 7,460 customers.
DEMO_DATE = "2026-01-07"
# A task instance in one of these states will not run again in this try: its line is printed.
DONE_STATES = ("success", "failed", "skipped", "upstream_failed", "removed", "up_for_retry")


class TaskProgress:
    """Finished task instances of the run that `airflow dags test` makes of `day`, read from
    Airflow's metadata DB.

    That run is the one of the logical date `day` that started at or after this object was made
    (dag_test.py gives a run its real start time). Not "a run with a higher id": `dags test`
    deletes the run of a logical date it has seen before and creates it again, and SQLite gives
    the new row the id the deleted one had, so a rerun of a date would print no task line.
    """

    def __init__(self, database_url: str, dag_id: str, day: str, started_after: dt.datetime | None = None):
        from sqlalchemy import create_engine

        self.engine = create_engine(database_url)
        self.dag_id = dag_id
        self.day = dt.date.fromisoformat(day[:10])
        self.started_after = started_after or dt.datetime.now(dt.UTC)
        self.run_id: str | None = None
        self.seen: set[tuple] = set()

    def _run_of_this_command(self, conn) -> str | None:
        """run_id of the run of `day` that started since this object was made; None while there is none."""
        from sqlalchemy import text

        runs = conn.execute(
            text("select run_id, logical_date, start_date from dag_run where dag_id = :d"), {"d": self.dag_id}
        ).all()
        ours = [
            (as_utc(start), run_id)
            for run_id, logical, start in runs
            if logical is not None and start is not None
            and as_utc(logical).date() == self.day and as_utc(start) >= self.started_after
        ]  # fmt: skip
        return max(ours)[1] if ours else None

    def new_lines(self) -> list[str]:
        """One line per task instance that finished since the last call (SQLite busy: none yet)."""
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        try:
            with self.engine.connect() as conn:
                if self.run_id is None:
                    self.run_id = self._run_of_this_command(conn)
                    if self.run_id is None:
                        return []
                rows = conn.execute(
                    text(
                        "select task_id, map_index, try_number, state, duration from task_instance "
                        "where dag_id = :d and run_id = :r order by end_date, task_id"
                    ),
                    {"d": self.dag_id, "r": self.run_id},
                ).all()
        except OperationalError:  # the run holds SQLite's write lock for a moment: next poll
            return []
        lines = []
        total = len(rows)
        for task_id, map_index, try_number, state, duration in rows:
            key = (task_id, map_index, try_number, state)
            if state not in DONE_STATES or key in self.seen:
                continue
            self.seen.add(key)
            name = task_id if map_index in (None, -1) else f"{task_id}[{map_index}]"
            done = len({k[:2] for k in self.seen if k[3] != "up_for_retry"})
            seconds = "" if duration is None else f"{duration:7.1f} s"
            retry = f" (try {try_number})" if try_number and try_number > 1 else ""
            lines.append(f"  [{done:>3}/{total}] {name:<60} {state:<16}{seconds}{retry}")
        return lines

    def close(self) -> None:
        self.engine.dispose()


def as_utc(value: dt.datetime | str) -> dt.datetime:
    """A metadata DB timestamp as an aware UTC datetime (SQLite returns naive UTC text to a raw query)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def run_day(day: str, conf: list[str], env: dict[str, str], log_path: Path, poll: float = 1.0) -> int:
    """`dags test` of DAG_ID for `day`, its output appended to `log_path`, progress printed."""
    progress = TaskProgress(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], DAG_ID, day)
    try:
        with log_path.open("a") as log:
            log.write(f"\n===== {DAG_ID} {day} {' '.join(conf)} =====\n")
            log.flush()
            proc = subprocess.Popen(
                [PY, "-m", "include.pipeline.cli.dag_test", DAG_ID, day, *conf],
                env=env, cwd=settings.REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                while proc.poll() is None:
                    for line in progress.new_lines():
                        print(line, flush=True)
                    time.sleep(poll)
            except KeyboardInterrupt:
                proc.terminate()
                proc.wait(timeout=60)
                raise
        for line in progress.new_lines():  # what finished between the last poll and the exit
            print(line, flush=True)
        return proc.returncode
    finally:
        progress.close()


def demo_days(date: str, days: int) -> list[str]:
    """The `days` consecutive logical dates ending at `date`, oldest first."""
    end = dt.date.fromisoformat(date)
    return [(end - dt.timedelta(days=n)).isoformat() for n in reversed(range(days))]


def new_log_path() -> Path:
    folder = settings.LOCAL_DIR / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"demo-{dt.datetime.now():%Y%m%dT%H%M%S}.log"


def cmd_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    date = args.date or DEMO_DATE
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        print(f"error: DATE={date!r} is not a date; use YYYY-MM-DD, e.g. make demo DATE=2026-11-21", file=sys.stderr)
        return 2
    if args.days < 1:
        print(f"error: --days {args.days}: give 1 or more (DAYS=3 runs the 3 days ending at DATE)", file=sys.stderr)
        return 2
    start_services()
    migrate_and_load_settings()
    from include.pipeline.cli.summary import mart_rows, print_growth

    days = demo_days(date, args.days)
    params = {name: True for name in ("full_refresh", "reset_ingest") if getattr(args, name, False)}
    conf = ["--conf", json.dumps(params)] if params else []
    how = " and ".join({"full_refresh": "full refresh", "reset_ingest": "ingest reset"}[p] for p in params)
    log_path = new_log_path()
    say(f"Airflow's full log (every task's output): {log_path}")
    env = environments.stack_env()  # no secret: each task reads its stage's from its Airflow connection
    # the report reads raw and the dbt schemas as the transform role, and nothing else
    transform = settings.role_password_key("transform")
    report_env = {**env, transform: settings.setting(transform) or ""}
    growth: dict[str, dict[str, int | None]] = {}
    worst = 0
    for day in days:  # consecutive logical dates, ending at DATE: the shop grows and changes each day
        first = day == days[0]
        started = started if first else time.monotonic()
        # a full refresh or an ingest reset is the first day's only: the days after it run as any day
        say(f"{DAG_ID} for {day}" + (f" ({how})" if how and first else "") + ": one line per task as it finishes")
        dag_started = time.monotonic()
        code = run_day(day, conf if first else [], env, log_path)
        dag_seconds = time.monotonic() - dag_started
        if code:
            say(f"`airflow dags test` exited {code}: the summary below lists what failed; each task's log: {log_path}")
        seconds = [f"{dag_seconds:.1f}", f"{time.monotonic() - started:.1f}"]
        report = run([PY, "-m", "include.pipeline.cli.report", DAG_ID, day, *seconds], env=report_env, check=False)
        worst = worst or code or report.returncode
        if len(days) > 1:
            growth[day] = mart_rows()
    if len(days) > 1:
        print_growth(growth)
    say(f"full log: {log_path}")
    return worst
