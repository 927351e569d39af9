"""The dashboards' queries (include/sql/dashboards/<dashboard>/<NN>_<panel>.sql) and the Grafana JSON
generated from them (grafana/provisioning/dashboards/<dashboard>.json).

Each query file starts with `-- title:`, `-- panel:` (stat | timeseries | barchart | table) and
optionally `-- unit:`, `-- series:` and `-- empty:` (what an empty result means, said instead of an
empty chart: "no failed tries in 30 days") comment lines; the rest is plain Postgres SQL (no Grafana
macros, so the local Streamlit dashboard and the tests run the very same text). Timeseries queries
name their time column `time`. Column names become headings through `labels.label` in both the
Streamlit page and the Grafana JSON (an `organize` transformation), so the SQL keeps plain names.

`python -m include.pipeline.observe.dashboards` rewrites the JSON; `--check` exits 1 when the
committed JSON differs from what the queries generate (a test runs it too).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from include.pipeline import settings
from include.pipeline.observe.labels import label

QUERIES_DIR = settings.REPO_ROOT / "include" / "sql" / "dashboards"
GRAFANA_DIR = settings.REPO_ROOT / "grafana" / "provisioning" / "dashboards"
DATASOURCE_UID = "stack-metrics"
DATASOURCE = {"type": "grafana-postgresql-datasource", "uid": DATASOURCE_UID}
PANEL_TYPES = {"stat", "timeseries", "barchart", "table"}
TITLES = {
    "pipeline_health": "Pipeline health",
    "ingestion": "Ingestion",
    "dbt": "dbt",
    "freshness": "Freshness and data quality",
    "business": "Business KPIs",
    "lake": "Lake",
}
_HEADER = re.compile(r"^--\s*(\w+):\s*(.+?)\s*$")


class QueryFileError(ValueError):
    pass


@dataclass(frozen=True)
class Panel:
    dashboard: str
    slug: str
    title: str
    panel: str
    unit: str | None
    sql: str
    path: Path
    series_column: str | None = None  # `-- series: <column>`: long format, one line per value
    empty: str = "no rows yet: run the pipeline (`make demo`)"  # `-- empty: ...`

    @property
    def columns(self) -> list[str]:
        """The query's output column names, read off its last top-level select list (one item a
        line, `expr as name` or a bare column); a test checks them against the database's."""
        return output_columns(self.sql)


_SELECT_ITEM = re.compile(r"^ {4}(?! )(?:.*\bas\s+(\w+)|(?!case$)(?:\w+\.)?(\w+)),?$")


def output_columns(sql: str) -> list[str]:
    lines = sql.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("select"))
    names = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        match = _SELECT_ITEM.match(line)
        if match:
            names.append(match.group(1) or match.group(2))
    return names


def load_panel(path: Path) -> Panel:
    meta: dict[str, str] = {}
    body: list[str] = []
    for line in path.read_text().splitlines():
        match = _HEADER.match(line) if not body else None
        if match:
            meta[match.group(1)] = match.group(2)
        elif line.strip() or body:
            body.append(line)
    for key in ("title", "panel"):
        if key not in meta:
            raise QueryFileError(f"{path}:1: missing the `-- {key}: ...` header line")
    if meta["panel"] not in PANEL_TYPES:
        raise QueryFileError(f"{path}: panel {meta['panel']!r} is not one of {sorted(PANEL_TYPES)}")
    return Panel(
        path.parent.name, path.stem, meta["title"], meta["panel"], meta.get("unit"), "\n".join(body).strip(), path,
        meta.get("series"), meta.get("empty", Panel.empty),
    )  # fmt: skip


def panels(root: Path = QUERIES_DIR) -> dict[str, list[Panel]]:
    """{dashboard: [panels in file order]} for every folder under include/sql/dashboards."""
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found[folder.name] = [load_panel(p) for p in sorted(folder.glob("*.sql"))]
    return found


def _grafana_panel(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    width = 24 if panel.panel == "table" else 12
    out = {
        "id": panel_id,
        "title": panel.title,
        "type": panel.panel,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "editorMode": "code",
                "format": "table",
                "rawQuery": True,
                "rawSql": panel.sql,
            }
        ],
        # noValue: an empty result says what it means instead of drawing a zero axis
        "fieldConfig": {
            "defaults": {**({"unit": panel.unit} if panel.unit else {}), "noValue": panel.empty},
            "overrides": [],
        },
        "options": {},
        "description": f"Query: include/sql/dashboards/{panel.dashboard}/{panel.path.name}",
    }
    if panel.panel == "timeseries":
        # p50 beside p95, never p50 stacked on p95
        out["fieldConfig"]["defaults"]["custom"] = {"stacking": {"mode": "none", "group": "A"}}
    if panel.panel == "barchart":
        out["options"] = {"stacking": "none", "orientation": "horizontal"}
    out["transformations"] = []
    if panel.panel == "timeseries" and panel.series_column:
        # long format (time, series, value) -> one line per series
        out["transformations"].append({"id": "prepareTimeSeries", "options": {"format": "multi"}})
    renames = {c: label(c) for c in panel.columns if c not in ("time", panel.series_column) and label(c) != c}
    if renames:
        out["transformations"].append({"id": "organize", "options": {"renameByName": renames}})
    return out


def grafana_dashboard(name: str, items: list[Panel]) -> dict:
    laid_out, x, y = [], 0, 0
    for i, panel in enumerate(items, start=1):
        grafana = _grafana_panel(panel, i, x, y)
        width = grafana["gridPos"]["w"]
        if x + width > 24:
            x, y = 0, y + 8
            grafana["gridPos"].update(x=x, y=y)
        laid_out.append(grafana)
        x += width
        if x >= 24:
            x, y = 0, y + 8
    return {
        "uid": f"stack-{name.replace('_', '-')}",
        "title": f"Stack: {TITLES.get(name, name)}",
        "tags": ["stack", "generated"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "1m",
        "time": {"from": "now-30d", "to": "now"},
        "description": f"Generated from include/sql/dashboards/{name} by include/pipeline/observe/dashboards.py; do not edit.",
        "panels": laid_out,
    }


def rendered() -> dict[Path, str]:
    return {
        GRAFANA_DIR / f"{name}.json": json.dumps(grafana_dashboard(name, items), indent=2) + "\n"
        for name, items in panels().items()
    }


def main(argv: list[str]) -> int:
    files = rendered()
    if "--check" in argv:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
        extra = [p for p in GRAFANA_DIR.glob("*.json") if p not in files]
        for p in stale + extra:
            print(f"{p}: out of date with include/sql/dashboards (run `make dashboards-json`)", file=sys.stderr)
        return 1 if stale or extra else 0
    GRAFANA_DIR.mkdir(parents=True, exist_ok=True)
    for p, text in files.items():
        p.write_text(text)
        print(f"wrote {p.relative_to(settings.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
