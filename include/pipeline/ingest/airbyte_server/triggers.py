"""The wait for an Airbyte job in the triggerer: the provider's trigger, made to survive.

Its class path is stored with every deferred task (Airflow's trigger table), so it must stay
importable: `include.pipeline.ingest.platform.operator.PlatformSyncTrigger`, the path of a
trigger serialized before the package was renamed, resolves here too (include/pipeline/ingest/__init__.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.airbyte.hooks.airbyte import AirbyteHook
from airflow.providers.airbyte.triggers.airbyte import AirbyteSyncTrigger
from airflow.triggers.base import TriggerEvent

from include.pipeline.ingest.airbyte_server.jobs import job_dict


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
                job = job_dict(await asyncio.to_thread(hook.get_job_details, self.job_id))
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
