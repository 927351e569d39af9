"""Schema changes and bad files a sync met: rows of metrics.schema_changes / metrics.bad_files from
the ingest task's metrics callback (its result, or the XCom of a sync that stopped), and one alert
for a sync that went on, sent to a real webhook receiver, never failing the task."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from include.pipeline.observe import alerts, callbacks, ingest_problems
from tests.observe.receivers import SmtpReceiver, WebhookReceiver, connection_env
from tests.support.metrics import runtime_ti

pytestmark = pytest.mark.integration

CHANGE = {"stream": "users", "column": "loyalty_tier", "change": "new_column", "detail": "not declared",
          "policy": "propagate_columns", "action": "column_added", "records": None}  # fmt: skip
TYPE_CHANGE = CHANGE | {"column": "age", "change": "type_change", "detail": "declared integer, sent string",
                        "action": "recorded", "records": 3}  # fmt: skip
BAD = {"stream": "products", "file": "products/2026-01-09/part-0000.jsonl.gz", "line": 812,
       "error": "EOFError: Compressed file ended", "found_by": "connector", "records_read": 811,
       "policy": "fail", "action": "sync_failed"}  # fmt: skip


def sync_task(result: dict | None, pushed: dict | None = None):
    ti = runtime_ti("ingest.shop_to_warehouse", 1, "success")
    xcoms = {"return_value": result, ingest_problems.XCOM_KEY: pushed, "ingest_engine": "embedded"}
    ti.xcom_pull = lambda task_ids, key: xcoms.get(key)
    return ti


def test_a_green_sync_records_its_schema_changes_once(metrics_params, sql):
    result = {"connection": "shop_to_warehouse", "engine": "embedded", "streams": {"users": {"records": 2}},
              "schema_changes": [CHANGE, TYPE_CHANGE], "bad_files": []}  # fmt: skip
    ti = sync_task(result)
    callbacks.record_sync({"ti": ti})
    callbacks.record_sync({"ti": ti})  # delivered twice: one row each
    assert sql("select stream, change, column_name, action, records from metrics.schema_changes order by 2") == [
        ("users", "new_column", "loyalty_tier", "column_added", None),
        ("users", "type_change", "age", "recorded", 3),
    ]
    assert sql("select count(*) from metrics.bad_files") == [(0,)]


def test_a_sync_that_stopped_on_a_bad_file_records_it_from_its_xcom(metrics_params, sql):
    ti = sync_task(None, pushed={"schema_changes": [], "bad_files": [BAD]})
    callbacks.record_sync({"ti": ti, "exception": RuntimeError("bad file in stream products: ...")})
    assert sql("select stream, file, line, records_read, action from metrics.bad_files") == [
        ("products", BAD["file"], 812, 811, "sync_failed")
    ]
    assert sql("select stream, status from metrics.syncs") == [("*", "failed")]


def test_a_sync_that_went_on_sends_one_alert_naming_each_change(monkeypatch):
    context = {"ti": SimpleNamespace(dag_id="ecommerce_daily", run_id="r1", task_id="ingest.shop_to_warehouse",
                                     try_number=1)}  # fmt: skip
    assert ingest_problems.alert_kept_going(context, "shop_to_warehouse", {"schema_changes": []}) == {}
    with SmtpReceiver("alerts", "pw-123456") as box, WebhookReceiver() as hook:
        for key, value in connection_env(box, hook, "token-123456").items():
            monkeypatch.setenv(key, value)
        alerts._extra_secrets.clear()
        sent = ingest_problems.alert_kept_going(context, "shop_to_warehouse", {"schema_changes": [CHANGE, TYPE_CHANGE]})
        assert sent == {"email": "sent", "webhook": "sent"}
        [post] = [p["json"] for p in hook.posts]
        assert len(box.messages) == 1
    assert post["event"] == "schema_change"
    assert "new column 'loyalty_tier'" in post["what"] and "type change 'age'" in post["what"]
    assert "the sync went on" in post["what"]


def test_a_stopped_sync_alerts_as_its_case():
    for message, event in (
        ("bad file in stream products: products/x.jsonl.gz line 3: ...", "bad_file"),
        ("disable_connection: ... schema change in stream users: new column 'x' ...", "schema_change"),
    ):
        context = {"ti": SimpleNamespace(dag_id="d", run_id="r", task_id="t", try_number=1, map_index=-1),
                   "exception": RuntimeError(message)}  # fmt: skip
        assert alerts.alert_from_context(context, "task_failed").event == event
