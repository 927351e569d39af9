"""The alerts and the freshness gate in real runs: the session e2e stack, and a copy of it (`own_stack`) for the failing run."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest

from tests.observe.receivers import SmtpReceiver, WebhookReceiver, connection_env

pytestmark = pytest.mark.e2e

PROBE = Path(__file__).with_name("alerts_probe_dag.py")


def test_the_daily_run_passed_the_gate_at_its_first_check_with_no_alert_configured(stack):
    """The stack's demo run synced every stream in the same run: one check per table, no wait; no
    alert connection exists there, and the run is green."""
    assert "AIRFLOW_CONN_ALERTS_EMAIL" not in stack.env and "AIRFLOW_CONN_ALERTS_WEBHOOK" not in stack.env
    assert "run state: success" in stack.first_run.stdout
    (run_id,) = stack.sql(
        "select run_id from metrics.freshness_checks group by run_id order by min(checked_at) limit 1"
    )[0]
    checks = stack.sql(
        "select table_name, count(*), bool_and(synced_this_run), bool_or(is_stale)"
        " from metrics.freshness_checks where run_id = %s group by 1 order by 1",
        (run_id,),
    )
    assert checks == [(t, 1, True, False) for t in ("raw.products", "raw.purchases", "raw.users")]
    tries = stack.sql(
        "select task_id, state from metrics.task_runs where run_id = %s and task_id = 'freshness'", (run_id,)
    )
    assert tries == [("freshness", "success")]


def test_a_task_failing_all_its_tries_sends_one_task_alert_and_one_run_alert_per_channel(own_stack, tmp_path):
    """`airflow dags test` of a DAG whose task fails 3 tries (2 retries) on the stack's Airflow,
    alert connections pointing at the receivers: no storm, one alert per event per channel."""
    dags = tmp_path / "dags"  # `dags test -f` needs the file inside the dags folder
    dags.mkdir()
    shutil.copy(PROBE, dags / PROBE.name)
    with SmtpReceiver("alerts", secrets.token_hex(8)) as box, WebhookReceiver() as hook:
        env = connection_env(box, hook, secrets.token_hex(8)) | {"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
        own_stack.env.update(env)  # a copy of the session stack: no other test sees these
        proc = own_stack.cli(
            "airflow", "dags", "test", "alerts_probe", "2026-01-05", "-f", str(dags / PROBE.name), check=False
        )
        out = proc.stdout + proc.stderr
        tries = out.count("the source answered 503")
        events = sorted(p["json"]["event"] for p in hook.posts)
        assert events == ["run_failed", "task_failed"], (events, out[-4000:])
        subjects = sorted(m["subject"].split(":")[0] for m in box.messages)
        assert subjects == ["[airflow] DAG run failed", "[airflow] task failed after its last try"]
        task_alert = next(p["json"] for p in hook.posts if p["json"]["event"] == "task_failed")
        assert task_alert["task_id"] == "always_fails" and task_alert["try_number"] == 3, task_alert
        assert "RuntimeError: the source answered 503" in task_alert["text"]
        assert tries >= 3, f"3 tries expected, the log shows the error {tries} times"
        assert os.environ.get("AIRFLOW_CONN_ALERTS_EMAIL") is None
