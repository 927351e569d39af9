"""Headings for people: a dashboard query's column name -> the label its chart or table shows.

The SQL keeps plain column names (the tests and Grafana's transformations match on them); the
local dashboard and the Grafana JSON both show `label(name)`.
"""

from __future__ import annotations

LABELS = {
    "success_rate_pct": "Success rate (%)",
    "finished_runs": "Finished runs",
    "p50_seconds": "p50 (s)",
    "p95_seconds": "p95 (s)",
    "what_it_times": "What its duration measures",
    "dbt_own_p50_seconds": "dbt's own time, p50 (s)",
    "task_id": "Task",
    "dag_id": "DAG",
    "run_id": "Run",
    "job_id": "Job",
    "rows_delta": "Rows added since the previous sync",
    "rows_in_table": "Rows in table",
    "return_rate_pct": "Return rate (%)",
    "net_revenue": "Net revenue",
    "gross_revenue": "Gross revenue",
    "order_count": "Orders",
    "return_count": "Returns",
    "avg_seconds": "Mean (s)",
    "max_seconds": "Max (s)",
    "check_name": "Check",
    "subjects_with_issues": "Subjects with issues",
    "stream_problem": "Stream: problem (column)",
    "is_stale": "Stale",
    "ds": "Partition day",
    "tasks_total": "Tasks",
    "tasks_failed": "Failed tasks",
    "duration_seconds": "Duration (s)",
    "logical_date": "Logical date",
}
_SUFFIXES = (("_pct", " (%)"), ("_seconds", " (s)"), ("_hours", " (h)"))


def label(column: str) -> str:
    """`success_rate_pct` -> "Success rate (%)"; a name not listed: underscores to spaces,
    the first letter capitalised, units as suffixes."""
    if column in LABELS:
        return LABELS[column]
    text, unit = column, ""
    for suffix, shown in _SUFFIXES:
        if text.endswith(suffix):
            text, unit = text.removesuffix(suffix), shown
            break
    text = text.replace("_", " ").strip()
    return (text[:1].upper() + text[1:] + unit) if text else column
