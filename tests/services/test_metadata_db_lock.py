"""Airflow's SQLite metadata database: a writer waits for another's lock instead of failing after
Python's default 5 s (include/pipeline/metadata_db.py: a backfill created beside a busy scheduler
once failed with "database is locked", and the scheduler then exited)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading

from include.pipeline.environments import airflow_env
from tests.support import REPO_ROOT

HOLD = 7.0  # seconds the other writer keeps the lock: past sqlite3's default wait of 5

WRITE = """
import time
from sqlalchemy import text
from airflow import settings
import sys
settings.configure_orm()
print("ready", flush=True)  # Airflow imported: the test takes the lock, then says go
sys.stdin.readline()
started = time.monotonic()
with settings.engine.begin() as conn:
    conn.execute(text("insert into probe values (1)"))
print(round(time.monotonic() - started, 1))
"""


def test_an_airflow_write_waits_for_the_lock_of_another_writer(tmp_path):
    db = tmp_path / "airflow.db"
    env = {**os.environ, **airflow_env(), "AIRFLOW_HOME": str(tmp_path)}
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{db}"
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", None)
    env.update({k: v for k, v in airflow_env().items() if k == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"})
    assert env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"), "airflow_env sets the connect arguments"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("pragma journal_mode=wal")  # as Airflow's first connection leaves the file
    holder.execute("create table probe (x integer)")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITE], env=env, cwd=REPO_ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
    holder.execute("begin immediate")  # the write lock, as a scheduler's transaction holds it
    release = threading.Timer(HOLD, lambda: holder.execute("commit"))
    release.start()
    try:
        out, err = proc.communicate("go\n", timeout=120)
    finally:
        release.join()
    assert proc.returncode == 0, f"the write failed while another held the lock:\n{err[-2000:]}"
    assert float(out.split()[-1]) >= HOLD - 1, f"the write waited {out.split()[-1]} s for a {HOLD} s lock"
    assert sqlite3.connect(db).execute("select count(*) from probe").fetchone() == (1,)


def test_a_postgres_metadata_database_gets_no_sqlite_arguments(monkeypatch):
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://u@127.0.0.1/airflow")
    monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", raising=False)
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS" not in airflow_env()
