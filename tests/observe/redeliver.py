"""Redeliver the newest finished run's listener events, from Airflow's metadata DB (reliability case 10).

`python tests/observe/redeliver.py DAG_ID TIMES` with a stack's environment (tests run it).
Prints the run id and how many events it delivered.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from include.pipeline import environments

os.environ.update(environments.stack_env())

from airflow.models import DagRun  # noqa: E402
from airflow.utils.session import create_session  # noqa: E402
from sqlalchemy.orm import object_session  # noqa: E402

from include.pipeline.observe import listener  # noqa: E402


def main(dag_id: str, times: str) -> int:
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        tis = run.get_task_instances(session=session)
        events = 0
        for _ in range(int(times)):
            listener.on_dag_run_success(run, "redelivered")
            for ti in tis:
                listener.on_task_instance_success(None, ti)
                events += 1
        # the scheduler keeps working with these objects after the hooks: they must stay attached
        # to its (thread-local) session; closing it under the scheduler crashed it before
        assert object_session(run) is session and all(object_session(ti) is session for ti in tis), (
            "a listener hook closed or swapped the caller's session"
        )
    print(f"redelivered {events} task events and {times} DAG-run events of run_id={run.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
