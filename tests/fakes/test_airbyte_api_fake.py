"""The fake Airbyte public API, exercised through the real Airflow Airbyte provider.

Each test talks real HTTP to a fresh fake on 127.0.0.1 (fixtures in tests/support/airbyte.py): the
provider's AirbyteHook / AirbyteTriggerSyncOperator / AirbyteJobSensor / AirbyteSyncTrigger,
which go through the airbyte-api SDK (OAuth client-credentials token, httpx).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from airbyte_api import api, models
from airflow.providers.airbyte.hooks.airbyte import AirbyteHook
from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
from airflow.providers.airbyte.sensors.airbyte import AirbyteJobSensor
from airflow.providers.airbyte.triggers.airbyte import AirbyteSyncTrigger
from airflow.providers.common.compat.sdk import AirflowException

from tests.support.http import request

from .airbyte_api import ENDPOINTS, PROBLEM_BASE, FakeAirbyteApi

pytestmark = pytest.mark.usefixtures("airbyte_conn_env")


def _raw(
    fake: FakeAirbyteApi,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    content_type: str = "application/json",
    data: bytes | None = None,
) -> tuple[int, str, Any]:
    """A plain HTTP call (no SDK), returning (status, content type, parsed body)."""
    reply = request(fake.api_url + path, method, body, data=data, token=token, content_type=content_type, timeout=5)
    assert reply.status, f"{method} {path}: no answer ({reply.error})"
    return reply.status, reply.content_type, reply.body


def _token(fake: FakeAirbyteApi) -> str:
    status, _, body = _raw(
        fake,
        "POST",
        "/applications/token",
        {"client_id": fake.client_id, "client_secret": fake.client_secret, "grant-type": "client_credentials"},
    )
    assert status == 200
    return body["access_token"]


def _operator(connection_id: str, **kwargs: Any) -> AirbyteTriggerSyncOperator:
    kwargs.setdefault("wait_seconds", 0.01)
    kwargs.setdefault("timeout", 10)
    return AirbyteTriggerSyncOperator(task_id="airbyte_sync", connection_id=connection_id, asynchronous=False, **kwargs)


# ------------------------------------------------------------------------------------------
# auth
# ------------------------------------------------------------------------------------------
def test_test_connection_ok(airbyte_api: FakeAirbyteApi) -> None:
    assert AirbyteHook(airbyte_conn_id="airbyte_default").test_connection() == (
        True,
        "Connection successfully tested",
    )
    assert airbyte_api.request_count("GET", "/health", status=200) == 1
    # /health is public: the SDK sends it without a token, so no token was even requested.
    assert airbyte_api.tokens_issued == 0
    assert airbyte_api.request_count("POST", "/applications/token") == 0


def test_wrong_secret_fails_with_401_on_first_authenticated_call(airbyte_api, airbyte_conn_env) -> None:
    conn = airbyte_api.seed_connection()
    airbyte_conn_env(password="not-the-secret")
    hook = AirbyteHook(airbyte_conn_id="airbyte_default")
    # The provider's test_connection only hits the unauthenticated /health: it cannot see a
    # wrong secret.
    assert hook.test_connection() == (True, "Connection successfully tested")
    with pytest.raises(AirflowException, match="Unexpected status code 401 from token endpoint"):
        hook.submit_sync_connection(conn["connectionId"])
    assert airbyte_api.request_count("POST", "/applications/token", status=401) == 1
    assert airbyte_api.request_count("POST", "/jobs") == 0
    assert airbyte_api.tokens_issued == 0
    assert airbyte_api.jobs() == []


def test_legacy_oss_server_rejects_form_encoded_token_request(airbyte_api) -> None:
    """The SDK posts the token request form-encoded; older OSS servers only parsed JSON and
    answered 401, so the provider could not authenticate at all."""
    conn = airbyte_api.seed_connection()
    airbyte_api.accept_form_encoded_token = False
    with pytest.raises(AirflowException, match="401 from token endpoint"):
        AirbyteHook().submit_sync_connection(conn["connectionId"])
    token_requests = [r for r in airbyte_api.requests if r.route == "/applications/token"]
    assert [r.status for r in token_requests] == [401]
    # the same credentials as JSON are fine
    assert _token(airbyte_api)


def test_token_endpoint_and_bearer_checks_over_raw_http(airbyte_api) -> None:
    fake = airbyte_api
    good = {"client_id": fake.client_id, "client_secret": fake.client_secret, "grant-type": "client_credentials"}

    status, ctype, body = _raw(fake, "POST", "/applications/token", good)
    assert (status, ctype) == (200, "application/json")
    assert body["token_type"] == "Bearer" and body["expires_in"] == 180 and body["access_token"]

    status, _, body = _raw(fake, "POST", "/applications/token", {**good, "client_secret": "nope"})
    assert status == 401
    assert body["_embedded"]["errors"][0]["message"] == "Invalid client id or token"

    form = f"client_id={fake.client_id}&client_secret={fake.client_secret}&grant_type=client_credentials"
    status, _, body = _raw(
        fake, "POST", "/applications/token", data=form.encode(), content_type="application/x-www-form-urlencoded"
    )
    assert status == 200 and body["token_type"] == "Bearer"

    status, _, body = _raw(fake, "POST", "/applications/token", data=b"x", content_type="text/plain")
    assert status == 415 and body["message"] == "Unsupported Media Type"

    assert fake.tokens_issued == 2
    conn = fake.seed_connection()
    assert _raw(fake, "GET", f"/connections/{conn['connectionId']}")[0] == 401  # no token
    assert _raw(fake, "GET", f"/connections/{conn['connectionId']}", token="forged")[0] == 401
    token = _token(fake)
    status, _, body = _raw(fake, "GET", f"/connections/{conn['connectionId']}", token=token)
    assert status == 200 and body["connectionId"] == conn["connectionId"]
    fake.revoke_tokens()
    assert _raw(fake, "GET", f"/connections/{conn['connectionId']}", token=token)[0] == 401

    # unknown ids are RFC 7807 problems
    status, ctype, body = _raw(fake, "GET", "/jobs/999", token=_token(fake))
    assert (status, ctype) == (404, "application/problem+json")
    assert body == {
        "type": f"{PROBLEM_BASE}#resource-not-found",
        "title": "resource-not-found",
        "status": 404,
        "detail": "Could not find a resource for: 999",
    }


# ------------------------------------------------------------------------------------------
# hook: jobs
# ------------------------------------------------------------------------------------------
def test_submit_get_status_cancel(airbyte_api) -> None:
    conn = airbyte_api.seed_connection()
    cid = conn["connectionId"]
    airbyte_api.script_jobs(cid, "running")
    hook = AirbyteHook(airbyte_conn_id="airbyte_default")

    job = hook.submit_sync_connection(cid)
    assert job.job_id == 1
    assert job.status == models.JobStatusEnum.RUNNING
    assert job.job_type == models.JobTypeEnum.SYNC
    assert job.connection_id == cid

    details = hook.get_job_details(job.job_id)
    assert (details.job_id, details.status, details.last_updated_at) == (1, "running", None)
    assert hook.get_job_status(job.job_id) == "running"

    cancelled = hook.cancel_job(job.job_id)
    assert cancelled.status == models.JobStatusEnum.CANCELLED
    assert cancelled.last_updated_at is not None
    assert hook.get_job_status(job.job_id) == "cancelled"

    assert airbyte_api.request_count("POST", "/jobs") == 1
    assert airbyte_api.request_count("DELETE", "/jobs/{jobId}") == 1
    assert airbyte_api.request_count("GET", "/jobs/*") == 3
    assert airbyte_api.jobs_by_status() == {"cancelled": [1]}
    assert airbyte_api.tokens_issued == 1  # cached for expires_in=180 s


def test_409_when_a_job_of_the_connection_is_running(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.script_jobs(cid, "running")
    hook = AirbyteHook()
    first = hook.submit_sync_connection(cid)

    with pytest.raises(AirflowException) as err:
        hook.submit_sync_connection(cid)
    message = str(err.value)
    assert "Status 409" in message
    assert "application/problem+json" in message
    assert f"A sync is already running for: {cid}" in message
    assert "try-again-later" in message
    assert airbyte_api.request_count("POST", "/jobs", status=409) == 1
    assert [j["jobId"] for j in airbyte_api.jobs()] == [first.job_id]

    hook.cancel_job(first.job_id)
    second = hook.submit_sync_connection(cid)
    assert second.job_id == first.job_id + 1
    assert airbyte_api.jobs_by_status() == {"cancelled": [1], "running": [2]}


# ------------------------------------------------------------------------------------------
# operator (synchronous wait)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("outcome", "error", "gets", "attempts", "served"),
    [
        ("succeeded", None, 1, 1, ["succeeded"]),
        ("failed", "Job failed", 1, 1, ["failed"]),
        ("cancelled", "Job was cancelled", 1, 1, ["cancelled"]),
        ("incomplete_then_succeeded", None, 3, 2, ["incomplete", "running", "succeeded"]),
        ("incomplete_then_failed", "Job failed", 3, 2, ["incomplete", "running", "failed"]),
    ],
)
def test_operator_outcomes(airbyte_api, outcome, error, gets, attempts, served) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.script_jobs(cid, outcome, rows_synced=7)
    op = _operator(cid)
    if error is None:
        assert op.execute(context={}) == 1
    else:
        with pytest.raises(AirflowException, match=error):
            op.execute(context={})
    job = airbyte_api.job(1)
    assert job["status"] == served[-1]
    assert job["attempts"] == attempts
    assert job["servedStatuses"] == served
    assert airbyte_api.request_count("GET", "/jobs/{jobId}") == gets
    assert airbyte_api.request_count("POST", "/jobs") == 1
    assert job["rowsSynced"] == (7 if served[-1] == "succeeded" else 0)


def test_operator_asynchronous_returns_job_id_for_the_sensor(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    job_id = AirbyteTriggerSyncOperator(task_id="t", connection_id=cid, asynchronous=True).execute(context={})
    assert job_id == 1
    assert airbyte_api.request_count("GET", "/jobs/*") == 0
    assert airbyte_api.job(1)["status"] == "running"


def test_operator_timeout_cancels_the_job(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.script_jobs(cid, "running")
    with pytest.raises(AirflowException, match="is not ready after 0.2s"):
        _operator(cid, timeout=0.2, wait_seconds=0.05).execute(context={})
    assert airbyte_api.job(1)["status"] == "cancelled"
    assert airbyte_api.request_count("DELETE", "/jobs/{jobId}") == 1


# ------------------------------------------------------------------------------------------
# sensor / trigger
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", False),
        ("running", False),
        ("incomplete", False),
        ("succeeded", True),
        ("failed", "Job failed"),
        ("cancelled", "Job was cancelled"),
    ],
)
def test_sensor_poke(airbyte_api, status, expected) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.script_jobs(cid, [status], polls_per_step=None)
    job_id = AirbyteHook().submit_sync_connection(cid).job_id
    sensor = AirbyteJobSensor(task_id="wait", airbyte_job_id=job_id, poke_interval=0.01, timeout=5)
    if isinstance(expected, bool):
        assert sensor.poke(context={}) is expected
    else:
        with pytest.raises(AirflowException, match=expected):
            sensor.poke(context={})
    assert airbyte_api.job(job_id)["servedStatuses"] == [status]


@pytest.mark.parametrize(
    ("outcome", "event_status"),
    [("succeeded", "success"), ("cancelled", "cancelled"), ("failed", "error")],
)
def test_trigger_events(airbyte_api, outcome, event_status) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.script_jobs(cid, outcome, start_pending=True)
    job_id = AirbyteHook().submit_sync_connection(cid).job_id
    assert airbyte_api.job(job_id)["status"] == "pending"
    trigger = AirbyteSyncTrigger(
        job_id=job_id, conn_id="airbyte_default", end_time=time.time() + 10, poll_interval=0.01
    )

    async def first_event():
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload["status"] == event_status
    assert event.payload["job_id"] == job_id
    assert airbyte_api.job(job_id)["servedStatuses"] == ["running", outcome]


# ------------------------------------------------------------------------------------------
# tokens
# ------------------------------------------------------------------------------------------
def test_short_token_lifetime_sdk_fetches_a_token_per_call(airbyte_api) -> None:
    """expires_in <= 60: the SDK's 60 s safety margin makes it treat the token as expired at
    once, so it requests a new token before every API call - and the long job still works."""
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.token_lifetime = 0.5  # reported expires_in = 1
    airbyte_api.script_jobs(cid, "incomplete_then_succeeded", polls_per_step=2)
    assert _operator(cid, wait_seconds=0.05).execute(context={}) == 1
    api_calls = airbyte_api.request_count("POST", "/jobs") + airbyte_api.request_count("GET", "/jobs/{jobId}")
    assert api_calls == 1 + 6
    assert airbyte_api.tokens_issued == api_calls
    assert airbyte_api.request_count(status=401) == 0
    assert airbyte_api.job(1)["attempts"] == 2


def test_token_expiring_server_side_mid_job_is_survived_by_polling(airbyte_api) -> None:
    """The server drops the token before the client expects (expires_in says 1 h): one poll
    gets 401, the SDK forgets the token (no retry of that call), the provider's wait loop logs
    and retries, the next poll fetches a new token, the job ends succeeded."""
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.token_lifetime = 0.25
    airbyte_api.token_expires_in = 3600
    airbyte_api.script_jobs(cid, "succeeded", seconds_per_step=0.6)
    assert _operator(cid, wait_seconds=0.1).execute(context={}) == 1
    assert airbyte_api.request_count("GET", "/jobs/{jobId}", status=401) >= 1
    assert airbyte_api.tokens_issued >= 2
    assert airbyte_api.job(1)["status"] == "succeeded"


def test_revoked_token_fails_job_submission_without_retry(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.token_expires_in = 3600
    hook = AirbyteHook()
    airbyte_api.script_jobs(cid, "running")
    job = hook.submit_sync_connection(cid)
    hook.cancel_job(job.job_id)
    airbyte_api.revoke_tokens()
    with pytest.raises(AirflowException, match="Status 401"):
        hook.submit_sync_connection(cid)
    assert len(airbyte_api.jobs()) == 1
    # the 401 made the SDK drop its cached token: the next call authenticates again
    assert hook.submit_sync_connection(cid).job_id == 2
    assert airbyte_api.tokens_issued == 2


# ------------------------------------------------------------------------------------------
# fault knobs, through the provider
# ------------------------------------------------------------------------------------------
def test_500_after_the_job_was_accepted_then_409_on_retry(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.script_jobs(cid, "running")
    airbyte_api.fail_next("POST", "/jobs", when="after")
    hook = AirbyteHook()
    with pytest.raises(AirflowException, match="Status 500"):
        hook.submit_sync_connection(cid)
    assert airbyte_api.jobs_by_status() == {"running": [1]}  # accepted despite the 500
    with pytest.raises(AirflowException, match="Status 409"):
        hook.submit_sync_connection(cid)
    assert [(r.method, r.path, r.status, r.fault) for r in airbyte_api.requests if r.route == "/jobs"] == [
        ("POST", "/jobs", 500, "status 500"),
        ("POST", "/jobs", 409, None),
    ]


def test_500_before_the_job_is_created_creates_nothing(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.fail_next("POST", "/jobs", times=2)
    hook = AirbyteHook()
    for _ in range(2):
        with pytest.raises(AirflowException, match="Status 500"):
            hook.submit_sync_connection(cid)
    assert airbyte_api.jobs() == []
    assert hook.submit_sync_connection(cid).job_id == 1


def test_client_timeout_after_the_server_accepted_the_job(airbyte_api, airbyte_conn_env) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_conn_env(extra={"timeout": 0.3})
    airbyte_api.delay("POST", "/jobs", 1.0, times=1)
    started = time.monotonic()
    with pytest.raises(AirflowException, match="(?i)timed out"):
        AirbyteHook().submit_sync_connection(cid)
    assert time.monotonic() - started < 0.9
    assert airbyte_api.jobs_by_status() == {"running": [1]}


def test_status_polls_failing_are_retried_by_the_operator(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.script_jobs(cid, "succeeded", polls_per_step=1)
    airbyte_api.fail_next("GET", "/jobs/{jobId}", times=2, status=503)
    airbyte_api.fail_next("GET", "/jobs/*", times=1, disconnect=True)
    assert _operator(cid).execute(context={}) == 1
    statuses = [r.status for r in airbyte_api.requests if r.route == "/jobs/{jobId}"]
    assert statuses == [503, 503, None, 200]
    assert airbyte_api.job(1)["polls"] == 1  # the failed polls never reached the job


def test_on_job_succeeded_hook_and_its_failure(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    seen: list[tuple[dict, dict]] = []

    def write_rows(connection: dict, job: dict) -> int:
        seen.append((connection, job))
        return 42

    airbyte_api.on_job_succeeded = write_rows
    hook = AirbyteHook()
    assert _operator(cid).execute(context={}) == 1
    assert hook.get_job_details(1).rows_synced == 42
    assert hook.get_job_details(1).bytes_synced == 4200
    ((connection, job),) = seen
    assert connection["connectionId"] == cid
    assert connection["_destination"]["configuration"]["schema"] == "raw"
    assert job["jobId"] == 1 and job["status"] == "succeeded"

    def broken(connection: dict, job: dict) -> None:
        raise RuntimeError("destination is down")

    airbyte_api.on_job_succeeded = broken
    with pytest.raises(AirflowException, match="Job failed"):
        _operator(cid).execute(context={})
    assert [str(e) for e in airbyte_api.callback_errors] == ["destination is down"]
    assert airbyte_api.job(2)["status"] == "failed"
    assert airbyte_api.job(2)["servedStatuses"] == ["failed"]


def test_progress_by_time(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    airbyte_api.script_jobs(cid, "incomplete_then_succeeded", seconds_per_step=0.1, start_pending=True)
    hook = AirbyteHook()
    job_id = hook.submit_sync_connection(cid).job_id
    assert airbyte_api.job(job_id)["status"] == "pending"
    time.sleep(0.45)
    assert hook.get_job_status(job_id) == "succeeded"
    assert airbyte_api.job(job_id)["statusHistory"] == ["pending", "running", "incomplete", "running", "succeeded"]


# ------------------------------------------------------------------------------------------
# CRUD used by connections-as-code, via the SDK session the provider builds
# ------------------------------------------------------------------------------------------
def test_crud_and_lists_through_the_sdk(airbyte_api) -> None:
    sdk = AirbyteHook().airbyte_api
    ws = airbyte_api.workspace_id

    workspaces = sdk.workspaces.list_workspaces(request=api.ListWorkspacesRequest()).workspaces_response
    assert [w.workspace_id for w in workspaces.data] == [ws]

    src = sdk.sources.create_source(
        request=models.SourceCreateRequest(
            name="faker", workspace_id=ws, configuration=models.SourceFaker(count=10, seed=1)
        )
    ).source_response
    assert (src.source_type, src.definition_id) == ("faker", "dfd88b22-b603-4c3d-aad7-3701784586b1")
    dst = sdk.destinations.create_destination(
        request=models.DestinationCreateRequest(
            name="warehouse",
            workspace_id=ws,
            configuration=models.DestinationPostgres(
                host="localhost", port=5432, database="wh", schema_="raw", username="u", password="secret-pw"
            ),
        )
    ).destination_response
    assert dst.configuration.password == "**********"  # secrets are masked like Airbyte does
    assert airbyte_api.destination(dst.destination_id)["configuration"]["password"] == "secret-pw"

    patched = sdk.sources.patch_source(
        request=api.PatchSourceRequest(
            source_id=src.source_id, source_patch_request=models.SourcePatchRequest(name="faker-renamed")
        )
    ).source_response
    assert patched.name == "faker-renamed" and patched.configuration.count == 10

    streams = sdk.streams.get_stream_properties(
        request=api.GetStreamPropertiesRequest(source_id=src.source_id)
    ).stream_properties_response
    assert [s.stream_name for s in streams] == ["users", "products", "purchases"]

    conn = sdk.connections.create_connection(
        request=models.ConnectionCreateRequest(
            source_id=src.source_id,
            destination_id=dst.destination_id,
            name="faker_to_wh",
            schedule=models.AirbyteAPIConnectionSchedule(schedule_type=models.ScheduleTypeEnum.MANUAL),
            configurations=models.StreamConfigurations(
                streams=[
                    models.StreamConfiguration(
                        name="users",
                        sync_mode=models.ConnectionSyncModeEnum.INCREMENTAL_DEDUPED_HISTORY,
                        cursor_field=["updated_at"],
                        primary_key=[["id"]],
                    )
                ]
            ),
            prefix="faker_",
        )
    ).connection_response
    assert conn.workspace_id == ws
    assert conn.schedule.schedule_type == "manual"
    assert conn.status == "active"
    assert conn.prefix == "faker_"
    assert [(s.name, s.sync_mode, s.cursor_field, s.primary_key) for s in conn.configurations.streams] == [
        ("users", "incremental_deduped_history", ["updated_at"], [["id"]])
    ]

    with pytest.raises(Exception, match="Invalid stream found"):
        sdk.connections.patch_connection(
            request=api.PatchConnectionRequest(
                connection_id=conn.connection_id,
                connection_patch_request=models.ConnectionPatchRequest(
                    configurations=models.StreamConfigurations(streams=[models.StreamConfiguration(name="nope")])
                ),
            )
        )
    patched_conn = sdk.connections.patch_connection(
        request=api.PatchConnectionRequest(
            connection_id=conn.connection_id,
            connection_patch_request=models.ConnectionPatchRequest(
                name="renamed", status=models.ConnectionStatusEnum.INACTIVE
            ),
        )
    ).connection_response
    assert (patched_conn.name, patched_conn.status) == ("renamed", "inactive")
    assert len(patched_conn.configurations.streams) == 1

    listed = sdk.connections.list_connections(
        request=api.ListConnectionsRequest(workspace_ids=[ws])
    ).connections_response
    assert [c.connection_id for c in listed.data] == [conn.connection_id]
    assert (listed.next, listed.previous) == ("", "")

    sdk.connections.delete_connection(request=api.DeleteConnectionRequest(connection_id=conn.connection_id))
    assert sdk.connections.list_connections(request=api.ListConnectionsRequest()).connections_response.data == []
    assert airbyte_api.connection(conn.connection_id)["status"] == "deprecated"
    sdk.sources.delete_source(request=api.DeleteSourceRequest(source_id=src.source_id))
    assert sdk.sources.list_sources(request=api.ListSourcesRequest()).sources_response.data == []

    assert airbyte_api.request_count("POST", "/sources") == 1
    assert airbyte_api.request_count("DELETE", "/connections/{connectionId}", status=204) == 1
    assert airbyte_api.request_count("PATCH", "/connections/*", status=400) == 1


def test_list_jobs_filters_order_and_pagination(airbyte_api) -> None:
    cid = airbyte_api.seed_connection()["connectionId"]
    other = airbyte_api.seed_connection(name="other")["connectionId"]
    airbyte_api.script_jobs(cid, "running", "running", "running")
    hook = AirbyteHook()
    for _ in range(3):
        hook.cancel_job(hook.submit_sync_connection(cid).job_id)
    airbyte_api.script_jobs(other, "running")
    hook.submit_sync_connection(other)

    sdk = hook.airbyte_api
    page = sdk.jobs.list_jobs(request=api.ListJobsRequest(connection_id=cid, limit=2)).jobs_response
    assert [j.job_id for j in page.data] == [3, 2]  # createdAt DESC
    assert "offset=2" in page.next and page.previous == ""
    page2 = sdk.jobs.list_jobs(request=api.ListJobsRequest(connection_id=cid, limit=2, offset=2)).jobs_response
    assert [j.job_id for j in page2.data] == [1] and page2.next == "" and "offset=0" in page2.previous
    asc = sdk.jobs.list_jobs(request=api.ListJobsRequest(order_by="createdAt|ASC")).jobs_response
    assert [j.job_id for j in asc.data] == [1, 2, 3, 4]
    running = sdk.jobs.list_jobs(request=api.ListJobsRequest(status=models.JobStatusEnum.RUNNING)).jobs_response
    assert [(j.job_id, j.connection_id) for j in running.data] == [(4, other)]
    assert airbyte_api.jobs_by_status() == {"cancelled": [1, 2, 3], "running": [4]}
    assert [j["jobId"] for j in airbyte_api.jobs(connection_id=cid, status="cancelled")] == [1, 2, 3]


def test_every_documented_endpoint_is_routed(airbyte_api) -> None:
    # each route answers something other than "no such route" (auth comes first: 401)
    for method, template in ENDPOINTS:
        path = template.replace("{jobId}", "1").replace("{", "").replace("}", "")
        status, _, body = _raw(airbyte_api, method, path, {} if method in ("POST", "PATCH", "PUT") else None)
        if template in ("/health",):
            assert status == 200
        elif template == "/applications/token":
            assert status == 401
        else:
            assert status == 401, (method, template, status, body)


def test_a_file_based_streams_fields_come_from_its_input_schema(airbyte_api) -> None:
    """source-s3's streams are those of its configuration; a stream's fields are its declared
    input_schema's columns plus source-s3's own, and a deduplicated stream's key must be one."""
    config = {
        "sourceType": "s3",
        "bucket": "shop-exports",
        "streams": [
            {"name": "refunds", "format": {"filetype": "jsonl"}, "input_schema": '{"refund_id": "integer", "amount": "number"}'},
            {"name": "inferred", "format": {"filetype": "jsonl"}},
        ],
    }  # fmt: skip
    src = airbyte_api.create_source("refunds_files", config)
    dst = airbyte_api.create_destination("warehouse", {"destinationType": "postgres", "host": "h", "password": "p"})
    status, _, streams = _raw(airbyte_api, "GET", f"/streams?sourceId={src['sourceId']}", token=_token(airbyte_api))
    assert status == 200
    assert {s["streamName"]: s["propertyFields"] for s in streams} == {
        "refunds": [["refund_id"], ["amount"], ["_ab_source_file_last_modified"], ["_ab_source_file_url"]],
        "inferred": [],  # read from the files: unknown to the fake, so nothing is checked against it
    }

    def deduped(stream: str, key: str) -> dict[str, Any]:
        return {"configurations": {"streams": [{"name": stream, "syncMode": "incremental_deduped_history",
                                                "primaryKey": [[key]]}]}}  # fmt: skip

    with pytest.raises(Exception, match=r"The list of valid primary keys fields: \[\['refund_id'\]"):
        airbyte_api.create_connection(src["sourceId"], dst["destinationId"], name="bad", **deduped("refunds", "id"))
    conn = airbyte_api.create_connection(
        src["sourceId"], dst["destinationId"], name="refunds_to_warehouse", **deduped("refunds", "refund_id")
    )
    [stream] = conn["configurations"]["streams"]
    assert (stream["cursorField"], stream["primaryKey"]) == (["_ab_source_file_last_modified"], [["refund_id"]])
    airbyte_api.create_connection(src["sourceId"], dst["destinationId"], name="any_key", **deduped("inferred", "id"))
