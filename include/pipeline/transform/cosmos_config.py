"""Cosmos configuration shared by every DAG that runs the dbt project.

The DAG is rendered from the manifest that `dbt parse` writes during `make setup` (no `dbt ls`
while Airflow parses files). The dbt profile is built from the Airflow connection `warehouse`
through Cosmos's Postgres profile mapping, so credentials live in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

from include.pipeline import settings

DBT_PROJECT_DIR = settings.DBT_PROJECT_DIR
DBT_MANIFEST = Path(os.environ.get("DBT_MANIFEST_PATH", DBT_PROJECT_DIR / "target" / "manifest.json"))
DBT_EXECUTABLE = Path(os.environ.get("DBT_EXECUTABLE", settings.REPO_ROOT / ".venv" / "bin" / "dbt"))
WAREHOUSE_CONN_ID = os.environ.get("WAREHOUSE_CONN_ID", "warehouse")
DBT_TARGET_SCHEMA = os.environ.get("DBT_TARGET_SCHEMA", "analytics")


def project_config() -> ProjectConfig:
    if not DBT_MANIFEST.exists():
        raise FileNotFoundError(
            f"dbt manifest {DBT_MANIFEST} is missing: run `make setup` (it runs `dbt parse`), or set DBT_MANIFEST_PATH"
        )
    return ProjectConfig(
        dbt_project_path=DBT_PROJECT_DIR,
        manifest_path=DBT_MANIFEST,
        project_name="ecommerce",
        install_dbt_deps=False,  # no dbt hub packages: the hub is unreachable from these machines
        env_vars={"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )


profile_config = ProfileConfig(
    profile_name="ecommerce",
    target_name="airflow",
    profile_mapping=PostgresUserPasswordProfileMapping(
        conn_id=WAREHOUSE_CONN_ID,
        profile_args={"schema": DBT_TARGET_SCHEMA, "threads": 2},
    ),
)

execution_config = ExecutionConfig(
    execution_mode=ExecutionMode.LOCAL,
    invocation_mode=InvocationMode.DBT_RUNNER,
    dbt_executable_path=DBT_EXECUTABLE,
)

render_config = RenderConfig(
    load_method=LoadMode.DBT_MANIFEST,
    test_behavior=TestBehavior.AFTER_EACH,
    enable_mock_profile=True,
)


def docs_task(task_id: str = "dbt_docs"):
    """`dbt docs generate` after the transform; the site is kept in .local/artifacts/<run_id>/dbt_docs."""
    from cosmos.operators.local import DbtDocsLocalOperator

    from include.pipeline.transform.docs import keep_docs

    return DbtDocsLocalOperator(
        task_id=task_id,
        project_dir=str(DBT_PROJECT_DIR),
        profile_config=profile_config,
        invocation_mode=InvocationMode.DBT_RUNNER,
        dbt_executable_path=str(DBT_EXECUTABLE),
        install_deps=False,
        callback=keep_docs,
        env={"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        append_env=True,
    )
