"""Parse the dags/ folder the way Airflow's dag processor does and report facts as JSON.

Run in a fresh interpreter (tests/dags/test_dag_integrity.py does) so Airflow's configuration
comes from the environment given. Every way a DAG file could reach a connection or a variable at
parse time is trapped and recorded.
"""

from __future__ import annotations

import json
import sys
import time

started = time.perf_counter()
import airflow.sdk  # noqa: E402,F401  (the dag processor has Airflow loaded before any file)
from airflow.dag_processing.dagbag import DagBag  # noqa: E402

airflow_import_seconds = time.perf_counter() - started
reads: list[str] = []


def trap(name):
    def _raise(*args, **kwargs):
        reads.append(f"{name}{args}")
        raise RuntimeError(f"{name} called while parsing DAG files")

    return _raise


from airflow.sdk import BaseHook, Connection, Variable  # noqa: E402

BaseHook.get_connection = classmethod(trap("BaseHook.get_connection"))
Connection.get = classmethod(trap("Connection.get"))
Variable.get = staticmethod(trap("Variable.get"))

dag_folder = sys.argv[1]
started, started_cpu = time.perf_counter(), time.process_time()
bag = DagBag(dag_folder=dag_folder)
parse_seconds = time.perf_counter() - started
parse_cpu_seconds = time.process_time() - started_cpu  # does not grow when other jobs share the CPU

print(
    "PROBE "
    + json.dumps(
        {
            "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
            "airflow_import_seconds": airflow_import_seconds,
            "parse_seconds": parse_seconds,
            "parse_cpu_seconds": parse_cpu_seconds,
            "file_seconds": {
                str(s.file): s.duration.total_seconds() if hasattr(s.duration, "total_seconds") else s.duration
                for s in bag.dagbag_stats
            },
            "reads": reads,
            "dags": {
                dag_id: {
                    "fileloc": dag.fileloc,
                    "tags": sorted(dag.tags or []),
                    "doc_md": dag.doc_md or "",
                    "schedule": str(dag.schedule),
                    "timetable": type(dag.timetable).__name__,
                    "schedule_assets": sorted(
                        a.uri for a in getattr(getattr(dag.timetable, "asset_condition", None), "objects", ())
                    ),
                    "catchup": dag.catchup,
                    "start_date": str(dag.start_date) if dag.start_date else None,
                    "params": {k: dag.params.get_param(k).schema for k in dag.params},
                    "tasks": {
                        t.task_id: {
                            "owner": t.owner,
                            "retries": t.retries,
                            "execution_timeout": str(t.execution_timeout),
                            "outlets": sorted(getattr(o, "uri", o.name) for o in t.outlets),
                            "upstream": sorted(t.upstream_task_ids),
                            "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
                        }
                        for t in dag.tasks
                    },
                }
                for dag_id, dag in bag.dags.items()
            },
        }
    )
)
