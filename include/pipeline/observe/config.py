"""psycopg2 connect() keywords of the metrics database (its settings: settings.py).

The metrics live in the schema `metrics` of the warehouse database by default (one Grafana
datasource serves pipeline metrics and business KPIs). The writers connect as the warehouse's
metrics role, the dashboards as its read-only reader role. METRICS_HOST / _PORT / _USER /
_PASSWORD / _DB (and METRICS_READER_USER / _PASSWORD) move them elsewhere; inside Airflow the
writers read the Airflow connection `metrics` (STACK_METRICS_CONN_ID), which airflow_settings.yaml
fills from these same variables.
"""

from __future__ import annotations

import os

from include.pipeline import environments, settings


def params_from_env(env: dict[str, str] | None = None) -> dict:
    """psycopg2 connect() keywords from METRICS_* (falling back to the warehouse settings)."""
    values = dict(env) if env is not None else environments.metrics_env()
    return {
        "host": values["METRICS_HOST"],
        "port": int(values["METRICS_PORT"]),
        "user": values["METRICS_USER"],
        "password": values["METRICS_PASSWORD"],
        "dbname": values["METRICS_DB"],
        "connect_timeout": int(os.environ.get("STACK_METRICS_CONNECT_TIMEOUT", settings.METRICS_CONNECT_TIMEOUT)),
    }


def reader_params(env: dict[str, str] | None = None) -> dict:
    """psycopg2 connect() keywords of the dashboards' read-only role (marts and metrics only)."""
    values = dict(env) if env is not None else environments.metrics_env(("METRICS_READER",))
    values["METRICS_USER"], values["METRICS_PASSWORD"] = (
        values["METRICS_READER_USER"],
        values["METRICS_READER_PASSWORD"],
    )
    return params_from_env(values)
