"""
### Lake check: each new partition of the marts, read back with DuckDB

Scheduled on data, not on time: every `publish.<mart>` task of `ecommerce_daily` emits an event
on its mart's Asset (`s3://lake/marts/<mart>/`) whose partition key is the `ds` it committed. Once
every mart has an event for the same `ds`, the scheduler creates one run of this DAG for that
partition (Airflow 3's partitioned assets: `PartitionedAssetTimetable`, the run's
`partition_key` is the `ds`).

- **check_partition**: DuckDB over S3 (the read-only `lake_reader` connection) reads every object
  the partition's `_manifest.json` lists and checks its row count, the total and the columns
  against the manifest (include/pipeline/publish/lake_check.py). It fails naming each difference.

A `ds` whose mart failed is not checked until a run publishes that mart; re-publishing a `ds`
(a rerun of the newest day, a backfill on a fresh lake, the param `republish`) checks it again. A
rerun of a day before the lake's newest one keeps its partitions and emits no event: no check. Trigger it by hand for a date: Trigger, then set the
partition key to the `ds` (YYYY-MM-DD).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetAll, BaseHook, PartitionedAssetTimetable, dag, task

from include.pipeline import assets
from include.pipeline.publish.tasks import mart_models

MARTS = mart_models()


@dag(
    dag_id="lake_check",
    schedule=PartitionedAssetTimetable(assets=AssetAll(*(assets.mart(m) for m in MARTS))),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,  # nothing runs on a clock: unpaused, it runs on each new partition
    doc_md=__doc__,
    tags=["ecommerce", "lake", "quality"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(seconds=20)},
)
def lake_check():
    @task(execution_timeout=timedelta(minutes=15), inlets=[assets.mart(m) for m in MARTS])
    def check_partition(partition_key: str | None = None) -> list[dict]:
        from include.pipeline.publish.lake_check import LakeCheckError, check_partition, target_from_airflow_connection

        if not partition_key:
            raise LakeCheckError("this run has no partition key: trigger it with the ds to check (YYYY-MM-DD)")
        target = target_from_airflow_connection(BaseHook.get_connection("lake_reader"))
        return check_partition(target, MARTS, partition_key)

    check_partition()


lake_check()
