"""Jobs through the API: create (409 while one runs), poll, cancel, list with filters and order,
the status machine with its attempts, and the `on_job_succeeded` callback."""

from __future__ import annotations

import copy
import datetime as _dt
import time
from typing import Any

from .constants import ACTIVE_STATUSES, JOB_STATUSES, TERMINAL_STATUSES
from .job_control import JobPlan
from .problems import _bad_request, _not_found, _problem, _unprocessable


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _iso_duration(seconds: float) -> str:
    # java.time.Duration#toString of whole seconds: PT0S, PT5S, PT1M5S, PT1H2M
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    out = "PT"
    if h:
        out += f"{h}H"
    if m:
        out += f"{m}M"
    if s or out == "PT":
        out += f"{s}S"
    return out


def _parse_iso(value: str) -> float:
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Jobs:
    """Jobs of the fake (mixed into FakeAirbyteApi)."""

    def _create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        connection_id = body.get("connectionId")
        job_type = body.get("jobType")
        if not connection_id or not job_type:
            raise _bad_request("connectionId and jobType are required")
        conn = self._connections.get(str(connection_id))
        if conn is None or conn["status"] == "deprecated":
            raise _not_found(connection_id)
        if job_type == "refresh":
            raise _unprocessable("Refreshes are not supported in the public API")
        if job_type not in ("sync", "reset", "clear"):
            raise _unprocessable("The body of the request was not understood")
        for other in self._jobs.values():
            if other["connectionId"] == conn["connectionId"]:
                self._refresh_by_time(other)
                if other["status"] in ACTIVE_STATUSES:
                    raise _problem(409, "try-again-later", f"A sync is already running for: {conn['connectionId']}")
        queue = self._plans.get(conn["connectionId"])
        plan = queue.pop(0) if queue else copy.copy(self.job_defaults)
        now = time.time()
        job = {
            "jobId": self._next_job_id,
            "connectionId": conn["connectionId"],
            "jobType": "sync" if job_type == "sync" else "reset",
            "status": None,
            "created_at": now,
            "updated_at": now,
            "started_mono": time.monotonic(),
            "script": plan.statuses(),
            "step": 0,
            "plan": plan,
            "scripted": True,
            "attempts": [],
            "history": [],
            "served": [],
            "polls": 0,
            "finalizing": False,
            "rows_override": None,
        }
        self._next_job_id += 1
        self._jobs[job["jobId"]] = job
        self._enter_status(job, job["script"][0], reason="created")
        return job

    def _job_or_404(self, job_id: str | int) -> dict[str, Any]:
        try:
            job = self._jobs.get(int(job_id))
        except (TypeError, ValueError):
            raise _bad_request(f"invalid job id {job_id!r}") from None
        if job is None:
            raise _not_found(job_id)
        return job

    def _enter_status(self, job: dict[str, Any], status: str, reason: str) -> None:
        now = time.time()
        if job["status"] in TERMINAL_STATUSES and reason not in ("forced", "callback"):
            return
        job["status"] = status
        job["updated_at"] = now
        job["history"].append((status, now, reason))
        attempts = job["attempts"]
        current = attempts[-1] if attempts and attempts[-1]["status"] == "running" else None
        if status == "running" and current is None:
            attempts.append({"attemptNumber": len(attempts), "status": "running", "startedAt": _iso(now)})
        elif status in ("incomplete", "failed", "cancelled", "succeeded"):
            if current is None and status == "succeeded":
                current = {"attemptNumber": len(attempts), "status": "running", "startedAt": _iso(now)}
                attempts.append(current)
            if current is not None:
                current["status"] = {"incomplete": "failed", "failed": "failed"}.get(status, status)
                current["endedAt"] = _iso(now)
                if status == "succeeded":
                    plan: JobPlan = job["plan"]
                    rows = plan.rows_synced
                    current["recordsCommitted"] = rows
                    current["bytesCommitted"] = plan.bytes_synced if plan.bytes_synced is not None else rows * 100
                else:
                    current["recordsCommitted"] = 0
                    current["bytesCommitted"] = 0
        if status == "succeeded" and reason != "callback":
            job["finalizing"] = True
            self._callback_queue.append(job["jobId"])

    def _step(self, job: dict[str, Any], reason: str) -> bool:
        if job["status"] in TERMINAL_STATUSES or job["step"] >= len(job["script"]) - 1:
            return False
        job["step"] += 1
        self._enter_status(job, job["script"][job["step"]], reason=reason)
        return True

    def _refresh_by_time(self, job: dict[str, Any]) -> None:
        plan: JobPlan = job["plan"]
        if not job["scripted"] or not plan.seconds_per_step or job["status"] in TERMINAL_STATUSES:
            return
        due = int((time.monotonic() - job["started_mono"]) / plan.seconds_per_step)
        while job["step"] < min(due, len(job["script"]) - 1):
            if not self._step(job, reason="time"):
                break

    def _on_poll(self, job: dict[str, Any]) -> None:
        job["polls"] += 1
        plan: JobPlan = job["plan"]
        if job["scripted"] and plan.polls_per_step and not plan.seconds_per_step:
            if job["polls"] % plan.polls_per_step == 0:
                self._step(job, reason="poll")
        self._refresh_by_time(job)

    def _job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        status = "running" if job["finalizing"] else job["status"]
        view: dict[str, Any] = {
            "jobId": job["jobId"],
            "status": status,
            "jobType": job["jobType"],
            "startTime": _iso(job["created_at"]),
            "connectionId": job["connectionId"],
        }
        if status in TERMINAL_STATUSES:
            view["lastUpdatedAt"] = _iso(job["updated_at"])
        if status != "pending":
            view["duration"] = _iso_duration(job["updated_at"] - job["created_at"])
        finished = [a for a in job["attempts"] if "endedAt" in a]
        if finished and not job["finalizing"]:
            last = finished[-1]
            view["bytesSynced"] = last["bytesCommitted"]
            view["rowsSynced"] = last["recordsCommitted"]
        return view

    def _run_callbacks(self) -> None:
        """Run on_job_succeeded for jobs that just succeeded (outside the lock)."""
        while True:
            with self._lock:
                if not self._callback_queue:
                    return
                job_id = self._callback_queue.pop(0)
                job = self._jobs[job_id]
                callback = self.on_job_succeeded
                conn = self._connection_view(self._connections[job["connectionId"]])
                conn["_source"] = copy.deepcopy(self._sources.get(conn["sourceId"]))
                conn["_destination"] = copy.deepcopy(self._destinations.get(conn["destinationId"]))
                job_view = self._job_view({**job, "finalizing": False})
                job_view["attempts"] = len(job["attempts"])
            error: BaseException | None = None
            result: Any = None
            if callback is not None:
                try:
                    result = callback(conn, job_view)
                except BaseException as exc:  # noqa: BLE001 - recorded for the test to assert
                    error = exc
            with self._lock:
                job["finalizing"] = False
                if error is not None:
                    self.callback_errors.append(error)
                    job["attempts"][-1]["status"] = "failed"
                    job["attempts"][-1]["recordsCommitted"] = 0
                    job["attempts"][-1]["bytesCommitted"] = 0
                    job["status"] = "failed"
                    job["history"].append(("failed", time.time(), "callback"))
                    job["scripted"] = False
                elif isinstance(result, int) and not isinstance(result, bool):
                    job["attempts"][-1]["recordsCommitted"] = result
                    if job["plan"].bytes_synced is None:
                        job["attempts"][-1]["bytesCommitted"] = result * 100

    def _h_create_job(self, params, query, body):
        job = self._create_job(self._require_object(body))
        return 200, lambda: self._job_view(job)

    def _h_get_job(self, params, query, body):
        job = self._job_or_404(params["jobId"])
        self._on_poll(job)

        def render():
            view = self._job_view(job)
            job["served"].append(view["status"])
            return view

        return 200, render

    def _h_cancel_job(self, params, query, body):
        job = self._job_or_404(params["jobId"])
        self._refresh_by_time(job)
        if job["status"] not in TERMINAL_STATUSES:
            job["scripted"] = False
            self._enter_status(job, "cancelled", reason="api-cancel")
        return 200, lambda: self._job_view(job)

    def _h_list_jobs(self, params, query, body):
        connection_id = query.get("connectionId", [None])[-1]
        workspace_ids = set(self._list_param(query, "workspaceIds"))
        status = query.get("status", [None])[-1]
        job_type = query.get("jobType", [None])[-1]
        if status is not None and status not in JOB_STATUSES:
            raise _bad_request(f"invalid status {status!r}")
        if job_type is not None and job_type not in ("sync", "reset"):
            raise _unprocessable("The body of the request was not understood")
        if connection_id is not None:
            self._connection_or_404(connection_id)
        bounds = {}
        for name in ("createdAtStart", "createdAtEnd", "updatedAtStart", "updatedAtEnd"):
            raw = query.get(name, [None])[-1]
            if raw:
                try:
                    bounds[name] = _parse_iso(raw)
                except ValueError:
                    raise _bad_request(f"{name} must be an ISO-8601 date-time") from None
        order_field, _, order_method = (query.get("orderBy", ["createdAt|DESC"])[-1]).partition("|")
        if order_field not in ("createdAt", "updatedAt") or (order_method or "DESC").upper() not in ("ASC", "DESC"):
            raise _bad_request("orderBy must look like 'createdAt|DESC' or 'updatedAt|ASC'")
        selected = []
        for job in self._jobs.values():
            self._refresh_by_time(job)
            if connection_id is not None and job["connectionId"] != connection_id:
                continue
            if workspace_ids and self._connections[job["connectionId"]]["workspaceId"] not in workspace_ids:
                continue
            if status is not None and job["status"] != status:
                continue
            if job_type is not None and job["jobType"] != job_type:
                continue
            if "createdAtStart" in bounds and job["created_at"] < bounds["createdAtStart"]:
                continue
            if "createdAtEnd" in bounds and job["created_at"] > bounds["createdAtEnd"]:
                continue
            if "updatedAtStart" in bounds and job["updated_at"] < bounds["updatedAtStart"]:
                continue
            if "updatedAtEnd" in bounds and job["updated_at"] > bounds["updatedAtEnd"]:
                continue
            selected.append(job)
        key = "created_at" if order_field == "createdAt" else "updated_at"
        selected.sort(key=lambda j: (j[key], j["jobId"]), reverse=(order_method or "DESC").upper() == "DESC")
        return 200, lambda: self._paged(
            [self._job_view(j) for j in selected], query, "/jobs", ["jobType", "connectionId", "status"]
        )
