"""Run the dbt project against a test database, with its own target path (the project's
include/dbt/target holds the manifest Cosmos renders the DAG from: never written by tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.pipeline import settings
from include.pipeline.endpoints import Warehouse

DBT = Path(sys.executable).with_name("dbt")


class Dbt:
    """`dbt ARGS` on the project (or another project dir) against `warehouse`, writing under `work`."""

    def __init__(self, warehouse: Warehouse | None, work: Path, project_dir: Path = settings.DBT_PROJECT_DIR):
        self.warehouse = warehouse
        self.work = work
        self.project_dir = project_dir

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        if self.warehouse:
            wh = self.warehouse
            env.update(
                WAREHOUSE_HOST=wh.host, WAREHOUSE_PORT=str(wh.port), WAREHOUSE_USER=wh.user,
                WAREHOUSE_PASSWORD=wh.password, WAREHOUSE_DB=wh.database,
            )  # fmt: skip
        cmd = [
            str(DBT), *args, "--project-dir", str(self.project_dir), "--profiles-dir", str(self.project_dir),
            "--target-path", str(self.work / "target"), "--log-path", str(self.work / "logs"),
        ]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"dbt {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-8000:]}")
        return proc

    def run_results(self) -> dict:
        return json.loads((self.work / "target" / "run_results.json").read_text())

    def manifest(self) -> dict:
        return json.loads((self.work / "target" / "manifest.json").read_text())


@pytest.fixture(scope="session")
def manifest(tmp_path_factory) -> dict:
    """The project's manifest from a fresh `dbt parse` (no database needed)."""
    dbt = Dbt(None, tmp_path_factory.mktemp("dbt-parse"))
    dbt("parse", "--quiet")
    return dbt.manifest()
