"""Where the metrics database is and whether the writers are on.

The metrics live in the schema `metrics` of the warehouse database by default (one Grafana
datasource serves pipeline metrics and business KPIs). The writers connect as the warehouse's
metrics role, the dashboards as its read-only reader role. METRICS_HOST / _PORT / _USER /
_PASSWORD / _DB (and METRICS_READER_USER / _PASSWORD) move them elsewhere; inside Airflow the
writers read the Airflow connection `metrics` (STACK_METRICS_CONN_ID), which airflow_settings.yaml
fills from these same variables.
"""

from __future__ import annotations

import os

from include.pipeline import settings

SCHEMA = "metrics"
CONN_ID = os.environ.get("STACK_METRICS_CONN_ID", "metrics")
DEFAULT_CONNECT_TIMEOUT = 2  # seconds; libpq's minimum (a value of 1 is treated as 2)


def enabled() -> bool:
    """STACK_METRICS=off turns every writer into a no-op (the overhead benchmark's baseline)."""
    return os.environ.get("STACK_METRICS", "on").strip().lower() not in ("off", "0", "false", "no")


def metrics_env() -> dict[str, str]:
    """METRICS_* for child processes: explicit settings, else the warehouse as its metrics role.

    METRICS_READER_USER / _PASSWORD: the read-only role the dashboards use (Grafana, Streamlit).
    """
    wh = settings.Warehouse.from_settings()
    out = {
        "METRICS_HOST": settings.setting("METRICS_HOST") or wh.host,
        "METRICS_PORT": settings.setting("METRICS_PORT") or str(wh.port),
        "METRICS_DB": settings.setting("METRICS_DB") or wh.database,
    }
    for prefix, job in (("METRICS", "metrics"), ("METRICS_READER", "reader")):
        user, password = settings.setting(f"{prefix}_USER"), settings.setting(f"{prefix}_PASSWORD")
        if not (user and password):  # the warehouse's role (its password is only needed then)
            role = settings.Warehouse.for_role(job)
            user, password = user or role.user, password or role.password
        out[f"{prefix}_USER"], out[f"{prefix}_PASSWORD"] = user, password
    return out


def params_from_env(env: dict[str, str] | None = None) -> dict:
    """psycopg2 connect() keywords from METRICS_* (falling back to the warehouse settings)."""
    values = dict(env) if env is not None else metrics_env()
    return {
        "host": values["METRICS_HOST"],
        "port": int(values["METRICS_PORT"]),
        "user": values["METRICS_USER"],
        "password": values["METRICS_PASSWORD"],
        "dbname": values["METRICS_DB"],
        "connect_timeout": int(os.environ.get("STACK_METRICS_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)),
    }


def reader_params(env: dict[str, str] | None = None) -> dict:
    """psycopg2 connect() keywords of the dashboards' read-only role (marts and metrics only)."""
    values = dict(env) if env is not None else metrics_env()
    values["METRICS_USER"], values["METRICS_PASSWORD"] = (
        values["METRICS_READER_USER"],
        values["METRICS_READER_PASSWORD"],
    )
    return params_from_env(values)
