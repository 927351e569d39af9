"""The embedded warehouse Postgres: the pgserver wheel's binaries, run by us, on 127.0.0.1.

pgserver's own Python API stops the server when the calling process exits; the stack needs a
server that outlives `make services`, so we drive initdb / pg_ctl directly. TCP on 127.0.0.1 is
required (Cosmos asset URIs reject a socket path as host), so Unix sockets are switched off.
Postgres refuses to run as root: as root, the binaries run as the system user `pgserver`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from include.pipeline import sizing
from include.pipeline.services import ServiceError, find_free_port, port_owner

SYSTEM_USER = "pgserver"


def _bin_dir() -> Path:
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


@dataclass
class EmbeddedPostgres:
    """One Postgres data directory under `root`, served on 127.0.0.1:`port`."""

    root: Path
    password: str
    port: int | None = None
    superuser: str = "postgres"
    databases: tuple[str, ...] = ("warehouse",)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    # -- process helpers -------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        user = SYSTEM_USER if os.geteuid() == 0 else None
        try:
            return subprocess.run(
                [str(_bin_dir() / args[0]), *args[1:]],
                check=check,
                capture_output=True,
                text=True,
                user=user,
                cwd=self.root,
                timeout=120,
            )
        except subprocess.CalledProcessError as exc:
            raise ServiceError(
                f"postgres: `{args[0]}` failed (exit {exc.returncode}):\n{exc.stderr or exc.stdout}"
                f"\nLog: {self.log_file}"
            ) from None

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        # As root: give the data folder to the unprivileged user and let it reach the binaries.
        import pwd

        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        entry = pwd.getpwnam(SYSTEM_USER)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(_bin_dir())
        ensure_folder_permissions(_bin_dir(), 0o055)
        ensure_folder_permissions(_bin_dir().parent / "lib", 0o044)
        for path in (self.root, *self.root.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def running_pid_and_port(self) -> tuple[int, int] | None:
        """(pid, port) of the server using our data dir, or None. Removes a stale pid file."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            pid, port = -1, -1
        if not (pid > 0 and self._serves_our_data_dir(pid)):
            print(f"postgres: removing stale pid file {pid_file} (pid {pid} is not a postgres serving {self.data_dir})")
            pid_file.unlink()
            return None
        return pid, port

    def _serves_our_data_dir(self, pid: int) -> bool:
        """Is `pid` a postmaster started on OUR data directory (`postgres -D <data_dir>`)?

        The name alone is not enough: after a crash or a reboot the pid in postmaster.pid may
        belong to any process, another Postgres (a second checkout, the test suite's) included.
        """
        try:
            cmdline = psutil.Process(pid).cmdline()
        except psutil.Error:
            return False
        if not cmdline or not Path(cmdline[0]).name.startswith("postgres"):
            return False
        dirs = [cmdline[i + 1] for i, arg in enumerate(cmdline[:-1]) if arg == "-D"]
        dirs += [arg[2:] for arg in cmdline if arg.startswith("-D") and len(arg) > 2]
        ours = self.data_dir.resolve()
        return any((self.root / d).resolve() == ours for d in dirs)  # a relative -D is relative to root (cwd)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> int:
        """Start (or find running) and return the port. Idempotent."""
        self._prepare_dirs()
        running = self.running_pid_and_port()
        if running:
            pid, port = running
            print(f"postgres: already running (pid {pid}) on 127.0.0.1:{port}")
            self.port = port
            self._wait_ready()
            self._ensure_databases()
            return port

        if self.port is None:
            self.port = find_free_port()
        owner = port_owner(self.port)
        if owner is not None:
            raise ServiceError(
                f"postgres: port {self.port} on 127.0.0.1 is already in use ({owner}). "
                "Stop that process, or choose another port: WAREHOUSE_PORT=<free port> make services"
            )

        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        tuning = " ".join(f"-c {key}={value}" for key, value in sizing.warehouse_settings().items())

        self._run(
            "pg_ctl",
            "start",
            "-D", str(self.data_dir),
            "-l", str(self.log_file),
            "-w", "-t", "60",
            "-o", f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' {tuning}",
        )  # fmt: skip
        self._wait_ready()
        self._ensure_databases()
        return self.port

    def _initdb(self) -> None:
        with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False) as pwfile:
            pwfile.write(self.password)
        try:
            if os.geteuid() == 0:
                import pwd

                entry = pwd.getpwnam(SYSTEM_USER)
                os.chown(pwfile.name, entry.pw_uid, entry.pw_gid)
            self._run(
                "initdb",
                "-D", str(self.data_dir),
                "-U", self.superuser,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile.name}",
                "-E", "UTF8",
                "--locale=C",
            )  # fmt: skip
        finally:
            os.unlink(pwfile.name)

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"postgres: not accepting connections on port {self.port}; see {self.log_file}"
                    ) from None
                time.sleep(0.1)

    def connect(self, database: str = "postgres"):
        import psycopg2

        try:
            return psycopg2.connect(
                host="127.0.0.1",
                port=self.port,
                user=self.superuser,
                password=self.password,
                dbname=database,
                connect_timeout=5,
            )
        except psycopg2.OperationalError as exc:
            if "password authentication failed" in str(exc):
                raise ServiceError(
                    f"postgres: the password in .env does not match the one the data directory "
                    f"{self.data_dir} was created with. Restore the old WAREHOUSE_PASSWORD, or remove "
                    f"{self.root} to start from an empty warehouse."
                ) from None
            raise

    def _ensure_databases(self) -> None:
        from psycopg2 import sql

        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for name in self.databases:
                    cur.execute("select 1 from pg_database where datname = %s", (name,))
                    if cur.fetchone() is None:
                        cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        finally:
            conn.close()

    def stop(self) -> bool:
        """Stop the server; False when it was not running."""
        if not self.data_dir.exists() or self.running_pid_and_port() is None:
            return False
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60")
        return True
