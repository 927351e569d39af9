"""The local dashboard (`make dashboard`): the Grafana panels' own queries, rendered by Streamlit.

Reads include/sql/dashboards/*/*.sql (the same files the Grafana JSON is generated from) and the
metrics database named by METRICS_* (the warehouse by default), as its read-only reader role
(METRICS_READER_USER). No Grafana needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `streamlit run` puts only dashboard/ on the path

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from include.pipeline.observe import config, dashboards, display, writer  # noqa: E402
from include.pipeline.observe.labels import label  # noqa: E402

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
    return display.chartable(frame)


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
        st.caption(f"{panel.empty.capitalize()}.")  # says what an empty result means; no empty axis
        return
    values = numeric_columns(frame)
    if panel.panel == "stat":
        for column, slot in zip(frame.columns, st.columns(len(frame.columns)), strict=True):
            slot.metric(*display.stat(column, frame[column].iloc[0], panel.unit))
    elif panel.panel == "timeseries":
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        if panel.series_column:
            value = next(c for c in values if c != panel.series_column)
            frame = frame.pivot_table(index="time", columns=panel.series_column, values=value, aggfunc="sum")
        else:
            frame = frame.set_index("time")[values].rename(columns=label)
        # a line needs two points: the first day of a new stack is drawn as bars, side by side
        if len(frame.index) > 1:
            st.line_chart(frame)
        else:
            frame.index = frame.index.strftime("%Y-%m-%d")  # a category: grouped bars, not overlaid
            st.bar_chart(frame, stack=False)
    elif panel.panel == "barchart":
        category = next(c for c in frame.columns if c not in values)
        chart = frame[[category, values[0]]].rename(columns=label)
        st.bar_chart(chart, x=label(category), y=label(values[0]), horizontal=True)
    else:
        st.dataframe(display.table(frame), hide_index=True, width="stretch")


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
            f"{display.shown(run['duration_seconds'])} s, {display.shown(run['tasks_total'])} tasks, "
            f"{display.shown(run['tasks_failed'])} failed, ended {display.shown(run['end_date'])}"
        )
except Exception as exc:  # noqa: BLE001
    st.error(f"The metrics database is not reachable ({type(exc).__name__}: {exc}). Is `make services` up?")

for name in ORDER + sorted(set(all_panels) - set(ORDER)):
    st.header(dashboards.TITLES.get(name, name))
    for panel in all_panels.get(name, []):
        render(panel)
