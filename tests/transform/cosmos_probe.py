"""Load the daily DAG in a fresh interpreter and report, as JSON, how Cosmos rendered the dbt
project: each transform task's operator and upstream tasks, and the dbt flags of the orders
model's task once `{{ params.full_refresh }}` is rendered with true and with false."""

from __future__ import annotations

import json
import sys

from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["ecommerce_daily"]
tasks = {t.task_id: {"operator": type(t).__name__, "upstream": sorted(t.upstream_task_ids)} for t in dag.tasks}
orders = dag.get_task("transform.orders.run")
flags = {}
for value in (True, False):
    rendered = orders.render_template(orders.full_refresh, {"params": {"full_refresh": value}})
    orders.full_refresh = rendered
    flags[str(value).lower()] = {"rendered": rendered, "flags": orders.add_cmd_flags()}
    orders.full_refresh = "{{ params.full_refresh }}"
print("PROBE " + json.dumps({"import_errors": bag.import_errors, "tasks": tasks, "full_refresh": flags}))
