"""A DAG for tests/observe/test_alerts_dag.py: one task that fails every try (2 retries), under
`airflow dags test -f`, with the daily DAG's notifiers: one alert for the task, one for the run."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from include.pipeline.observe.alerts import PipelineNotifier


@dag(
    dag_id="alerts_probe",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    doc_md=__doc__,
    tags=["test"],
    default_args={
        "owner": "tests",
        "retries": 2,
        "retry_delay": timedelta(seconds=0),
        "on_failure_callback": [PipelineNotifier("task_failed")],
    },
    on_failure_callback=[PipelineNotifier("run_failed")],
)
def alerts_probe():
    @task
    def always_fails():
        raise RuntimeError("the source answered 503")

    always_fails()


alerts_probe()
