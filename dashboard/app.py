"""The local dashboard (`make dashboard`): the Grafana panels' own queries, rendered by Streamlit.

Reads include/sql/dashboards/*/*.sql (the same files the Grafana JSON is generated from) and the
metrics database named by METRICS_* (the warehouse by default), as its read-only reader role
(METRICS_READER_USER). No Grafana needed.
"""

from __future__ import annotations

import decimal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `streamlit run` puts only dashboard/ on the path

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from include.pipeline.observe import config, dashboards, writer  # noqa: E402

ORDER = ["pipeline_health", "business", "ingestion", "dbt", "freshness", "lake"]

st.set_page_config(page_title="Data stack dashboard", layout="wide")


@st.cache_data(ttl=30, show_spinner=False)
def query(sql: str) -> pd.DataFrame:
    conn = writer.connect(config.reader_params())  # read-only: marts and metrics
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            columns = [d.name for d in cur.description]
            frame = pd.DataFrame(cur.fetchall(), columns=columns)
    finally:
        conn.close()
    for column in frame.columns:  # numeric(…) arrives as Decimal: make it chartable
        if frame[column].map(lambda v: isinstance(v, decimal.Decimal)).any():
            frame[column] = frame[column].astype(float)
    return frame


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


def render(panel: dashboards.Panel) -> None:
    st.subheader(panel.title)
    try:
        frame = query(panel.sql)
    except Exception as exc:  # noqa: BLE001 - one broken panel must not hide the others
        st.error(f"{panel.path.relative_to(dashboards.settings.REPO_ROOT)}: {type(exc).__name__}: {exc}")
        return
    if frame.empty:
        st.info("no rows yet: run the pipeline (`make demo`)")
        return
    values = numeric_columns(frame)
    if panel.panel == "stat":
        for column, slot in zip(frame.columns, st.columns(len(frame.columns)), strict=True):
            value = frame[column].iloc[0]
            slot.metric(column.replace("_", " "), "-" if pd.isna(value) else f"{value:,}")
    elif panel.panel == "timeseries":
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        if panel.series_column:
            value = next(c for c in values if c != panel.series_column)
            frame = frame.pivot_table(index="time", columns=panel.series_column, values=value, aggfunc="sum")
        else:
            frame = frame.set_index("time")[values]
        # a line needs two points: the first days of a new stack are drawn as bars
        (st.line_chart if len(frame.index) > 1 else st.bar_chart)(frame)
    elif panel.panel == "barchart":
        label = next(c for c in frame.columns if c not in values)
        st.bar_chart(frame, x=label, y=values[0], horizontal=True)
    else:
        st.dataframe(frame, hide_index=True, width="stretch")


st.title("Data stack")
all_panels = dashboards.panels()
try:
    last = query(next(p for p in all_panels["pipeline_health"] if p.slug == "05_last_runs").sql)
    if last.empty:
        st.info("No DAG run recorded yet: run `make demo`.")
    else:
        run = last.iloc[0]
        st.markdown(
            f"**Last run** `{run['dag_id']}` `{run['run_id']}`: **{run['state']}**, "
            f"{run['duration_seconds']} s, {run['tasks_total']} tasks, {run['tasks_failed']} failed, ended {run['end_date']}"
        )
except Exception as exc:  # noqa: BLE001
    st.error(f"The metrics database is not reachable ({type(exc).__name__}: {exc}). Is `make services` up?")

for name in ORDER + sorted(set(all_panels) - set(ORDER)):
    st.header(dashboards.TITLES.get(name, name))
    for panel in all_panels.get(name, []):
        render(panel)
