"""Cosmos configuration shared by every DAG that runs the dbt project.

The DAG is rendered from the manifest that `dbt parse` writes during `make setup` (no `dbt ls`
while Airflow parses files). The dbt profile is built from the Airflow connection
`warehouse_transform` (the warehouse's transform role: reads raw, owns staging to snapshots)
through Cosmos's Postgres profile mapping, so credentials live in one place.

One `dbt build` runs in a producer task (`transform.dbt_producer_watcher`, transform/producer.py)
and each model, snapshot and model's tests keep their own Airflow task (transform/watcher.py),
which turns green or red when the producer's dbt reports that node. dbt pays its start-up and
project parse once per run instead of once per task (one dbt command per task made the dbt
part 5x one `dbt build`: docs/benchmarks.md, "Cosmos vs one dbt build"). dbt build itself skips the children of a failed model or
test; their tasks fail. A retried or cleared node task runs its own node again (`dbt run` /
`dbt test --select <model>`).

Cosmos renders the group in its LOCAL execution mode (the task ids, the model/tests task groups
and the dependencies of dbt's graph), with RenderConfig's public `node_converters` making each
node's task ours; the producer is added to the group here. Cosmos's own WATCHER mode is not used:
its producer, sensors and trigger live in its private `_watcher` modules.
"""

from __future__ import annotations

import dataclasses
import logging

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    PRODUCER_WATCHER_TASK_ID,
    DbtResourceType,
    ExecutionMode,
    InvocationMode,
    LoadMode,
    TestBehavior,
)
from cosmos.profiles import PostgresUserPasswordProfileMapping

from include.pipeline import settings
from include.pipeline.transform.producer import Producer
from include.pipeline.transform.watcher import RunSensor, SnapshotSensor, TestSensor

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
        env_vars={
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            # dbt's unit tests check the SQL on fixed rows: they pass or fail with the code, not the
            # day's data, so the daily build leaves them to `make test` and dbt builds run by hand,
            # as dbt's docs advise ("Unit tests": when to run them). Each one ran on the build's
            # critical path, before its model (docs/benchmarks.md). Remove to run them every day.
            "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
        },
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
    execution_mode=ExecutionMode.LOCAL,  # the nodes' tasks are ours (node_converters), the producer too
    invocation_mode=InvocationMode.DBT_RUNNER,
    dbt_executable_path=settings.DBT_EXECUTABLE,
)

# The per-node tasks poll the producer's XCom every second from the triggerer (a 10 s poll would
# add up to 10 s after every node); they hold no worker slot while they wait.
SENSOR_ARGS = {"poke_interval": 1}

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
    """The dbt project as a Cosmos DbtTaskGroup: one `dbt build` in its producer task, and one task
    per node that the triggerer ends when dbt reports the node (transform/watcher.py).

    `kwargs` go to DbtTaskGroup (group_id, operator_args, ...); `operator_args` reach the producer
    and every node's task (a node's task runs them when it runs its node by itself).
    """
    from airflow.providers.standard.operators.empty import EmptyOperator
    from cosmos import DbtTaskGroup

    producer_id = f"{kwargs['group_id']}.{PRODUCER_WATCHER_TASK_ID}"
    task_args: dict = {}  # what Cosmos gives each dbt task (project, profile, operator_args, ...)
    converters = {resource: node_task_converter(cls, producer_id, task_args) for resource, cls in NODE_TASKS.items()}
    # per task (a model's run and tests tasks each), not one call for the model's whole task group
    config = dataclasses.replace(render_config, node_converters=converters, node_conversion_by_task_group=False)
    group = DbtTaskGroup(
        project_config=project_config(),
        profile_config=profile_config,
        execution_config=execution_config,
        render_config=config,
        **kwargs,
    )
    if not task_args:
        raise ValueError(f"Cosmos rendered no dbt node from {settings.DBT_MANIFEST}: nothing for the producer to build")
    producer = Producer(
        task_id=PRODUCER_WATCHER_TASK_ID,
        task_group=group,
        dag=group.dag,
        tests_per_model=group.dbt_graph.tests_per_model,
        **{k: v for k, v in task_args.items() if k not in SENSOR_ARGS},
    )
    if producer.task_id != producer_id:
        raise ValueError(f"the producer's task id is {producer.task_id}, its node tasks watch {producer_id}")
    # The group's last task for the build: tasks after the group wait for the build itself, and a
    # skipped retry of the producer (producer.py) does not skip them.
    producer >> EmptyOperator(task_id=f"{PRODUCER_WATCHER_TASK_ID}_done", task_group=group, dag=group.dag,
                              trigger_rule="none_failed")  # fmt: skip
    return group


# The node's task class per dbt resource type Cosmos renders (TEST: a model's tests' task).
NODE_TASKS = {
    DbtResourceType.MODEL: RunSensor,
    DbtResourceType.SNAPSHOT: SnapshotSensor,
    DbtResourceType.TEST: TestSensor,
}


def node_task_converter(cls: type, producer_id: str, seen_args: dict):
    """A RenderConfig.node_converters function: the task of one node (`cls`, transform/watcher.py),
    watching `producer_id`. Cosmos calls it with the node whose task it renders
    (for a model's tests' task: the model) and the arguments of a dbt task (kept in `seen_args`)."""

    def convert(*, dag, task_group, node, task_id, task_args, **_):
        seen_args.update(task_args)
        return cls(
            task_id=task_id, dag=dag, task_group=task_group, model_unique_id=node.unique_id,
            producer_task_id=producer_id, select=node.resource_name,
            extra_context={"dbt_node_config": node.context_dict}, **task_args,
        )  # fmt: skip

    return convert


def build_task(group):
    """The task of `group` (a transform_group) that runs the `dbt build` and stages its artifacts
    (the producer). A task that needs the build's files waits for this one: the group's other
    tasks can fail, and mark what follows the group upstream_failed, while it still runs."""
    return group.dag.get_task(f"{group.group_id}.{PRODUCER_WATCHER_TASK_ID}")


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
