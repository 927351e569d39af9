"""
### E-commerce daily pipeline

Ingest the shop's sources with Airbyte, transform them with dbt (one Airflow task per model,
its tests right after it), every day.

- **shop_export**: stands in for the shop's own nightly export job: writes the day's new and
  changed records as files into S3 (a simulated shop; with real exports it has nothing to do).
- **ingest**: one task per connection declared in `include/airbyte/connections.yaml`. The
  engine is chosen when the task runs (Airflow Variable `airbyte_engine`, else env
  `AIRBYTE_ENGINE`; the task log says which): `embedded` (default: PyAirbyte, no Airbyte
  server) or `platform` (an Airbyte server; the connection is looked up by name, the sync is
  deferrable, and a retry reattaches to the running job instead of starting a second one).
  A lake connection that reads the same source, streams and cursors as a warehouse connection
  (`shop_to_lake`, `shop_to_warehouse`) runs after it: with the embedded engine the warehouse's
  read also writes the lake's part, and the lake's task reports it and reads nothing (when that
  part failed, it reads on its own).
- **freshness**: a gate (sensor, reschedule mode: no worker slot while it waits) that passes when
  every raw table the dbt sources declare covers the run's data interval (this run's sync reported
  it, or its newest `_airbyte_extracted_at` is within the source's dbt `error_after` of the
  interval's end); it fails after `FRESHNESS_TIMEOUT_SECONDS` naming the stale streams.
- **transform**: the dbt project in `include/dbt`, rendered by Cosmos from its manifest in
  watcher mode: `transform.dbt_producer_watcher` runs one `dbt build`; each model, snapshot and
  model's tests keeps its own task (state, log), which turns green or red as dbt reports that node.
- **dbt_docs**: `dbt docs generate`, kept in `.local/artifacts/<run_id>/dbt_docs/` and staged in the
  lake (like the build's artifacts: publish_artifacts finds them on any Celery worker).
- **publish**: each mart to the lake as `s3://lake/marts/<mart>/ds=<ds>/` (Parquet), committed by
  a `_manifest.json` written last (include/pipeline/publish/lake.py), as soon as that mart's model
  and its tests passed (`publish.<mart>` waits for `transform.<mart>.run` and `.test` only: a
  failing test keeps its own mart and its children out of the lake, not the others); then
  **publish_artifacts**: the run's dbt artifacts and docs to
  `s3://lake/artifacts/<dag_id>/<run_id>/` once the transform ran, also after a failed build (its
  run_results say why).

Assets: each ingest task's outlets are the raw tables it writes, each `publish.<mart>`'s the mart
in the lake (`s3://lake/marts/<mart>`), with an event per partition (`ds`); the `lake_check` DAG
runs on them. Lineage: OpenLineage events under `.local/lineage/` (docs/operations.md).

Trigger: the form's "Unpause on trigger" box, left ticked, also lets the scheduler create the
latest interval's run, which goes first (one run at a time): untick it to run only your date.

Past days (a rerun, a backfill behind days that already ran): once the lake holds a later day of a
mart, `publish.<mart>` keeps the earlier day's partition as it was published and is skipped (the
marts now hold the later days' data); a day that never ran fails, saying so. Param `republish`:
replace the day's partitions with the marts as they are now (include/pipeline/publish/past_days.py).

Alerts (`include/pipeline/observe/alerts.py`): a task failing its last try, a failed run, stale
data and a run not finished 2 h after it was queued send one message each to the Airflow
connections `alerts_email` / `alerts_webhook`, when they exist.

Param `full_refresh`: rebuild dbt's incremental models from the raw tables (`dbt build
--full-refresh`); the ingest keeps its state and reads the day's new files only. Param
`reset_ingest`: also re-export the shop and re-read every stream from scratch (raw tables
replaced); the ingest's cursor starts over from that read, so the next day reads its own files.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task_group

from include.pipeline.ingest.declaration import load_connections
from include.pipeline.ingest.shared_read import shared_readers
from include.pipeline.ingest.tasks import ingest_step, shop_export
from include.pipeline.observe.alerts import PipelineNotifier, deadline_alerts
from include.pipeline.observe.callbacks import SYNC_METRICS_CALLBACKS
from include.pipeline.observe.freshness import FreshnessGate
from include.pipeline.publish.tasks import publish_artifacts, publish_group
from include.pipeline.transform import cosmos_config

DEADLINE_HOURS = 2  # a scheduled run is queued when its data interval ends: alert 2 h after that
TASK_FAILED = PipelineNotifier("task_failed")  # on_failure_callback: only after the last try


@dag(
    dag_id="ecommerce_daily",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["ecommerce", "airbyte", "dbt"],
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": [TASK_FAILED],
    },
    on_failure_callback=[PipelineNotifier("run_failed")],
    deadline=deadline_alerts(DEADLINE_HOURS),  # none under `airflow dags test` (see alerts.py)
    params={
        "full_refresh": Param(
            False,
            type="boolean",
            description="Rebuild dbt's incremental models from the raw tables (dbt --full-refresh). "
            "The ingest keeps its state.",
        ),
        "reset_ingest": Param(
            False,
            type="boolean",
            description="Reset the ingest: re-export and re-read every stream from scratch, replacing the raw tables.",
        ),
        "republish": Param(
            False,
            type="boolean",
            description_md="A date before the lake's newest day keeps its published partitions: the marts "
            "now hold the later days' data, so `publish.<mart>` is skipped (a day that never ran fails). "
            "Tick to replace that day's partitions with the marts as they are now. "
            "The box **Unpause ecommerce_daily on trigger** (above, while the DAG is paused), left ticked, "
            "also lets the scheduler start the latest interval's run, which goes first (one run at a "
            "time): untick it to run only your date.",
        ),
    },
)
def ecommerce_daily():
    # per-stream figures -> metrics.syncs; the alert too, since the group's callbacks replace the DAG's
    @task_group(
        default_args=SYNC_METRICS_CALLBACKS
        | {"on_failure_callback": [SYNC_METRICS_CALLBACKS["on_failure_callback"], TASK_FAILED]}
    )
    def ingest():
        config = load_connections()
        # a lake connection after the warehouse connection whose read feeds it (shared_read.py);
        # all_done: a failed warehouse sync never blocks the lake's own read
        readers = shared_readers(config)
        steps = {
            c.name: ingest_step(c.name, trigger_rule="all_done" if c.name in readers else "all_success")
            for c in config.connections
        }
        for lake, reader in readers.items():
            steps[reader] >> steps[lake]

    transform = cosmos_config.transform_group(
        group_id="transform",
        operator_args={
            "full_refresh": "{{ params.full_refresh }}",
            **cosmos_config.SENSOR_ARGS,
            # per-node run_results (status, time, rows, failures) into metrics.dbt_nodes; the
            # build's run_results and manifest kept with the run's artifacts (uploaded to the lake)
            "callback": [
                "include.pipeline.observe.callbacks.record_dbt_results",
                "include.pipeline.transform.docs.keep_build_artifacts",
            ],
        },
    )

    gate = FreshnessGate(task_id="freshness")
    syncs = ingest()
    shop_export() >> syncs >> gate >> transform
    for sync in syncs.children.values():  # the gate waits on every sync, not only the group's last (a
        sync >> gate  # lake task after its reader would otherwise stand for a failed warehouse sync)
    docs = cosmos_config.docs_task()  # dbt docs kept with the run's artifacts
    transform >> docs
    publish_group(transform)  # each mart after its own model and tests (publish/tasks.py)
    # once the dbt build ended, whatever its outcome: a failed build's run_results reach the lake too.
    # The build itself is upstream, not only the group: a failed model marks dbt_docs upstream_failed
    # at once, while the build still runs and has not staged its files yet
    [gate, docs, cosmos_config.build_task(transform)] >> publish_artifacts()


ecommerce_daily()
