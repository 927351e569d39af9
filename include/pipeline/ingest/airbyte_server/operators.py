"""The sync of one declared connection on an Airbyte server (the `platform` engine).

`AirbyteServerSync` is the provider's AirbyteTriggerSyncOperator with what users miss:

- the Airbyte connection id is looked up BY NAME inside the task (never pasted, never at parse);
- a retry first looks up the job an earlier try of the same task instance started (its id is
  kept in Airflow's task state store, job_store.py): SUCCEEDED in between is done (its figures
  reported, nothing submitted), PENDING/RUNNING is reattached to, FAILED/CANCELLED/unknown gets a
  new job;
- before submitting, the running job of that connection is looked for and REATTACHED to, so a
  retry after a crash, a 500 after the job was accepted, a client timeout or a 409
  "sync already running" never makes a second job;
- deferrable by default (the wait runs in the triggerer, triggers.py), with a trigger that
  survives failed polls, counts attempts and cancels the Airbyte job when the task is marked
  failed (on_kill);
- the Airbyte job is cancelled on execution_timeout (both modes), on kill and on trigger timeout;
- it returns {'connection', 'engine', 'seconds', 'streams', 'job_id', 'attempts', 'records', 'bytes'}
  and pushes the same under the XCom key `airbyte_job` as soon as the job is known (for metrics).

The DAG does not use it directly: its ingest tasks are include/pipeline/ingest/connection_sync.py's
`AirbyteConnectionSync`, which picks the engine at run time and hands the platform engine to this.

A job that Airbyte reports FAILED (after its own attempts) or that was CANCELLED outside Airflow
fails the task without Airflow retries (AirflowFailException): Airbyte already retried it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from airflow.providers.airbyte.hooks.airbyte import AirbyteHook
from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.pipeline.ingest.airbyte_server import job_store
from include.pipeline.ingest.airbyte_server.api import AirbyteApi, AirbyteApiError
from include.pipeline.ingest.airbyte_server.jobs import TERMINAL, XCOM_KEY, http_status, job_dict
from include.pipeline.ingest.airbyte_server.triggers import AttemptCounter, PlatformSyncTrigger
from include.pipeline.ingest.engine import PlatformSettings


class AirbyteServerSync(AirbyteTriggerSyncOperator):
    """Sync the declared connection `connection_name` on the Airbyte server, by name.

    Settings left as None are read from the environment when the task runs
    (include/pipeline/ingest/engine.py `PlatformSettings`), so one DAG file serves every deployment.

    :param connection_name: the connection's `name` in include/airbyte/connections.yaml; the
        Airbyte connection with that name in the workspace is synced (templated).
    :param airbyte_conn_id: the Airflow connection of the Airbyte server (templated); None:
        AIRBYTE_CONN_ID, else `airbyte_default`.
    :param deferrable: wait in the triggerer (True) or in the worker (False); None: AIRBYTE_DEFERRABLE.
    :param poll_seconds: seconds between two status polls; None: AIRBYTE_POLL_SECONDS (30).
    :param submit_tries: how many times a failed submit is retried (each try first looks for a job
        Airbyte accepted anyway, and reattaches to it); None: AIRBYTE_SUBMIT_TRIES (4).
    :param max_poll_errors: failed polls in a row after which the wait gives up (the job is cancelled).
    :param timeout: seconds after which an unfinished job is cancelled and the task fails; the
        task's `execution_timeout`, when shorter, cancels it too.
    """

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
        from include.pipeline.ingest.declaration import load_connections

        config = load_connections()
        config.connection(self.connection_name)  # declared? (KeyError names the file)
        workspace_id = api.workspace_id(workspace or config.workspace)
        connection_id = api.connection_id(workspace_id, self.connection_name)
        self.log.info("Airbyte connection '%s' is %s (looked up by name)", self.connection_name, connection_id)
        return connection_id

    # -- execute --------------------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        """Look the connection up by name, submit or reattach, then wait (deferred or here)."""
        s = self._settings()
        self._started = time.time()
        api = self._api()
        self.connection_id = self._resolve_connection_id(api, s.workspace)
        hook = AirbyteHook(airbyte_conn_id=self.airbyte_conn_id, api_version=self.api_version)
        job = self._recover(context, api) or self._submit_or_reattach(api, hook, s.submit_tries, s.poll_seconds)
        self.job_id = job["job_id"]
        if job["status"] not in TERMINAL and job_store.remember(context, self.job_id):
            # before the wait: a retry after a crash from here on finds this job (job_store.py)
            self.log.info("Airbyte job %s kept in the task state store for a retry", self.job_id)
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

    def _recover(self, context: Any, api: AirbyteApi) -> dict[str, Any] | None:
        """The job an earlier try of this task instance left unfinished (job_store.py), when it
        counts: succeeded (done, nothing to submit) or still active (reattach); None: submit."""
        job_id = job_store.recall(context)
        if job_id is None:
            return None
        try:
            found = api.job(job_id)
        except AirbyteApiError as exc:
            if exc.status != 404:  # cannot tell: a new job might duplicate a finished one; retry later
                raise AirflowException(
                    f"could not look up Airbyte job {job_id}, started by an earlier try of this task: {exc}"
                ) from exc
            found = None
        if found is None or found.get("connectionId") not in (None, self.connection_id):
            self.log.warning("Airbyte job %s of an earlier try is unknown to Airbyte: submitting a new one", job_id)
            return None
        job = job_dict(found)
        if job["status"] == "succeeded":
            self.log.info(
                "Airbyte job %s of '%s', started by an earlier try, succeeded meanwhile: reporting it, submitting nothing",
                job_id, self.connection_name,
            )  # fmt: skip
            return {**job, "reattached": True}
        if job["status"] not in TERMINAL:
            self.log.info("reattaching to Airbyte job %s (%s), started by an earlier try", job_id, job["status"])
            return {**job, "reattached": True}
        self.log.warning("Airbyte job %s of an earlier try ended %s: submitting a new one", job_id, job["status"])
        return None

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
                job = job_dict(active[0])
                self.log.info(
                    "reattaching to Airbyte job %s (%s) of connection '%s' instead of submitting a new one",
                    job["job_id"], job["status"], self.connection_name,
                )  # fmt: skip
                if len(active) > 1:
                    self.log.warning("%d active jobs for one connection: %s", len(active), [j["jobId"] for j in active])
                return {**job, "reattached": True}
            try:
                job = job_dict(hook.submit_sync_connection(connection_id=self.connection_id))
                self.log.info("submitted Airbyte job %s for connection '%s'", job["job_id"], self.connection_name)
                return {**job, "reattached": False}
            except AirflowException as exc:
                last_error = exc
                status = http_status(exc)
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
                job = job_dict(hook.get_job_details(self.job_id))
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
        job_store.forget(context)  # this task instance is done with the job: a later clear syncs again
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


__all__ = ["AirbyteServerSync"]
