"""Airbyte jobs as the operator and the trigger see them: one plain dict whatever answered.

The provider's hook returns SDK models (`JobResponse`), the public-API client (api.py) returns
JSON dicts; both become {'job_id', 'status', 'records', 'bytes'} here, so the rest of the code
compares lowercase statuses and never the shape of an answer.
"""

from __future__ import annotations

from typing import Any

# Statuses after which Airbyte does nothing more with the job.
TERMINAL = ("succeeded", "failed", "cancelled")
# The XCom key the operator pushes the job's figures under as soon as the job is known, so the
# metrics callback of a failed try still records its job id and attempts (observe/callbacks.py).
XCOM_KEY = "airbyte_job"


def job_status(value: Any) -> str:
    """A status enum of the SDK or a string of the API, lowercased."""
    return str(getattr(value, "value", value)).lower()


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind the provider's AirflowException(SDK error), None for no answer."""
    for candidate in (exc, *getattr(exc, "args", ()), exc.__cause__, exc.__context__):
        code = getattr(candidate, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def job_dict(job: Any) -> dict[str, Any]:
    """A JobResponse (SDK model) or a public-API dict as {'job_id', 'status', 'records', 'bytes'}."""
    if isinstance(job, dict):
        return {
            "job_id": int(job.get("jobId")),
            "status": job_status(job.get("status")),
            "records": job.get("rowsSynced"),
            "bytes": job.get("bytesSynced"),
        }
    return {
        "job_id": int(getattr(job, "job_id", None)),
        "status": job_status(getattr(job, "status", None)),
        "records": getattr(job, "rows_synced", None),
        "bytes": getattr(job, "bytes_synced", None),
    }
