"""Reliability case 22: a retry looks up the job an earlier try of the same task instance
started (kept in Airflow's task state store) before it submits anything.

Try 1 submits and defers, then its worker dies (no on_kill, no trigger event): the job id is all
that is left, in the task state store. Try 2 is a fresh operator with the same store.
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import TaskDeferred

from include.pipeline.ingest.airbyte_server.job_store import STORE_KEY
from tests.support.airbyte import RecordingTI, TaskStateStore, make_operator, run_deferrable


def crash_after_submit(store: TaskStateStore) -> int:
    """Try 1: submit, defer, die. Returns the job id it left in the store."""
    with pytest.raises(TaskDeferred):
        make_operator().execute({"ti": RecordingTI(), "task_state_store": store})
    return store.get(STORE_KEY)


def retry(store: TaskStateStore, ti: RecordingTI | None = None) -> dict:
    context = {"ti": ti or RecordingTI(), "task_state_store": store}
    return run_deferrable(make_operator(), context, make_resumed=lambda: make_operator())[0]


def test_case22_a_job_that_succeeded_between_the_crash_and_the_retry_is_not_submitted_again(airbyte_api, applied):
    airbyte_api.script_jobs(applied, "running", rows_synced=2100, bytes_synced=420000)
    store = TaskStateStore()
    job_id = crash_after_submit(store)
    assert job_id == airbyte_api.jobs(applied)[0]["jobId"], "the id is kept before the wait starts"
    airbyte_api.set_job_status(job_id, "succeeded")  # no try is watching it
    ti = RecordingTI()
    result = retry(store, ti)
    assert airbyte_api.request_count("POST", "/jobs") == 1, "try 2 submitted nothing"
    assert len(airbyte_api.jobs(applied)) == 1
    assert (result["job_id"], result["status"], result["records"], result["bytes"]) == (
        job_id, "succeeded", 2100, 420000,
    ), "the job's figures are reported as usual"  # fmt: skip
    assert ti.xcoms[-1][1]["job_id"] == job_id, "the metrics callback gets them too"
    assert store.values == {}, "finished: a later clear of the task syncs again"


def test_case22_a_job_still_running_is_reattached(airbyte_api, applied):
    airbyte_api.script_jobs(applied, "running")
    store = TaskStateStore()
    job_id = crash_after_submit(store)
    # only the stored id finds it: the connection's active-job listing fails throughout
    airbyte_api.fail_next("GET", "/jobs", times=100, status=500)
    airbyte_api.set_job_status(job_id, "running")
    import threading

    threading.Timer(1.0, lambda: airbyte_api.set_job_status(job_id, "succeeded")).start()
    result = retry(store)
    assert airbyte_api.request_count("POST", "/jobs") == 1 and result["job_id"] == job_id
    assert result["status"] == "succeeded" and store.values == {}


@pytest.mark.parametrize("ended", ["failed", "cancelled"])
def test_case22_a_job_that_failed_or_was_cancelled_gets_a_new_one(airbyte_api, applied, ended):
    airbyte_api.script_jobs(applied, "running", "succeeded")
    store = TaskStateStore()
    job_id = crash_after_submit(store)
    airbyte_api.set_job_status(job_id, ended)
    result = retry(store)
    assert airbyte_api.request_count("POST", "/jobs") == 2, "one new job"
    assert result["job_id"] != job_id and result["status"] == "succeeded"
    assert store.values == {}


def test_case22_an_id_airbyte_does_not_know_gets_a_new_job(airbyte_api, applied):
    airbyte_api.script_jobs(applied, "succeeded")
    store = TaskStateStore()
    store.set(STORE_KEY, 999)  # e.g. the Airbyte database was restored from a backup
    result = retry(store)
    assert airbyte_api.request_count("GET", "/jobs/{jobId}", status=404) == 1
    assert airbyte_api.request_count("POST", "/jobs") == 1 and result["status"] == "succeeded"


def test_case22_a_cleared_task_that_had_finished_syncs_again(airbyte_api, applied):
    airbyte_api.script_jobs(applied, "succeeded", "succeeded")
    store = TaskStateStore()
    first = retry(store)
    assert store.values == {}, "a finished try leaves nothing to recover"
    second = retry(store)  # the day rerun: a new sync, not the old job's figures
    assert airbyte_api.request_count("POST", "/jobs") == 2 and second["job_id"] != first["job_id"]
