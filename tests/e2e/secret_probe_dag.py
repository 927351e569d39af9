"""A DAG for tests/e2e/test_web_ui.py, served beside the daily DAG under `up`: one task that
prints and logs its Airflow connection's password, as a careless task would. Its real task log
(under the scheduler, in Airflow's log folder) must show `***` instead: Airflow's secret masker."""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk import BaseHook, dag, task

CONN_ID = "warehouse_reader"


@dag(dag_id="secret_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, doc_md=__doc__,
     tags=["test"])  # fmt: skip
def secret_probe():
    @task
    def print_the_password():
        password = BaseHook.get_connection(CONN_ID).password
        print(f"printed password: {password}")
        logging.getLogger(__name__).info("logged password: %s", password)

    print_the_password()


secret_probe()
