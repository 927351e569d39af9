"""How the fake's jobs behave and what tests can see of them: `JobPlan` (a scripted status
sequence advanced by polls or wall time) and the control API (script, force, advance, inspect)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .constants import JOB_STATUSES, OUTCOMES


@dataclass
class JobPlan:
    """How a job created by the fake will behave."""

    outcome: str | tuple[str, ...] = "succeeded"
    polls_per_step: int | None = 1
    seconds_per_step: float | None = None
    start_pending: bool = False
    rows_synced: int = 100
    bytes_synced: int | None = None

    def statuses(self) -> list[str]:
        if isinstance(self.outcome, str):
            if self.outcome not in OUTCOMES:
                raise ValueError(f"unknown outcome {self.outcome!r}; known: {sorted(OUTCOMES)}")
            seq = list(OUTCOMES[self.outcome])
        else:
            seq = list(self.outcome)
            bad = [s for s in seq if s not in JOB_STATUSES]
            if bad or not seq:
                raise ValueError(f"invalid status sequence {self.outcome!r}")
        if self.start_pending and seq[0] != "pending":
            seq.insert(0, "pending")
        return seq


_PLAN_FIELDS = {f for f in JobPlan.__dataclass_fields__}  # type: ignore[attr-defined]


class JobControl:
    """Scripting and inspecting jobs from a test (mixed into FakeAirbyteApi)."""

    def set_job_defaults(self, **plan: Any) -> None:
        """Change the defaults for jobs without a scripted plan (see :class:`JobPlan`)."""
        with self._lock:
            for key, value in plan.items():
                if key not in _PLAN_FIELDS:
                    raise TypeError(f"unknown job plan field {key!r}")
                setattr(self.job_defaults, key, value)
            self.job_defaults.statuses()  # validate

    def script_jobs(self, connection_id: str, *outcomes: str | Iterable[str], **plan: Any) -> None:
        """Queue the behaviour of the next job(s) created for ``connection_id``, one per outcome.

        An outcome is a name from :data:`OUTCOMES` (``succeeded``, ``failed``, ``cancelled``,
        ``incomplete_then_succeeded``, ``incomplete_then_failed``, ``running``, ``pending``) or
        an explicit status sequence such as ``["running", "incomplete", "running", "succeeded"]``.
        ``plan`` overrides the defaults: ``polls_per_step`` (a job advances one status per N
        ``GET /jobs/{id}``; None = not by polls), ``seconds_per_step`` (advance by wall time
        instead), ``start_pending``, ``rows_synced``, ``bytes_synced``.
        """
        unknown = set(plan) - _PLAN_FIELDS
        if unknown:
            raise TypeError(f"unknown job plan fields {sorted(unknown)}")
        with self._lock:
            queue = self._plans.setdefault(connection_id, [])
            for outcome in outcomes or ("succeeded",):
                base = {k: getattr(self.job_defaults, k) for k in _PLAN_FIELDS}
                base.update(plan)
                base["outcome"] = outcome if isinstance(outcome, str) else tuple(outcome)
                job_plan = JobPlan(**base)
                job_plan.statuses()  # validate now, not at job creation
                queue.append(job_plan)

    def set_job_status(self, job_id: int, status: str) -> dict[str, Any]:
        """Force a job into ``status`` now (stops its script). ``succeeded`` runs
        ``on_job_succeeded``; ``cancelled`` is a cancel from outside Airflow."""
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}")
        with self._lock:
            job = self._jobs[job_id]
            job["scripted"] = False
            self._enter_status(job, status, reason="forced")
        self._run_callbacks()
        return self.job(job_id)

    def cancel_job_externally(self, job_id: int) -> dict[str, Any]:
        """A cancel done outside Airflow (UI, another client)."""
        return self.set_job_status(job_id, "cancelled")

    def advance_job(self, job_id: int, steps: int = 1) -> dict[str, Any]:
        """Move a job ``steps`` statuses along its script, regardless of polls/time."""
        with self._lock:
            job = self._jobs[job_id]
            for _ in range(steps):
                self._step(job, reason="advance_job")
        self._run_callbacks()
        return self.job(job_id)

    def job(self, job_id: int) -> dict[str, Any]:
        """Public view of a job plus test-only state: ``attempts`` (count), ``attemptDetails``,
        ``statusHistory`` (transitions), ``servedStatuses`` (status returned by each
        ``GET /jobs/{id}``), ``polls``, ``plan`` (the scripted status sequence)."""
        with self._lock:
            job = self._jobs[job_id]
            view = self._job_view(job)
            view.update(
                attempts=len(job["attempts"]),
                attemptDetails=copy.deepcopy(job["attempts"]),
                statusHistory=[h[0] for h in job["history"]],
                servedStatuses=list(job["served"]),
                polls=job["polls"],
                plan=list(job["script"]),
            )
            return view

    def jobs(self, connection_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Jobs (creation order) with the test-only fields of :meth:`job`."""
        with self._lock:
            ids = [
                j["jobId"]
                for j in self._jobs.values()
                if (connection_id is None or j["connectionId"] == connection_id)
                and (status is None or j["status"] == status)
            ]
        return [self.job(i) for i in ids]

    def jobs_by_status(self, connection_id: str | None = None) -> dict[str, list[int]]:
        """``{status: [jobId, ...]}`` for every job (optionally of one connection)."""
        out: dict[str, list[int]] = {}
        with self._lock:
            for j in self._jobs.values():
                if connection_id is None or j["connectionId"] == connection_id:
                    self._refresh_by_time(j)
                    out.setdefault(j["status"], []).append(j["jobId"])
        self._run_callbacks()
        return out

    def attempts(self, job_id: int) -> int:
        with self._lock:
            return len(self._jobs[job_id]["attempts"])
