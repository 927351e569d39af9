"""Lineage of a DAG run: source files -> raw -> staging -> marts -> lake, from the OpenLineage
events kept under .local/lineage/ (include/pipeline/lineage)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: `include` importable

import streamlit as st  # noqa: E402

from include.pipeline import settings  # noqa: E402
from include.pipeline.lineage.graph import read_events, runs  # noqa: E402

st.set_page_config(page_title="Lineage", layout="wide")
st.title("Lineage")
folder = settings.LOCAL_DIR / "lineage"
found = runs(read_events(folder)) if folder.exists() else {}
if not found:
    st.info(
        f"No lineage events in {folder} yet: run the pipeline (`make demo`), or lineage goes elsewhere "
        "(LINEAGE_TRANSPORT, docs/operations.md)."
    )
    st.stop()
keys = sorted(found, key=lambda k: k[1], reverse=True)
dag_id, run_id = st.selectbox("DAG run", keys, format_func=lambda k: f"{k[0]} / {k[1]}")
run = found[(dag_id, run_id)]
st.graphviz_chart(run.dot(), use_container_width=True)
for where, nodes in run.layers().items():
    st.markdown(f"**{where}** ({len(nodes)}): " + ", ".join(f"`{n.rsplit('/', 1)[-1]}`" for n in nodes))
