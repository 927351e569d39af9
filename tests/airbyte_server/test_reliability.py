"""Reliability cases 1-8 (docs/reliability.md) for the platform engine, against the fake Airbyte API.

Each test drives the operator the way Airflow does (execute; on TaskDeferred the serialized
trigger runs until its event and a FRESH operator resumes with it) and asserts figures from the
fake: jobs created, jobs left running, the task's outcome, attempts.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from tests.support.airbyte import RecordingTI, make_operator, run_deferrable

BOTH = pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "blocking"])
ACTIVE = ("pending", "running", "incomplete")


def run(op, ti, deferrable):
    if deferrable:
        return run_deferrable(op, {"ti": ti}, make_resumed=lambda: make_operator(deferrable=True))[0]
    return op.execute({"ti": ti})


def left_running(fake, connection_id) -> int:
    by_status = fake.jobs_by_status(connection_id)
    return sum(len(by_status.get(s, [])) for s in ACTIVE)


@BOTH
def test_happy_path_returns_job_figures_for_metrics(airbyte_api, applied, deferrable):
    airbyte_api.script_jobs(applied, "succeeded", rows_synced=2100, bytes_synced=420000)
    ti = RecordingTI()
    result = run(make_operator(deferrable=deferrable), ti, deferrable)
    [job] = airbyte_api.jobs(applied)
    assert result["engine"] == "platform" and result["connection"] == "shop_to_warehouse"
    assert (result["job_id"], result["records"], result["bytes"], result["attempts"]) == (job["jobId"], 2100, 420000, 1)
    assert ti.xcoms[0] == ("ingest_engine", "platform"), "the engine, read once, pushed first"
    assert ti.xcoms[1][0] == "airbyte_job" and ti.xcoms[1][1]["job_id"] == job["jobId"], "job id pushed at submit"
    assert left_running(airbyte_api, applied) == 0


def test_the_connection_id_is_looked_up_by_name_at_run_time(airbyte_api, applied):
    from include.pipeline.ingest.tasks import ingest_step

    op = ingest_step("shop_to_warehouse")
    assert op.connection_id == "" and op.task_id == "shop_to_warehouse", "no id known at parse time"
    assert len(airbyte_api.requests) == 0, "building the task calls nothing"
    run(op, RecordingTI(), True)
    assert op.connection_id == applied
    assert airbyte_api.request_count("GET", "/connections") >= 1


def test_case1_500_twice_on_job_creation_then_200_makes_exactly_one_job(airbyte_api, applied):
    airbyte_api.fail_next("POST", "/jobs", times=2, status=500)
    result = run(make_operator(), RecordingTI(), True)
    assert airbyte_api.request_count("POST", "/jobs", status=500) == 2
    assert airbyte_api.request_count("POST", "/jobs", status=200) == 1
    assert len(airbyte_api.jobs(applied)) == 1 and result["status"] == "succeeded"
    assert left_running(airbyte_api, applied) == 0


def test_case2_creation_times_out_after_airbyte_accepted_it_reattaches(airbyte_api, applied, platform_env):
    platform_env["configure"](extra={"timeout": 0.5})  # the client gives up; the job exists already
    airbyte_api.delay("POST", "/jobs", 2.0, times=1, when="after")
    result = run(make_operator(), RecordingTI(), True)
    jobs = airbyte_api.jobs(applied)
    assert len(jobs) == 1, "0 duplicate jobs"
    assert airbyte_api.request_count("POST", "/jobs") == 1, "the retry found the accepted job instead of posting again"
    assert result["job_id"] == jobs[0]["jobId"] and result["status"] == "succeeded"


def test_case2_409_sync_already_running_is_handled_by_reattaching(airbyte_api, applied):
    """Someone (the Airbyte UI, another scheduler) starts a sync between our look and our submit."""
    from include.pipeline.ingest.airbyte_server.api import AirbyteApi

    ui = AirbyteApi(airbyte_api.api_url, airbyte_api.client_id, airbyte_api.client_secret)
    airbyte_api.delay("POST", "/jobs", 0.5, times=1, when="before")  # holds OUR submit a moment

    def start_in_ui():
        _wait_for(lambda: airbyte_api.request_count("POST", "/jobs") == 1)
        ui.request("POST", "/jobs", json={"connectionId": applied, "jobType": "sync"})

    racer = threading.Thread(target=start_in_ui)
    racer.start()
    result = run(make_operator(), RecordingTI(), True)
    racer.join(5)
    assert airbyte_api.request_count("POST", "/jobs", status=409) == 1, "our submit met 409 try-again-later"
    assert airbyte_api.request_count("POST", "/jobs", status=200) == 1
    [job] = airbyte_api.jobs(applied)
    assert result["job_id"] == job["jobId"] and result["status"] == "succeeded", "reattached to the UI's job"


@BOTH
def test_case3_status_polls_fail_twice_then_succeed(airbyte_api, applied, deferrable):
    airbyte_api.script_jobs(applied, "succeeded")
    airbyte_api.fail_next("GET", "/jobs/{jobId}", times=2, status=500)
    result = run(make_operator(deferrable=deferrable), RecordingTI(), deferrable)
    assert airbyte_api.request_count("GET", "/jobs/{jobId}", status=500) == 2
    assert result["status"] == "succeeded" and len(airbyte_api.jobs(applied)) == 1


@BOTH
def test_case4_a_failed_job_fails_the_task_without_airflow_retries(airbyte_api, applied, deferrable):
    airbyte_api.script_jobs(applied, "failed")
    ti = RecordingTI()
    with pytest.raises(AirflowFailException, match=r"Airbyte job 1 of 'shop_to_warehouse' failed after 1 attempt"):
        run(make_operator(deferrable=deferrable), ti, deferrable)
    assert ti.xcoms[-1][1]["status"] == "failed", "the failure is recorded for the metrics"
    assert len(airbyte_api.jobs(applied)) == 1 and left_running(airbyte_api, applied) == 0


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_case4_5_the_metrics_row_of_a_failed_or_cancelled_job_has_its_job_id_attempts_and_engine(
    airbyte_api, applied, metrics_params, sql, monkeypatch, outcome
):
    """The failure callback has no return value to read: it reads the XCom `airbyte_job` and the
    engine the task run resolved (here from the Airflow Variable, which then changes)."""
    from include.pipeline.observe import callbacks

    monkeypatch.setenv("AIRBYTE_ENGINE", "embedded")
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_ENGINE", "platform")  # the Variable wins over the environment
    airbyte_api.script_jobs(applied, "incomplete_then_failed" if outcome == "failed" else "cancelled")
    ti = RecordingTI()
    op = make_operator()
    with pytest.raises(AirflowFailException, match=outcome) as raised:
        run_deferrable(op, {"ti": ti}, make_resumed=lambda: make_operator())
    [job] = airbyte_api.jobs(applied)
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_ENGINE", "embedded")  # changed after the run: not what ran
    context = {"ti": ti, "task": op, "exception": raised.value}
    callbacks.record_sync(context)
    callbacks.record_sync(context)  # delivered twice: still one row
    rows = sql("select stream, connection, engine, job_id, attempts, status, error from metrics.syncs")
    attempts = airbyte_api.attempts(job["jobId"])
    assert attempts == (2 if outcome == "failed" else 1)
    assert [r[:6] for r in rows] == [("*", "shop_to_warehouse", "platform", str(job["jobId"]), attempts, outcome)]
    assert f"Airbyte job {job['jobId']}" in rows[0][6]


def test_case5_a_job_cancelled_outside_airflow_fails_within_one_poll(airbyte_api, applied):
    airbyte_api.script_jobs(applied, "running")
    job_ids = []

    def cancel_in_ui(trigger):
        job_ids.append(trigger.job_id)
        airbyte_api.cancel_job_externally(trigger.job_id)

    ti = RecordingTI()
    with pytest.raises(AirflowFailException, match="cancelled outside Airflow"):
        run_deferrable(make_operator(), {"ti": ti}, between=cancel_in_ui)
    assert airbyte_api.job(job_ids[0])["polls"] == 1, "one poll after the cancel"
    assert ti.xcoms[-1][1]["status"] == "cancelled"


@BOTH
def test_case6_attempt_1_incomplete_attempt_2_succeeds_records_2_attempts(airbyte_api, applied, deferrable):
    airbyte_api.script_jobs(applied, "incomplete_then_succeeded")
    result = run(make_operator(deferrable=deferrable), RecordingTI(), deferrable)
    assert result["status"] == "succeeded"
    assert result["attempts"] == 2 == airbyte_api.attempts(result["job_id"])


def test_case7_execution_timeout_mid_sync_blocking_cancels_the_job(airbyte_api, applied):
    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.task_runner import _run_execute_callable

    airbyte_api.script_jobs(applied, "running")
    op = make_operator(deferrable=False, execution_timeout=timedelta(seconds=1))
    started = time.monotonic()
    with pytest.raises(AirflowTaskTimeout):
        _run_execute_callable({"ti": RecordingTI()}, op.execute, op)  # Airflow's own timeout + on_kill
    assert time.monotonic() - started < 5
    assert airbyte_api.jobs_by_status(applied) == {"cancelled": [1]}, "0 left running"


def test_case7_execution_timeout_mid_sync_deferrable_cancels_the_job(airbyte_api, applied):
    airbyte_api.script_jobs(applied, "running")
    op = make_operator(execution_timeout=timedelta(seconds=0.5))
    with pytest.raises(AirflowException, match="execution timeout"):
        run_deferrable(op, {"ti": RecordingTI()}, make_resumed=lambda: make_operator())
    assert airbyte_api.jobs_by_status(applied) == {"cancelled": [1]}
    assert airbyte_api.request_count("DELETE", "/jobs/{jobId}") == 1


def test_case7_trigger_timeout_from_the_scheduler_cancels_the_job(airbyte_api, applied):
    """The triggerer's own timeout: the task comes back as `__fail__`; the job must not be orphaned."""
    from airflow.sdk.bases.operator import TriggerFailureReason
    from airflow.sdk.exceptions import TaskDeferralTimeout

    airbyte_api.script_jobs(applied, "running")
    with pytest.raises(TaskDeferred):
        make_operator().execute({"ti": RecordingTI()})
    assert airbyte_api.jobs_by_status(applied) == {"running": [1]}
    with pytest.raises(TaskDeferralTimeout):
        make_operator().resume_execution("__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, {})
    assert airbyte_api.jobs_by_status(applied) == {"cancelled": [1]}


def test_case8_killed_while_waiting_in_the_worker_cancels_the_job(airbyte_api, applied):
    airbyte_api.script_jobs(applied, "running")
    op = make_operator(deferrable=False)
    errors = []
    worker = threading.Thread(target=lambda: _capture(errors, op.execute, {"ti": RecordingTI()}))
    worker.start()
    _wait_for(lambda: airbyte_api.jobs_by_status(applied).get("running"))
    op.on_kill()  # what Airflow calls on SIGTERM (kill, mark failed)
    worker.join(10)
    assert airbyte_api.jobs_by_status(applied) == {"cancelled": [1]}
    assert isinstance(errors[0], AirflowFailException)


def test_case8_marked_failed_while_deferred_cancels_the_job_via_trigger_on_kill(airbyte_api, applied):
    import asyncio

    airbyte_api.script_jobs(applied, "running")
    with pytest.raises(TaskDeferred) as deferred:
        make_operator().execute({"ti": RecordingTI()})
    asyncio.run(deferred.value.trigger.on_kill())  # the triggerer calls it on mark-failed / clear
    assert airbyte_api.jobs_by_status(applied) == {"cancelled": [1]}


def test_case8_a_retry_after_a_crash_reattaches_instead_of_submitting_a_duplicate(airbyte_api, applied):
    """The worker died (SIGKILL: no on_kill) with the job running; Airflow retries the task."""
    airbyte_api.script_jobs(applied, "running")
    with pytest.raises(TaskDeferred):
        make_operator().execute({"ti": RecordingTI()})  # try 1 submits, defers, then the machine dies
    [job] = airbyte_api.jobs(applied)
    airbyte_api.advance_job(job["jobId"])  # it still runs, and will succeed on its own
    airbyte_api.set_job_status(job["jobId"], "running")
    # it finishes while try 2 waits on it (3 s: try 2 must find it running even on a loaded machine)
    threading.Timer(3.0, lambda: airbyte_api.set_job_status(job["jobId"], "succeeded")).start()
    result = run(make_operator(), RecordingTI(), True)  # try 2
    assert airbyte_api.request_count("POST", "/jobs") == 1, "try 2 submitted nothing"
    assert result["job_id"] == job["jobId"] and result["status"] == "succeeded"
    assert len(airbyte_api.jobs(applied)) == 1 and left_running(airbyte_api, applied) == 0


def _capture(errors, fn, *args):
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001
        errors.append(exc)


def _wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
