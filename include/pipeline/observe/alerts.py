"""Alerts: someone hears about a failed task, a failed run, stale raw data and a missed deadline.

Airflow notifiers (`PipelineNotifier`, a BaseNotifier) on the DAG's callbacks, and an async
DeadlineAlert callback (`deadline_missed`, run by the triggerer). Each event sends ONE message to
each configured channel:

- email: the Airflow connection `alerts_email` (type smtp: host, port, login, password; extra
  `to` (comma-separated), `from_email`, and the SMTP provider's `disable_ssl` / `disable_tls`),
  sent with apache-airflow-providers-smtp's SmtpHook;
- webhook: the Airflow connection `alerts_webhook`: `host` is the full URL (a Slack incoming
  webhook, or anything that takes Slack's `{"text": ...}` JSON by POST); a `password`, if set,
  is sent as `Authorization: Bearer`.

A channel whose connection does not exist is silent; no channel at all sends nothing and fails
nothing. A failing channel logs one warning and never fails the task or the callback.

On retries: tasks alert from `on_failure_callback`, which Airflow calls only when the try was the
last one (a try with retries left calls `on_retry_callback`), so a task retried twice and failing
sends one message. A message carries the DAG, run, task, what failed, the last lines of the task's
log and a link to the run in the web UI (`[api] base_url`); every known secret is masked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.sdk import AsyncCallback, BaseHook, BaseNotifier, DeadlineAlert, DeadlineReference

log = logging.getLogger("stack.alerts")

EMAIL_CONN_ID = "alerts_email"
WEBHOOK_CONN_ID = "alerts_webhook"
LOG_TAIL_LINES = 20
TIMEOUT_SECONDS = 10.0
SECRET_ENV = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|^AIRFLOW_CONN_", re.IGNORECASE)
EVENTS = {
    "task_failed": "task failed after its last try",
    "run_failed": "DAG run failed",
    "stale_data": "raw data stale: the freshness gate timed out",
    "deadline_missed": "DAG run missed its deadline",
    # ingest: what a sync met that its declaration did not say (observe/ingest_problems.py); a sync
    # that went on alerts from its task, one that stopped fails the task and alerts as below
    "schema_change": "schema change met by a sync",
    "bad_file": "a file the sync could not read whole",
}


@dataclass
class Alert:
    """What one message says; the same text goes to every channel."""

    event: str
    dag_id: str
    run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    what: str = ""
    log_tail: list[str] = field(default_factory=list)
    url: str | None = None

    @property
    def subject(self) -> str:
        where = f"{self.dag_id}" + (f".{self.task_id}" if self.task_id else "")
        return f"[airflow] {EVENTS.get(self.event, self.event)}: {where} ({self.run_id})"

    def text(self) -> str:
        lines = [
            self.subject,
            f"DAG: {self.dag_id}",
            f"run: {self.run_id}",
        ]
        if self.task_id:
            lines.append(f"task: {self.task_id}" + (f" (try {self.try_number})" if self.try_number else ""))
        lines.append(f"what: {self.what or EVENTS.get(self.event, self.event)}")
        if self.url:
            lines.append(f"link: {self.url}")
        if self.log_tail:
            lines += ["", f"last {len(self.log_tail)} log lines:", *self.log_tail]
        return mask("\n".join(lines))

    def payload(self) -> dict[str, Any]:
        """Slack's incoming-webhook JSON (`text`), with the fields also as keys for other receivers."""
        text = self.text()
        fields = {"event": self.event, "dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id}
        fields |= {"try_number": self.try_number, "what": mask(self.what), "url": self.url}
        return {"text": text, **fields}


def _secrets() -> set[str]:
    """Values that must never appear in a message: secret-looking environment values, alert passwords."""
    found = {v for k, v in os.environ.items() if SECRET_ENV.search(k) and len(v) >= 6}
    found |= {v for v in _extra_secrets if v}
    return found


_extra_secrets: set[str] = set()


def mask(text: str) -> str:
    """Replace every known secret (and whatever Airflow's secrets masker knows) with ***."""
    for secret in sorted(_secrets(), key=len, reverse=True):
        text = text.replace(secret, "***")
    try:
        from airflow.sdk._shared.secrets_masker.secrets_masker import redact

        text = str(redact(text))
    except Exception:  # noqa: BLE001, S110 - the explicit list above is the guarantee
        pass
    return text


def ui_url(dag_id: str, run_id: str | None, task_id: str | None = None) -> str | None:
    """Link to the run (or the task in it) in the web UI, from `[api] base_url`."""
    base = os.environ.get("AIRFLOW__API__BASE_URL")
    if not base:
        try:
            from airflow.configuration import conf

            base = conf.get("api", "base_url", fallback=None)
        except Exception:  # noqa: BLE001
            base = None
    if not base or not run_id:
        return None
    url = f"{base.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return url + (f"/tasks/{quote(task_id, safe='')}" if task_id else "")


def log_tail(ti, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of the task try's local log file (Airflow's default file layout), if it is there."""
    try:
        from airflow.configuration import conf

        folder = Path(conf.get("logging", "base_log_folder"))
        mapped = f"map_index={ti.map_index}/" if getattr(ti, "map_index", -1) >= 0 else ""
        path = (
            folder / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}" / f"task_id={ti.task_id}"
            / f"{mapped}attempt={ti.try_number}.log"
        )  # fmt: skip
        if not path.is_file():
            return []
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 64_000))
            raw = fh.read().decode("utf-8", "replace").splitlines()[-lines:]
    except Exception:  # noqa: BLE001 - the log tail is a nicety
        return []
    out = []
    for line in raw:
        try:
            rec = json.loads(line)
            out.append(f"{rec.get('timestamp', '')} {rec.get('level', '')} {rec.get('event', '')}".strip())
        except (ValueError, AttributeError):
            out.append(line)
    return out


def alert_from_context(context, event: str) -> Alert:
    """Build the alert of a task or DAG callback context (Airflow's template context)."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", None)
    exc = context.get("exception")
    if event == "task_failed" and exc is not None and "stale raw data" in str(exc):
        event = "stale_data"
    elif event == "task_failed" and exc is not None and "bad file in stream" in str(exc):
        event = "bad_file"
    elif event == "task_failed" and exc is not None and "schema change in stream" in str(exc):
        event = "schema_change"
    if event == "run_failed":
        failed = getattr(ti, "task_id", None)
        what = f"{context.get('reason') or 'the run failed'}" + (f"; last task: {failed}" if failed else "")
        return Alert(event, dag_id, run_id, what=what, log_tail=log_tail(ti) if ti else [], url=ui_url(dag_id, run_id))
    what = f"{type(exc).__name__}: {exc}" if exc is not None else "the task failed"
    task_id = getattr(ti, "task_id", None)
    return Alert(
        event, dag_id, run_id, task_id=task_id, try_number=getattr(ti, "try_number", None), what=what,
        log_tail=log_tail(ti) if ti else [], url=ui_url(dag_id, run_id, task_id),
    )  # fmt: skip


def _connection(conn_id: str):
    """The Airflow connection, or None when it is not configured (the channel is then silent)."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException / the SDK's CONNECTION_NOT_FOUND
        if "not" in str(exc).lower() and "found" in str(exc).lower() or "NotFound" in type(exc).__name__:
            return None
        raise
    if conn.password:
        _extra_secrets.add(conn.password)
    return conn


def send_email(alert: Alert) -> bool:
    """Mail the alert through the `alerts_email` connection; False when it is not configured."""
    conn = _connection(EMAIL_CONN_ID)
    if conn is None:
        return False
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    extra = conn.extra_dejson
    to = [a.strip() for a in str(extra.get("to") or "").split(",") if a.strip()]
    if not to:
        raise ValueError(f"Airflow connection {EMAIL_CONN_ID!r} has no extra 'to' (comma-separated recipients)")
    body = alert.text()
    html = "<pre>" + body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</pre>"
    with SmtpHook(smtp_conn_id=EMAIL_CONN_ID) as hook:
        hook.send_email_smtp(to=to, subject=mask(alert.subject), html_content=html,
                             from_email=extra.get("from_email") or conn.login or "airflow@localhost")  # fmt: skip
    return True


def send_webhook(alert: Alert) -> bool:
    """POST the alert as Slack-compatible JSON to the `alerts_webhook` URL; False when not configured."""
    conn = _connection(WEBHOOK_CONN_ID)
    if conn is None:
        return False
    url = conn.host or ""
    if "://" not in url:
        scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
        url = f"{scheme}://{url}" + (f":{conn.port}" if conn.port else "") + "/" + (conn.schema or "").lstrip("/")
    headers = {"Content-Type": "application/json"}
    if conn.password:
        headers["Authorization"] = f"Bearer {conn.password}"
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"Airflow connection {WEBHOOK_CONN_ID!r}: host must be an http(s) URL, got scheme {url.split(':')[0]!r}"
        )
    import httpx

    httpx.post(url, json=alert.payload(), headers=headers, timeout=TIMEOUT_SECONDS).raise_for_status()
    return True


CHANNELS = {"email": send_email, "webhook": send_webhook}


def send(alert: Alert) -> dict[str, str]:
    """Send to every configured channel; never raises. Returns {channel: sent | not configured | failed: ...}."""
    out = {}
    for name, channel in CHANNELS.items():
        try:
            out[name] = "sent" if channel(alert) else "not configured"
        except Exception as exc:  # noqa: BLE001 - an alert must never fail the run
            out[name] = f"failed: {type(exc).__name__}: {mask(str(exc))[:300]}"
            log.warning("alert %r not sent by %s: %s", alert.subject, name, out[name])
    log.info("alert %s: %s", alert.subject, ", ".join(f"{k} {v}" for k, v in out.items()))
    return out


class PipelineNotifier(BaseNotifier):
    """on_failure_callback of tasks (`task_failed`, or `stale_data` for the freshness gate) and DAGs (`run_failed`)."""

    def __init__(self, event: str = "task_failed") -> None:
        super().__init__()
        if event not in EVENTS:
            raise ValueError(f"unknown alert event {event!r}: expected one of {', '.join(EVENTS)}")
        self.event = event

    def render_template_fields(self, context, jinja_env=None) -> None:
        """Nothing to render; and under `airflow dags test` a DAG callback's `dag` is a SerializedDAG,
        which has no template environment (BaseNotifier's rendering fails there)."""
        if self.template_fields:
            super().render_template_fields(context, jinja_env)

    def notify(self, context) -> dict[str, str]:
        try:
            alert = alert_from_context(context, self.event)
        except Exception as exc:  # noqa: BLE001
            log.warning("alert not built from the callback context: %s: %s", type(exc).__name__, exc)
            return {}
        return send(alert)


def deadline_alert(context: dict | None, deadline_hours: float | None = None) -> Alert:
    """The alert of a missed deadline, from the simple context the scheduler gives the callback."""
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    dag_id = run.get("dag_id", "?")
    what = f"not finished by its deadline {deadline}" + (
        f" ({deadline_hours:g} h after it was queued)" if deadline_hours else ""
    )
    what += (
        f"; state {run.get('state')}, data interval {run.get('data_interval_start')} - {run.get('data_interval_end')}"
    )
    return Alert("deadline_missed", dag_id, run.get("dag_run_id") or run.get("run_id"), what=what,
                 url=ui_url(dag_id, run.get("dag_run_id") or run.get("run_id")))  # fmt: skip


async def deadline_missed(context: dict | None = None, deadline_hours: float | None = None) -> dict[str, str]:
    """DeadlineAlert callback (AsyncCallback: run by the triggerer): one message per missed deadline."""
    alert = deadline_alert(context, deadline_hours)
    return await asyncio.to_thread(send, alert)


def under_dags_test(argv: list[str] | None = None) -> bool:
    """True in the process of `airflow dags test` (what `make demo` and the e2e tests run)."""
    args = [a for a in (sys.argv if argv is None else argv)[1:] if not a.startswith("-")]
    return args[:2] == ["dags", "test"]


def deadline_alerts(hours: float, argv: list[str] | None = None) -> list[DeadlineAlert]:
    """The daily run's DeadlineAlert: alert when a run is not finished `hours` after it was queued.

    A scheduled run is queued when its data interval ends, so this is "not finished `hours` after
    the interval's end"; a backfill or a manual run of an old date gets `hours` from when it was
    queued (a logical-date reference would make every backfill miss its deadline at once).
    None under `airflow dags test`: only the scheduler looks for missed deadlines, and Airflow
    3.3.2's `dags test` cannot finish a successful run of a DAG that has one (DagRun.update_state
    looks the alerts up by id, but the DAG `dags test` builds holds their definitions: StatementError).
    """
    if under_dags_test(argv):
        return []
    return [
        DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(hours=hours),
            callback=AsyncCallback(deadline_missed, kwargs={"deadline_hours": hours}),
        )
    ]
