"""A whole local stack in a temporary folder (its own .env, Postgres, S3, Airflow home), the
session's shared one after a `demo` run, and private copies of it for tests that change it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from include.pipeline.endpoints import Warehouse
from tests.support import E2E_DATE, REPO_ROOT
from tests.support.postgres import query


class Stack:
    """A whole local stack in a temporary folder: its own .env, Postgres, Airflow home."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_"))}
        self.env.update(
            STACK_LOCAL_DIR=str(root / ".local"),
            STACK_ENV_FILE=str(root / ".env"),
            WAREHOUSE_PASSWORD=secrets.token_urlsafe(16),
            AIRFLOW_ADMIN_PASSWORD=secrets.token_urlsafe(16),
            DO_NOT_TRACK="1",
        )

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run `python -m include.pipeline.cli ARGS` as `make` would, output captured."""
        proc = subprocess.run(
            [sys.executable, "-m", "include.pipeline.cli", *args],
            cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(
                f"cli {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
            )
        return proc

    @staticmethod
    def demo_log(proc) -> str:
        """Airflow's output of a `demo` command: the file whose path the command printed."""
        import re

        found = re.search(r"(/\S+/demo-[^/\s]+\.log)", proc.stdout)
        assert found, f"the demo names its log file:\n{proc.stdout[-3000:]}"
        return Path(found.group(1)).read_text()

    def warehouse(self) -> Warehouse:
        port = json.loads((self.root / ".local" / "services.json").read_text())["postgres"]["port"]
        return Warehouse("127.0.0.1", port, "postgres", self.env["WAREHOUSE_PASSWORD"], "warehouse")

    def sql(self, statement: str, params=None):
        return query(self.warehouse(), statement, params)

    def clone(self, root: Path) -> Stack:
        """A copy of this stack's whole state under `root` (warehouse, lake, Airflow's metadata DB,
        logs, .env and passwords), served by its own Postgres and S3 on new ports.

        Far cheaper than a new `demo` run, and it lets a test change a stack (rerun, full refresh,
        settings, a hung metrics DB) without the other tests' results depending on the order.
        The services are stopped for the copy: a running Postgres's files are not a consistent copy.
        """
        self.cli("services", "stop")
        try:
            shutil.copytree(self.root, root, symlinks=True, ignore=_sockets)
        finally:
            self.cli("services", "start")
        copy = Stack(root)
        copy.env = {**self.env, "STACK_LOCAL_DIR": str(root / ".local"), "STACK_ENV_FILE": str(root / ".env")}
        copy.first_run = getattr(self, "first_run", None)
        local = root / ".local"
        # The copy gets free ports (the originals are taken), and Airflow's own files name the
        # original folder (airflow.cfg's log folder): point them at the copy.
        state = local / "services.json"
        state.write_text(
            json.dumps({k: v for k, v in json.loads(state.read_text()).items() if k not in ("postgres", "s3")})
        )
        for path in [*local.glob("*.json"), *(local / "airflow").glob("*.cfg"), *(local / "airflow").glob("*.json")]:
            text = path.read_text()
            if str(self.root) in text:
                path.write_text(text.replace(str(self.root), str(root)))
        copy.cli("services", "start")
        copy.cli("settings")  # Airflow's connections to the copy's warehouse port
        return copy


def _sockets(folder: str, names: list[str]) -> list[str]:
    """The Unix sockets in `folder` (weed's s3.sock): not files, and the copy's server makes its own."""
    return [n for n in names if stat.S_ISSOCK(os.lstat(os.path.join(folder, n)).st_mode)]


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    """A stack after one `demo` run of the daily DAG for E2E_DATE, shared by the e2e tests that
    only read it. A test that changes a stack takes `own_stack` instead."""
    stack = Stack(tmp_path_factory.mktemp("stack"))
    stack.first_run = stack.cli("demo", "--date", E2E_DATE)
    yield stack
    stack.cli("services", "stop", check=False)


@pytest.fixture
def own_stack(stack: Stack, tmp_path_factory) -> Stack:
    """A private copy of the session stack as its first run left it (`Stack.clone`), stopped after
    the test: what the test does to it no other test sees."""
    copy = stack.clone(tmp_path_factory.mktemp("own-stack") / "stack")
    yield copy
    copy.cli("services", "stop", check=False)
