"""What an ingest sync met that its declaration did not say: schema changes and bad files.

The embedded engine reports them in its result (`schema_changes`, `bad_files`: see
include/pipeline/ingest/schema_changes.py and bad_files.py), or, when it stopped because of one
(disable_connection, on_bad_file: fail), on the EmbeddedSyncError, which the ingest task pushes as
the XCom `ingest_problems` before it fails. This module turns them into:

- rows of metrics.schema_changes and metrics.bad_files (`statements`, written by the sync task's
  metrics callback, callbacks.record_sync);
- one alert per sync that kept going (`alert_kept_going`, sent by the task itself; a sync that
  stopped fails its task, whose failure alert names the change or file), never failing the run,
  as an alert never does (alerts.send).
"""

from __future__ import annotations

import logging

from include.pipeline.observe import writer

log = logging.getLogger("stack.ingest")

XCOM_KEY = "ingest_problems"
SCHEMA_KEY = ("dag_id", "run_id", "task_id", "try_number", "stream", "change", "column_name")
BAD_FILE_KEY = ("dag_id", "run_id", "task_id", "try_number", "stream", "file")


def of(result: dict | None) -> dict:
    """The schema changes and bad files of a sync result (or of a pushed XCom), empty when none."""
    result = result if isinstance(result, dict) else {}
    return {
        "schema_changes": list(result.get("schema_changes") or []),
        "bad_files": list(result.get("bad_files") or []),
    }


def statements(key: dict, problems: dict, connection: str) -> list:
    """Upserts of metrics.schema_changes and metrics.bad_files for one sync task try."""
    out = []
    for c in problems.get("schema_changes") or []:
        row = key | {
            "connection": connection, "stream": c["stream"], "change": c["change"], "column_name": c["column"],
            "detail": c.get("detail"), "policy": c.get("policy"), "action": c.get("action"),
            "records": c.get("records"),
        }  # fmt: skip
        out.append(writer.upsert("schema_changes", row, SCHEMA_KEY, overrides={"recorded_at": "now()"}))
    for b in problems.get("bad_files") or []:
        row = key | {
            "connection": connection, "stream": b["stream"], "file": b["file"], "line": b.get("line"),
            "error": (b.get("error") or "")[:2000], "found_by": b.get("found_by"),
            "records_read": b.get("records_read"), "policy": b.get("policy"), "action": b.get("action"),
        }  # fmt: skip
        out.append(writer.upsert("bad_files", row, BAD_FILE_KEY, overrides={"recorded_at": "now()"}))
    return out


def lines(problems: dict) -> list[str]:
    """One line per change or file, as the runner logs them."""
    from include.pipeline.ingest import bad_files, schema_changes

    return [schema_changes.describe(c) for c in problems.get("schema_changes") or []] + [
        bad_files.describe(b) for b in problems.get("bad_files") or []
    ]


def alert_kept_going(context, connection: str, result: dict | None) -> dict[str, str]:
    """Log every schema change and skipped file of a green sync and send ONE alert about them."""
    problems = of(result)
    found = lines(problems)
    if not found:
        return {}
    for line in found:
        log.warning("%s: %s", connection, line)
    from include.pipeline.observe.alerts import Alert, send, ui_url

    ti = context.get("ti")
    dag_id, run_id, task_id = getattr(ti, "dag_id", "?"), getattr(ti, "run_id", None), getattr(ti, "task_id", None)
    event = "schema_change" if problems["schema_changes"] else "bad_file"
    what = f"connection {connection}: the sync went on; " + " | ".join(found[:10])
    if len(found) > 10:
        what += f" | and {len(found) - 10} more (metrics.schema_changes, metrics.bad_files)"
    alert = Alert(event, dag_id, run_id, task_id=task_id, try_number=getattr(ti, "try_number", None), what=what,
                  url=ui_url(dag_id, run_id, task_id))  # fmt: skip
    return send(alert)
