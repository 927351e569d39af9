"""Cosmos configuration shared by every DAG that runs the dbt project.

The DAG is rendered from the manifest that `dbt parse` writes during `make setup` (no `dbt ls`
while Airflow parses files). The dbt profile is built from the Airflow connection
`warehouse_transform` (the warehouse's transform role: reads raw, owns staging to snapshots)
through Cosmos's Postgres profile mapping, so credentials live in one place.

Execution mode WATCHER: one `dbt build` runs in a producer task (`transform.dbt_producer_watcher`)
and each model, snapshot and model's tests keep their own Airflow task, a deferrable sensor that
turns green or red when the producer's dbt reports that node. dbt pays its start-up and project
parse once per run instead of once per task (LOCAL mode: ~17 s per task under the scheduler for a
0.2 s view). dbt build itself skips the children of a failed model or test; their sensors fail.
A retried or cleared sensor runs its own node again (`dbt run` / `dbt test --select <model>`).
"""

from __future__ import annotations

import logging

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import PRODUCER_WATCHER_TASK_ID, ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

from include.pipeline import settings

# Paths and names come from settings.py (DBT_PROJECT_DIR, DBT_MANIFEST, DBT_EXECUTABLE,
# DBT_CONN_ID, DBT_TARGET_SCHEMA). dbt connects as the warehouse's transform role: it reads
# raw and owns the schemas it builds.


def project_config() -> ProjectConfig:
    if not settings.DBT_MANIFEST.exists():
        raise FileNotFoundError(
            f"dbt manifest {settings.DBT_MANIFEST} is missing: run `make setup` (it runs `dbt parse`), or set DBT_MANIFEST_PATH"
        )
    return ProjectConfig(
        dbt_project_path=settings.DBT_PROJECT_DIR,
        manifest_path=settings.DBT_MANIFEST,
        project_name="ecommerce",
        install_dbt_deps=False,  # no dbt hub packages: the hub is unreachable from these machines
        env_vars={"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )


profile_config = ProfileConfig(
    profile_name="ecommerce",
    target_name="airflow",
    profile_mapping=PostgresUserPasswordProfileMapping(
        conn_id=settings.DBT_CONN_ID,
        profile_args={"schema": settings.DBT_TARGET_SCHEMA, "threads": 2},
    ),
)

execution_config = ExecutionConfig(
    execution_mode=ExecutionMode.WATCHER,
    invocation_mode=InvocationMode.DBT_RUNNER,
    dbt_executable_path=settings.DBT_EXECUTABLE,
)

# The per-node sensors of watcher mode: poll the producer's XCom every second (Cosmos's default
# of 10 s would add up to 10 s after every node), deferred to the triggerer so a waiting sensor
# holds no worker slot.
SENSOR_ARGS = {"poke_interval": 1, "deferrable": True}

# After each dbt command Cosmos runs openlineage's dbt processor, which logs a WARNING holding the
# whole node (kilobytes) for every test on a snapshot ("Model node connected to test ... not
# found"): four per build here, in the producer's log, telling the reader nothing. Errors still show.
logging.getLogger("openlineage.common.provider.dbt").setLevel(logging.ERROR)

# Cosmos would add an Asset per dbt model named by OpenLineage's dataset URI, which carries the
# warehouse's host and port (`postgres://127.0.0.1:55191/...`: the embedded server's port changes at
# every start, so each restart made a new set of Assets). The DAG's Assets are the raw tables and
# the lake's marts, in a logical namespace (include/pipeline/assets.py); the models' lineage is in
# the OpenLineage events (include/pipeline/lineage/dbt.py). RenderConfig's switch, not
# operator_args': Cosmos sets every task's emit_datasets from it.
render_config = RenderConfig(
    load_method=LoadMode.DBT_MANIFEST,
    test_behavior=TestBehavior.AFTER_EACH,
    enable_mock_profile=True,
    emit_datasets=False,
)


def transform_group(**kwargs):
    """The dbt project as a Cosmos DbtTaskGroup in watcher mode, its sensors run by the triggerer.

    `kwargs` go to DbtTaskGroup (group_id, operator_args, ...); see include/pipeline/transform/watcher.py
    for why the sensors start and end in the triggerer.
    """
    from cosmos import DbtTaskGroup

    from include.pipeline.transform.watcher import start_sensors_in_the_triggerer

    group = DbtTaskGroup(
        project_config=project_config(),
        profile_config=profile_config,
        execution_config=execution_config,
        render_config=render_config,
        **kwargs,
    )
    prefix = f"{group.group_id}."
    start_sensors_in_the_triggerer(t for t in group.dag.tasks if t.task_id.startswith(prefix))
    return group


def build_task(group):
    """The task of `group` (a transform_group) that runs the `dbt build` and stages its artifacts
    (the watcher's producer). A task that needs the build's files waits for this one: the group's
    other tasks can fail, and mark what follows the group upstream_failed, while it still runs."""
    return group.tasks_map[PRODUCER_WATCHER_TASK_ID]


def docs_task(task_id: str = "dbt_docs"):
    """`dbt docs generate` after the transform; the site is kept in .local/artifacts/<run_id>/dbt_docs."""
    from cosmos.operators.local import DbtDocsLocalOperator

    from include.pipeline.transform.docs import keep_docs

    return DbtDocsLocalOperator(
        task_id=task_id,
        project_dir=str(settings.DBT_PROJECT_DIR),
        profile_config=profile_config,
        invocation_mode=InvocationMode.DBT_RUNNER,
        dbt_executable_path=str(settings.DBT_EXECUTABLE),
        install_deps=False,
        callback=keep_docs,
        env={"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        append_env=True,
    )
