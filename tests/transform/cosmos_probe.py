"""Load the daily DAG in a fresh interpreter and report, as JSON, how Cosmos rendered the dbt
project: each transform task's operator, upstream tasks and trigger start (as the scheduler sees
it, after serialization), the task each dbt node's metrics row is filed under, and the dbt flags of the producer's one `dbt build` once
`{{ params.full_refresh }}` is rendered with true and with false."""

from __future__ import annotations

import json
import sys

from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["ecommerce_daily"]
serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
tasks = {}
for t in dag.tasks:
    start = serialized.get_task(t.task_id).start_trigger_args
    tasks[t.task_id] = {
        "operator": type(t).__name__,
        "bases": [c.__name__ for c in type(t).__mro__],
        "upstream": sorted(t.upstream_task_ids),
        "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
        "start_from_trigger": serialized.get_task(t.task_id).start_from_trigger,
        "trigger": start.trigger_cls if start else None,
        "next_method": start.next_method if start else None,
        "node": getattr(t, "model_unique_id", None),
        "producer": getattr(t, "producer_task_id", None),
    }
producer = dag.get_task("transform.dbt_producer_watcher")
flags = {}
for value in (True, False):
    rendered = producer.render_template(producer.full_refresh, {"params": {"full_refresh": value}})
    producer.full_refresh = rendered
    flags[str(value).lower()] = {"rendered": rendered, "command": producer.base_cmd, "flags": producer.add_cmd_flags()}
    producer.full_refresh = "{{ params.full_refresh }}"
from include.pipeline.observe.callbacks import watcher_tasks  # noqa: E402

metrics_task_of = watcher_tasks(producer)  # where record_dbt_results files each node's row
out = {"import_errors": bag.import_errors, "tasks": tasks, "full_refresh": flags, "metrics_task_of": metrics_task_of}
print("PROBE " + json.dumps(out))
