"""Alerts against real receivers on 127.0.0.1 (aiosmtpd, http.server): one message per event per
channel, with DAG, run, task, what failed, the log tail and the UI link; no secret in any message;
nothing sent and nothing failing without the alert connections."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG

from include.pipeline.observe import alerts
from tests.observe.receivers import SmtpReceiver, WebhookReceiver, connection_env, free_port

BASE_URL = "http://127.0.0.1:8080"


@pytest.fixture
def receivers(monkeypatch, tmp_path):
    """Both receivers running, the alert connections pointing at them, logs and UI base URL set."""
    smtp_password, token = secrets.token_urlsafe(12), secrets.token_urlsafe(16)
    with SmtpReceiver("alerts", smtp_password) as box, WebhookReceiver() as hook:
        for key, value in connection_env(box, hook, token).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
        monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "logs"))
        alerts._extra_secrets.clear()
        yield SimpleNamespace(box=box, hook=hook, token=token, smtp_password=smtp_password, logs=tmp_path / "logs")


def task_context(logs, *, exception: BaseException, task_id: str = "ingest.shop_to_warehouse", try_number: int = 3):
    """A task callback context as Airflow builds it, with the try's log file in Airflow's layout."""
    ti = SimpleNamespace(
        dag_id="ecommerce_daily", run_id="scheduled__2026-01-05T00:00:00+00:00", task_id=task_id,
        try_number=try_number, map_index=-1,
    )  # fmt: skip
    folder = logs / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}" / f"task_id={task_id}"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"timestamp": f"2026-01-06T00:0{i}:00Z", "level": "info", "event": f"step {i} done"} for i in range(30)]
    lines.append({"timestamp": "2026-01-06T00:10:00Z", "level": "error", "event": "sync failed: connection refused"})
    (folder / f"attempt={try_number}.log").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return {"ti": ti, "task_instance": ti, "dag": DAG(ti.dag_id, schedule=None), "run_id": ti.run_id,
            "exception": exception}  # fmt: skip


def test_a_task_that_exhausted_its_retries_sends_one_email_and_one_webhook_with_every_field(receivers, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "wh-" + secrets.token_hex(8))
    leaked = f"could not connect: password={os.environ['WAREHOUSE_PASSWORD']} token={receivers.token}"
    context = task_context(receivers.logs, exception=RuntimeError(leaked))
    result = alerts.PipelineNotifier("task_failed")(context)
    assert result is None  # BaseNotifier.__call__; the outcome is what the receivers got
    box, hook = receivers.box, receivers.hook
    assert len(box.messages) == 1 and len(hook.posts) == 1
    mail, post = box.messages[0], hook.posts[0]
    assert box.logins == [("alerts", receivers.smtp_password)]  # the connection's login and password were used
    assert mail["to"] == ["oncall@example.com", "data@example.com"] and mail["from"] == "airflow@example.com"
    assert "task failed after its last try" in mail["subject"] and "ingest.shop_to_warehouse" in mail["subject"]
    run_link = f"{BASE_URL}/dags/ecommerce_daily/runs/scheduled__2026-01-05T00%3A00%3A00%2B00%3A00/tasks/ingest.shop_to_warehouse"
    for text in (mail["body"], post["json"]["text"]):
        assert "DAG: ecommerce_daily" in text
        assert "run: scheduled__2026-01-05T00:00:00+00:00" in text
        assert "task: ingest.shop_to_warehouse (try 3)" in text
        assert "RuntimeError: could not connect" in text
        assert "sync failed: connection refused" in text and "step 29 done" in text  # the log's last lines
        assert "step 5 done" not in text  # only the tail
        assert run_link in text
    assert post["path"] == "/services/T000/B000/hook"
    assert post["json"]["event"] == "task_failed" and post["json"]["task_id"] == "ingest.shop_to_warehouse"
    assert post["headers"]["Authorization"] == f"Bearer {receivers.token}"  # in the header only
    everything = mail["raw"] + json.dumps(post["json"])
    for secret in (os.environ["WAREHOUSE_PASSWORD"], receivers.token, receivers.smtp_password):
        assert secret not in everything
    assert "password=***" in post["json"]["text"]


def test_a_failed_run_sends_one_message_naming_the_reason_and_linking_the_run(receivers):
    ti = SimpleNamespace(dag_id="ecommerce_daily", run_id="manual__1", task_id="transform.orders.run",
                         try_number=1, map_index=-1)  # fmt: skip
    context = {"dag": DAG("ecommerce_daily", schedule=None), "run_id": "manual__1", "reason": "task_failure", "ti": ti}
    alerts.PipelineNotifier("run_failed")(context)
    assert len(receivers.box.messages) == 1 and len(receivers.hook.posts) == 1
    text = receivers.hook.posts[0]["json"]["text"]
    assert "DAG run failed" in text and "task_failure; last task: transform.orders.run" in text
    assert f"{BASE_URL}/dags/ecommerce_daily/runs/manual__1" in text
    assert receivers.box.messages[0]["subject"].startswith("[airflow] DAG run failed: ecommerce_daily (manual__1)")


def test_a_missed_deadline_sends_one_alert_through_the_callback_the_triggerer_runs(receivers):
    """The DeadlineAlert's AsyncCallback, called as Airflow's CallbackTrigger calls it (the
    deadline itself is found by the scheduler, which `airflow dags test` does not run)."""
    context = {  # Deadline.handle_miss's simple context
        "dag_run": {"dag_id": "ecommerce_daily", "dag_run_id": "scheduled__2026-01-05T00:00:00+00:00",
                    "state": "running", "data_interval_start": "2026-01-05T00:00:00Z",
                    "data_interval_end": "2026-01-06T00:00:00Z"},
        "deadline": {"id": "d1", "deadline_time": "2026-01-06T02:00:00Z"},
    }  # fmt: skip
    result = asyncio.run(alerts.deadline_missed(context=context, deadline_hours=2))
    assert result == {"email": "sent", "webhook": "sent"}
    assert len(receivers.box.messages) == 1 and len(receivers.hook.posts) == 1
    text = receivers.box.messages[0]["body"]
    assert "missed its deadline" in receivers.box.messages[0]["subject"]
    assert "not finished by its deadline 2026-01-06T02:00:00Z (2 h after it was queued)" in text
    assert "state running" in text and "/dags/ecommerce_daily/runs/scheduled__2026-01-05T00%3A00%3A00%2B00%3A00" in text


def test_the_dag_wires_the_deadline_to_that_callback():
    from airflow.sdk import AsyncCallback, DeadlineReference

    from dags.ecommerce_daily import DEADLINE_HOURS, ecommerce_daily

    dag = ecommerce_daily()
    (deadline,) = dag.deadline
    assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert deadline.interval.total_seconds() == DEADLINE_HOURS * 3600
    assert isinstance(deadline.callback, AsyncCallback)
    assert deadline.callback.path == "include.pipeline.observe.alerts.deadline_missed"
    assert deadline.callback.kwargs == {"deadline_hours": DEADLINE_HOURS}
    # none in `airflow dags test`'s process (no scheduler there; 3.3.2 fails such a run on success)
    assert alerts.deadline_alerts(2, argv=["airflow", "dags", "test", "ecommerce_daily", "2026-01-05"]) == []
    assert len(alerts.deadline_alerts(2, argv=["airflow", "scheduler"])) == 1


def test_without_alert_connections_nothing_is_sent_and_nothing_fails(monkeypatch, tmp_path):
    with SmtpReceiver("alerts", "x" * 12) as box, WebhookReceiver() as hook:
        monkeypatch.delenv("AIRFLOW_CONN_ALERTS_EMAIL", raising=False)
        monkeypatch.delenv("AIRFLOW_CONN_ALERTS_WEBHOOK", raising=False)
        context = task_context(tmp_path, exception=RuntimeError("boom"))
        alerts.PipelineNotifier("task_failed")(context)
        assert alerts.send(alerts.alert_from_context(context, "task_failed")) == {
            "email": "not configured",
            "webhook": "not configured",
        }
        assert asyncio.run(alerts.deadline_missed(context={}, deadline_hours=2)) == {
            "email": "not configured",
            "webhook": "not configured",
        }
        assert box.messages == [] and hook.posts == []


def test_a_receiver_that_is_down_costs_a_warning_not_the_run(receivers, monkeypatch, caplog):
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", json.dumps({"conn_type": "http", "host": closed}))
    result = alerts.send(alerts.Alert("run_failed", "ecommerce_daily", "r1", what="x"))
    assert result["email"] == "sent" and result["webhook"].startswith("failed: ConnectError")
    assert any("not sent by webhook" in r.getMessage() for r in caplog.records)


def test_an_email_connection_without_recipients_is_named_in_the_failure(receivers, monkeypatch):
    mail = json.loads(os.environ["AIRFLOW_CONN_ALERTS_EMAIL"])
    del mail["extra"]["to"]
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_EMAIL", json.dumps(mail))
    result = alerts.send(alerts.Alert("run_failed", "ecommerce_daily", "r1"))
    assert "Airflow connection 'alerts_email' has no extra 'to'" in result["email"]
    assert result["webhook"] == "sent" and receivers.box.messages == []


def test_an_unknown_event_is_refused_at_parse_time():
    with pytest.raises(ValueError, match="unknown alert event 'tsk_failed'"):
        alerts.PipelineNotifier("tsk_failed")
