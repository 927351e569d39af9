"""Error bodies as the server sends them: RFC 7807 problems for the API proper, Micronaut's JSON
error for authentication and the token endpoint; `_HttpError` carries one out of a handler."""

from __future__ import annotations

from typing import Any

from .constants import PROBLEM_BASE


class _HttpError(Exception):
    def __init__(self, status: int, body: Any, content_type: str = "application/problem+json"):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.content_type = content_type


def problem_body(status: int, slug: str | None, detail: str | None, data: Any = None) -> dict[str, Any]:
    """The RFC 7807 problem document the public API answers with."""
    body: dict[str, Any] = {
        "type": f"{PROBLEM_BASE}#{slug}" if slug else PROBLEM_BASE,
        "title": slug or "unexpected-problem",
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if data is not None:
        body["data"] = data
    return body


def _problem(status: int, slug: str | None, detail: str | None, data: Any = None) -> _HttpError:
    return _HttpError(status, problem_body(status, slug, detail, data))


def _not_found(resource_id: Any) -> _HttpError:
    return _problem(404, "resource-not-found", f"Could not find a resource for: {resource_id}")


def _bad_request(detail: str) -> _HttpError:
    return _problem(400, "bad-request", detail)


def _unprocessable(detail: str) -> _HttpError:
    return _problem(422, "unprocessable-entity", detail)


UNEXPECTED_DETAIL = (
    "An unexpected problem has occurred. If this is an error that needs to be addressed, "
    "please submit a pull request or github issue."
)


def micronaut_error_body(message: str, path: str, error: str | None = None) -> dict[str, Any]:
    """Micronaut's default JSON error (used for 401s and on the token endpoint)."""
    return {
        "message": message,
        "_links": {"self": {"href": path, "templated": False}},
        "_embedded": {"errors": [{"message": error or message, "_links": {}, "_embedded": {}}]},
    }
