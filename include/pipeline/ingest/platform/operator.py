"""The ingest step of one declared connection, for both engines, chosen at run time.

`AirbyteConnectionSync` is the provider's AirbyteTriggerSyncOperator with what users miss:

- the Airbyte connection id is looked up BY NAME inside the task (never pasted, never at parse);
- before submitting, the running job of that connection is looked for and REATTACHED to, so a
  retry after a crash, a 500 after the job was accepted, a client timeout or a 409
  "sync already running" never makes a second job;
- deferrable by default (the wait runs in the triggerer), with a trigger that survives failed
  polls, counts attempts and cancels the Airbyte job when the task is marked failed (on_kill);
- the Airbyte job is cancelled on execution_timeout (both modes), on kill and on trigger timeout;
- it returns {'connection', 'engine', 'seconds', 'streams', 'job_id', 'attempts', 'records', 'bytes'}
  and pushes the same under the XCom key `airbyte_job` as soon as the job is known (for metrics).

With the `embedded` engine it runs the embedded sync (include/pipeline/ingest/tasks.py) instead,
so the DAG keeps one task per connection whichever engine a deployment uses.

A job that Airbyte reports FAILED (after its own attempts) or that was CANCELLED outside Airflow
fails the task without Airflow retries (AirflowFailException): Airbyte already retried it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.airbyte.hooks.airbyte import AirbyteHook
from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
from airflow.providers.airbyte.triggers.airbyte import AirbyteSyncTrigger
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.triggers.base import TriggerEvent

from include.pipeline.ingest.engine import XCOM_KEY as ENGINE_XCOM_KEY
from include.pipeline.ingest.engine import PlatformSettings, current_engine
from include.pipeline.ingest.platform.api import ACTIVE_JOB_STATUSES, AirbyteApi

TERMINAL = ("succeeded", "failed", "cancelled")
XCOM_KEY = "airbyte_job"


def _status(value: Any) -> str:
    return str(getattr(value, "value", value)).lower()


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status behind the provider's AirflowException(SDK error), None for no answer."""
    for candidate in (exc, *getattr(exc, "args", ()), exc.__cause__, exc.__context__):
        code = getattr(candidate, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def _job_dict(job: Any) -> dict[str, Any]:
    """A JobResponse (SDK model) or a public-API dict as {'job_id', 'status', 'records', 'bytes'}."""
    get = job.get if isinstance(job, dict) else lambda k, d=None: getattr(job, k, d)
    return {
        "job_id": int(get("jobId") if isinstance(job, dict) else get("job_id")),
        "status": _status(get("status")),
        "records": get("rowsSynced") if isinstance(job, dict) else get("rows_synced"),
        "bytes": get("bytesSynced") if isinstance(job, dict) else get("bytes_synced"),
    }


class AttemptCounter:
    """Attempts as seen through the public API, which has no attempt count: each time a job goes
    from `incomplete` (an attempt failed, Airbyte retries) back to running or to succeeded, a new
    attempt started. A lower bound if polls are slower than Airbyte's back-off between attempts."""

    def __init__(self, attempts: int = 1, last: str | None = None):
        self.attempts = attempts
        self.last = last

    def see(self, status: str) -> None:
        if self.last == "incomplete" and status in ("running", "succeeded"):
            self.attempts += 1
        self.last = status


class PlatformSyncTrigger(AirbyteSyncTrigger):
    """The provider's trigger, plus: failed polls are retried (up to `max_poll_errors` in a row),
    attempts are counted, the final job figures travel in the event, and on_kill (mark failed,
    clear) cancels the Airbyte job. Blocking SDK calls run in a thread, off the event loop."""

    def __init__(
        self,
        job_id: int,
        conn_id: str,
        end_time: float,
        poll_interval: float,
        execution_deadline: float | None = None,
        max_poll_errors: int = 10,
        attempts: int = 1,
        last_status: str | None = None,
    ):
        super().__init__(job_id, conn_id, end_time, poll_interval, execution_deadline)
        self.max_poll_errors = max_poll_errors
        self.attempts = attempts
        self.last_status = last_status

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.PlatformSyncTrigger",
            {
                "job_id": self.job_id,
                "conn_id": self.conn_id,
                "end_time": self.end_time,
                "poll_interval": self.poll_interval,
                "execution_deadline": self.execution_deadline,
                "max_poll_errors": self.max_poll_errors,
                "attempts": self.attempts,
                "last_status": self.last_status,
            },
        )

    def _event(self, status: str, message: str, job: dict | None = None, counter: AttemptCounter | None = None):
        return TriggerEvent(
            {
                "status": status,
                "message": message,
                "job_id": self.job_id,
                "attempts": counter.attempts if counter else self.attempts,
                "records": (job or {}).get("records"),
                "bytes": (job or {}).get("bytes"),
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        counter = AttemptCounter(self.attempts, self.last_status)
        errors = 0
        try:
            hook = AirbyteHook(airbyte_conn_id=self.conn_id)
        except Exception as exc:
            yield self._event("error", f"Airbyte connection {self.conn_id!r}: {exc}")
            return
        while True:
            now = time.time()
            if self.execution_deadline is not None and self.execution_deadline <= now:
                yield self._event(
                    "timeout", f"Airbyte job {self.job_id} reached the task's execution timeout.", None, counter
                )
                return
            if self.end_time <= now:
                yield self._event(
                    "timeout", f"Airbyte job {self.job_id} not finished by the operator's timeout.", None, counter
                )
                return
            try:
                job = _job_dict(await asyncio.to_thread(hook.get_job_details, self.job_id))
                errors = 0
            except Exception as exc:
                errors += 1
                self.log.warning("poll %d of Airbyte job %s failed (%s); retrying", errors, self.job_id, exc)
                if errors >= self.max_poll_errors:
                    yield self._event(
                        "error", f"{errors} polls of Airbyte job {self.job_id} failed in a row: {exc}", None, counter
                    )
                    return
                await asyncio.sleep(self.poll_interval)
                continue
            counter.see(job["status"])
            if job["status"] == "succeeded":
                yield self._event("success", f"Airbyte job {self.job_id} succeeded.", job, counter)
                return
            if job["status"] in ("failed", "cancelled"):
                yield self._event(job["status"], f"Airbyte job {self.job_id} {job['status']}.", job, counter)
                return
            await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """The task was marked failed / cleared while deferred: cancel the Airbyte job."""
        hook = AirbyteHook(airbyte_conn_id=self.conn_id)
        self.log.info("task killed while deferred: cancelling Airbyte job %s", self.job_id)
        await asyncio.to_thread(hook.cancel_job, self.job_id)


class AirbyteConnectionSync(AirbyteTriggerSyncOperator):
    """Sync the declared connection `connection_name` with the engine chosen at run time."""

    template_fields = ("connection_name", "airbyte_conn_id")
    ui_color = "#6C51FD"

    def __init__(
        self,
        *,
        connection_name: str,
        airbyte_conn_id: str | None = None,
        deferrable: bool | None = None,
        poll_seconds: float | None = None,
        submit_tries: int | None = None,
        max_poll_errors: int = 10,
        timeout: float = 24 * 3600,
        **kwargs: Any,
    ) -> None:
        # connection_id is resolved by name at run time; airbyte_conn_id/deferrable/poll None = from settings
        super().__init__(connection_id="", airbyte_conn_id=airbyte_conn_id or "", timeout=timeout, **kwargs)
        self.connection_name = connection_name
        self.deferrable = deferrable
        self.poll_seconds = poll_seconds
        self.submit_tries = submit_tries
        self.max_poll_errors = max_poll_errors
        self.job_id: int | None = None

    # -- settings -------------------------------------------------------------------------------
    def _settings(self) -> PlatformSettings:
        s = PlatformSettings.from_env()
        self.airbyte_conn_id = self.airbyte_conn_id or s.conn_id
        return PlatformSettings(
            conn_id=self.airbyte_conn_id,
            workspace=s.workspace,
            deferrable=s.deferrable if self.deferrable is None else self.deferrable,
            poll_seconds=self.poll_seconds or s.poll_seconds,
            submit_tries=self.submit_tries or s.submit_tries,
        )

    def _api(self) -> AirbyteApi:
        return AirbyteApi.from_airflow_connection(BaseHook.get_connection(self.airbyte_conn_id))

    def _resolve_connection_id(self, api: AirbyteApi, workspace: str | None) -> str:
        from include.pipeline.ingest.connections import load_connections

        config = load_connections()
        config.connection(self.connection_name)  # declared? (KeyError names the file)
        workspace_id = api.workspace_id(workspace or config.workspace)
        connection_id = api.connection_id(workspace_id, self.connection_name)
        self.log.info("Airbyte connection '%s' is %s (looked up by name)", self.connection_name, connection_id)
        return connection_id

    # -- execute --------------------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        engine = current_engine()  # read once per task run; the metrics callback reads this XCom
        self.log.info(
            "ingest engine: %s (Airflow Variable airbyte_engine or AIRBYTE_ENGINE; embedded|platform)", engine
        )
        self._push(context, engine, key=ENGINE_XCOM_KEY)
        if engine == "embedded":
            return self._run_embedded(context)
        s = self._settings()
        self._started = time.time()
        api = self._api()
        self.connection_id = self._resolve_connection_id(api, s.workspace)
        hook = AirbyteHook(airbyte_conn_id=self.airbyte_conn_id, api_version=self.api_version)
        job = self._submit_or_reattach(api, hook, s.submit_tries, s.poll_seconds)
        self.job_id = job["job_id"]
        self._push(context, {**job, "connection_id": self.connection_id})
        counter = AttemptCounter(1, job["status"])
        if job["status"] in TERMINAL:
            return self._finish(context, job, counter.attempts)
        now = time.time()
        end_time = now + self.timeout
        deadline = defer_timeout = None
        if self.execution_timeout is not None:
            deadline = now + self.execution_timeout.total_seconds()
            defer_timeout = dt.timedelta(seconds=self.execution_timeout.total_seconds() + 2 * s.poll_seconds + 30)
        if s.deferrable:
            self.log.info("deferring: the triggerer polls Airbyte job %s every %ss", self.job_id, s.poll_seconds)
            self.defer(
                trigger=PlatformSyncTrigger(
                    job_id=self.job_id,
                    conn_id=self.airbyte_conn_id,
                    end_time=end_time,
                    poll_interval=s.poll_seconds,
                    execution_deadline=deadline,
                    max_poll_errors=self.max_poll_errors,
                    last_status=job["status"],
                ),
                method_name="execute_complete",
                kwargs={"started": self._started},
                timeout=defer_timeout,
            )
        return self._wait(context, hook, job, counter, s.poll_seconds, end_time)

    def _run_embedded(self, context: Any) -> dict:
        from airflow.sdk.bases.decorator import determine_kwargs

        from include.pipeline.ingest.tasks import sync

        func = sync.function
        kwargs = determine_kwargs(func, [self.connection_name], dict(context))
        return func(self.connection_name, **{**kwargs, "engine": "embedded"})

    def _submit_or_reattach(self, api: AirbyteApi, hook: AirbyteHook, tries: int, poll: float) -> dict[str, Any]:
        """Reattach to the connection's active job if there is one, else submit; never a second job."""
        last_error: BaseException | None = None
        for attempt in range(1, tries + 1):
            try:
                active = api.active_jobs(self.connection_id)
            except Exception as exc:  # cannot look: Airbyte itself refuses a 2nd sync (409), so submit
                self.log.warning("could not list the running jobs of %s: %s", self.connection_id, exc)
                active = []
            if active:
                job = _job_dict(active[0])
                self.log.info(
                    "reattaching to Airbyte job %s (%s) of connection '%s' instead of submitting a new one",
                    job["job_id"], job["status"], self.connection_name,
                )  # fmt: skip
                if len(active) > 1:
                    self.log.warning("%d active jobs for one connection: %s", len(active), [j["jobId"] for j in active])
                return {**job, "reattached": True}
            try:
                job = _job_dict(hook.submit_sync_connection(connection_id=self.connection_id))
                self.log.info("submitted Airbyte job %s for connection '%s'", job["job_id"], self.connection_name)
                return {**job, "reattached": False}
            except AirflowException as exc:
                last_error = exc
                status = _http_status(exc)
                if status == 409:
                    self.log.info("409: a sync of '%s' is already running; reattaching to it", self.connection_name)
                    continue
                if status is not None and 400 <= status < 500 and status not in (401, 408, 429):
                    raise AirflowFailException(
                        f"Airbyte refused the sync of '{self.connection_name}' ({self.connection_id}): {exc}"
                    ) from exc
                wait = min(30.0, poll * attempt)
                self.log.warning(
                    "submitting the sync of '%s' failed (try %d/%d, HTTP %s): %s; checking for an accepted job in %.1fs",
                    self.connection_name, attempt, tries, status, exc, wait,
                )  # fmt: skip
                time.sleep(wait)
        raise AirflowException(f"could not start a sync of '{self.connection_name}' after {tries} tries: {last_error}")

    def _wait(self, context, hook, job, counter: AttemptCounter, poll: float, end_time: float) -> dict:
        """Non-deferrable wait in the worker; failed polls are retried (bounded by execution_timeout)."""
        while True:
            if time.time() >= end_time:
                self._cancel(hook, self.job_id, "the operator's timeout")
                raise AirflowException(f"Airbyte job {self.job_id} not finished after {self.timeout}s; cancelled")
            time.sleep(poll)
            try:
                job = _job_dict(hook.get_job_details(self.job_id))
            except AirflowException as exc:
                self.log.warning("poll of Airbyte job %s failed (%s); retrying", self.job_id, exc)
                continue
            counter.see(job["status"])
            if job["status"] in TERMINAL:
                return self._finish(context, job, counter.attempts)

    def execute_complete(self, context: Any, event: Any = None, started: float | None = None) -> dict:
        """Back from the trigger (in a new worker process): finish, or cancel what is left running."""
        self._started = started or time.time()
        self.job_id = event.get("job_id")
        self.airbyte_conn_id = self.airbyte_conn_id or PlatformSettings.from_env().conn_id
        status = event["status"]
        if status == "success":
            job = {
                "job_id": self.job_id,
                "status": "succeeded",
                "records": event.get("records"),
                "bytes": event.get("bytes"),
            }
            return self._finish(context, job, event.get("attempts", 1))
        if status in ("failed", "cancelled"):
            job = {
                "job_id": self.job_id,
                "status": status,
                "records": event.get("records"),
                "bytes": event.get("bytes"),
            }
            return self._finish(context, job, event.get("attempts", 1))
        # timeout or error: never leave the job running behind a failed task
        hook = AirbyteHook(airbyte_conn_id=self.airbyte_conn_id, api_version=self.api_version)
        self._cancel(hook, self.job_id, status)
        self._push(context, {"job_id": self.job_id, "status": status, "attempts": event.get("attempts", 1)})
        raise AirflowException(event["message"])

    def resume_execution(self, next_method: str, next_kwargs: dict | None, context: Any):
        """Trigger timeout or failure (`__fail__`): cancel the connection's active job, then fail."""
        if next_method == "__fail__":
            try:
                self._settings()
                api = self._api()
                self.connection_id = self._resolve_connection_id(api, PlatformSettings.from_env().workspace)
                for job in api.active_jobs(self.connection_id):
                    self.log.info(
                        "trigger ended (%s): cancelling Airbyte job %s", (next_kwargs or {}).get("error"), job["jobId"]
                    )
                    api.cancel_job(job["jobId"])
            except Exception:
                self.log.warning("could not cancel the Airbyte job after the trigger failed", exc_info=True)
        return super().resume_execution(next_method, next_kwargs, context)

    def _finish(self, context, job: dict, attempts: int) -> dict:
        result = {
            "connection": self.connection_name,
            "engine": "platform",
            "seconds": round(time.time() - getattr(self, "_started", time.time()), 3),
            "streams": {},  # the public API reports totals only (records, bytes), not per stream
            "job_id": job["job_id"],
            "status": job["status"],
            "attempts": attempts,
            "records": job.get("records"),
            "bytes": job.get("bytes"),
        }
        self._push(context, result)
        if job["status"] != "succeeded":
            raise AirflowFailException(
                f"Airbyte job {job['job_id']} of '{self.connection_name}' {job['status']} after {attempts} attempt(s)"
                + (" (cancelled outside Airflow)" if job["status"] == "cancelled" else "")
                + "; see the job's logs in the Airbyte UI"
            )
        self.log.info(
            "Airbyte job %s of '%s' succeeded: %s records, %s bytes, %d attempt(s), %.1fs",
            job["job_id"], self.connection_name, job.get("records"), job.get("bytes"), attempts, result["seconds"],
        )  # fmt: skip
        return result

    def _push(self, context: Any, value: Any, key: str = XCOM_KEY) -> None:
        """XCom `airbyte_job` (the job's figures as soon as known, so a failed try's metrics row
        still has its job id and attempts), or `key`."""
        ti = (context or {}).get("ti")
        if key == XCOM_KEY:
            value = {"connection": self.connection_name, "engine": "platform", **value}
        if ti is not None:
            try:
                ti.xcom_push(key=key, value=value)
            except Exception:
                self.log.warning("could not push XCom %s", key, exc_info=True)

    def _cancel(self, hook: AirbyteHook, job_id: int | None, why: str) -> None:
        if not job_id:
            return
        self.log.info("cancelling Airbyte job %s (%s)", job_id, why)
        try:
            hook.cancel_job(job_id=int(job_id))
        except Exception:
            self.log.warning("could not cancel Airbyte job %s; a retry will reattach to it", job_id, exc_info=True)

    def on_kill(self) -> None:
        """Killed, timed out or marked failed while waiting in the worker: cancel the Airbyte job.
        Killed between the submit and its answer (job id unknown yet): cancel the connection's active job."""
        if not self.airbyte_conn_id:
            return
        hook = AirbyteHook(airbyte_conn_id=self.airbyte_conn_id, api_version=self.api_version)
        if self.job_id:
            self._cancel(hook, self.job_id, "task killed")
            return
        if self.connection_id:
            try:
                for job in self._api().active_jobs(self.connection_id):
                    self._cancel(hook, job["jobId"], "task killed before the submit answered")
            except Exception:
                self.log.warning("could not look for the job to cancel; a retry will reattach to it", exc_info=True)


__all__ = ["ACTIVE_JOB_STATUSES", "AirbyteConnectionSync", "PlatformSyncTrigger"]
