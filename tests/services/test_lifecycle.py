"""The embedded services' lifecycle (issue 10): stop then start at once, two starts at once, a
stale pid file. Real Postgres and SeaweedFS, as `make services` / `make stop` run them."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import psycopg2
import pytest

from include.pipeline import sizing
from include.pipeline.endpoints import Warehouse
from include.pipeline.services import port_owner
from include.pipeline.services.postgres import EmbeddedPostgres
from include.pipeline.settings import read_env_file
from tests.support import REPO_ROOT
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def _listeners_of(data_dir: Path) -> list[psutil.Process]:
    """Processes whose command line names `data_dir`: a postmaster (-D) or `weed mini -dir=`."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(arg == str(data_dir) or arg.endswith(f"={data_dir}") for arg in cmdline):
            if Path(cmdline[0]).name in ("postgres", "weed"):
                found.append(proc)
    return found


def _query_until_stopped(conn, errors: list[Exception]) -> None:
    try:
        conn.cursor().execute("select pg_sleep(60)")
    except Exception as exc:  # noqa: BLE001 - collected for the assertion
        errors.append(exc)
    finally:
        conn.close()


def test_stop_then_start_at_once_reuses_the_port_despite_time_wait(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg", password=secrets.token_urlsafe(16))
    port = server.start()
    assert port_owner(port) is not None, "a listening server makes the port taken"
    # Clients busy in a query when the server stops (Airflow's, dbt's) read its goodbye and close
    # cleanly: the server's side of each connection stays in TIME_WAIT on its port for a minute.
    clients = [server.connect() for _ in range(3)]
    errors: list[Exception] = []
    busy = [threading.Thread(target=_query_until_stopped, args=(conn, errors)) for conn in clients]
    for thread in busy:
        thread.start()
    time.sleep(1)
    server.stop()
    for thread in busy:
        thread.join(timeout=30)
    assert len(errors) == 3 and all(isinstance(e, psycopg2.OperationalError) for e in errors), errors
    waiting = [c for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port]
    assert any(c.status == psutil.CONN_TIME_WAIT for c in waiting), waiting  # the case that failed

    assert port_owner(port) is None, "TIME_WAIT is not a process holding the port"
    again = EmbeddedPostgres(tmp_path / "pg", password=server.password, port=port)  # what services.json gives
    try:
        assert again.start() == port
        again.connect().close()
    finally:
        again.stop()


def test_two_concurrent_starts_give_one_server_and_one_password(tmp_path):
    stack = Stack(tmp_path)
    for key in ("WAREHOUSE_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"):  # generated into .env, as on a fresh clone
        stack.env.pop(key)
    cmd = [sys.executable, "-m", "include.pipeline.cli", "services", "start"]
    starts = [
        subprocess.Popen(cmd, cwd=REPO_ROOT, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=300)[0] for p in starts]
        assert [p.returncode for p in starts] == [0, 0], outputs
        env_lines = (tmp_path / ".env").read_text().splitlines()
        assert sum(line.startswith("WAREHOUSE_PASSWORD=") for line in env_lines) == 1, env_lines
        password = read_env_file(tmp_path / ".env")["WAREHOUSE_PASSWORD"]
        postgres = _listeners_of(tmp_path / ".local" / "postgres" / "data")
        weed = _listeners_of(tmp_path / ".local" / "s3" / "data")
        assert len(postgres) == 1 and len(weed) == 1, (postgres, weed, outputs)
        assert sum("already running" in out for out in outputs) >= 1, outputs  # the second found the first's
        stack.env["WAREHOUSE_PASSWORD"] = password
        assert stack.sql("select 1") == [(1,)], "the server was initialised with the password in .env"
    finally:
        stop = stack.cli("services", "stop", check=False)
    assert _listeners_of(tmp_path / ".local" / "postgres" / "data") == [], stop.stdout + stop.stderr


def test_a_stale_pid_file_naming_another_postgres_is_not_taken_for_ours(tmp_path, postgres_server):
    """After a crash or reboot the pid in postmaster.pid can be any process, another Postgres too
    (here: the test session's own server on another data directory)."""
    other_pid, other_port = postgres_server.running_pid_and_port()
    server = EmbeddedPostgres(tmp_path / "pg", password=secrets.token_urlsafe(16))
    server.start()
    server.stop()
    pid_file = server.data_dir / "postmaster.pid"
    pid_file.write_text(f"{other_pid}\n{server.data_dir}\n{int(time.time())}\n{other_port}\n\n127.0.0.1\n")

    assert server.running_pid_and_port() is None
    assert not pid_file.exists(), "the stale pid file is removed"
    try:
        port = server.start()
        pid, _ = server.running_pid_and_port()
        assert pid != other_pid and port != other_port
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("show data_directory")
            assert Path(cur.fetchone()[0]).resolve() == server.data_dir.resolve()
    finally:
        server.stop()
    assert psutil.pid_exists(other_pid), "the other server was left alone"
    Warehouse("127.0.0.1", other_port, "postgres", postgres_server.password, "postgres").connect().close()


def test_the_embedded_warehouse_runs_with_settings_sized_to_the_machine(postgres_server):
    """Postgres's defaults (128 MB of buffers, 4 MB per sort, a checkpoint forced after 1 GB of WAL)
    made a 10M-order day 13% slower (docs/benchmarks.md): each start passes the machine's own."""
    expected = sizing.warehouse_settings()
    conn = postgres_server.connect()
    try:
        with conn.cursor() as cur:
            for name, value in expected.items():
                if name == "checkpoint_timeout":
                    cur.execute("select current_setting(%s)", (name,))
                    assert cur.fetchone()[0] == value
                else:
                    cur.execute("select pg_size_bytes(current_setting(%s)) = pg_size_bytes(%s)", (name, value))
                    assert cur.fetchone()[0], f"{name}: not {value}"
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("ram_mib", "shared_buffers", "work_mem", "maintenance_work_mem", "wal_buffers"),
    [
        (2048, "256MB", "16MB", "128MB", "16MB"),
        (8192, "1024MB", "64MB", "512MB", "64MB"),
        (65536, "2048MB", "64MB", "1024MB", "128MB"),
    ],
)
def test_the_warehouse_settings_follow_the_ram_within_bounds(
    ram_mib, shared_buffers, work_mem, maintenance_work_mem, wal_buffers
):
    got = sizing.warehouse_settings(ram_mib)
    assert (got["shared_buffers"], got["work_mem"], got["maintenance_work_mem"], got["wal_buffers"]) == (
        shared_buffers, work_mem, maintenance_work_mem, wal_buffers,
    )  # fmt: skip
    assert got["effective_cache_size"] == f"{ram_mib // 2}MB"
