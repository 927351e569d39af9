"""Airflow plugin: records DAG runs and task tries into the metrics schema (include/pipeline/observe).

Loaded from AIRFLOW__CORE__PLUGINS_FOLDER by every Airflow process: the scheduler and
`airflow dags test` (DAG-run events) and the task runner (task-instance events).
STACK_METRICS=off makes it a no-op.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.pipeline.observe import listener


class StackMetricsPlugin(AirflowPlugin):
    name = "stack_metrics"
    listeners = [listener]
