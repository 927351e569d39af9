"""The routes the fake serves (method, template, handler name) and how a path finds its route."""

from __future__ import annotations

import re

from .constants import API_PREFIX, TOKEN_PATH


def _route_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$")


def _strip_prefix(path: str) -> str:
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :] or "/"
    return path


_ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/health", "health"),
    ("GET", "/workspaces", "list_workspaces"),
    ("GET", "/workspaces/{workspaceId}", "get_workspace"),
    ("GET", "/sources", "list_sources"),
    ("POST", "/sources", "create_source"),
    ("GET", "/sources/{sourceId}", "get_source"),
    ("PATCH", "/sources/{sourceId}", "patch_source"),
    ("PUT", "/sources/{sourceId}", "put_source"),
    ("DELETE", "/sources/{sourceId}", "delete_source"),
    ("GET", "/destinations", "list_destinations"),
    ("POST", "/destinations", "create_destination"),
    ("GET", "/destinations/{destinationId}", "get_destination"),
    ("PATCH", "/destinations/{destinationId}", "patch_destination"),
    ("PUT", "/destinations/{destinationId}", "put_destination"),
    ("DELETE", "/destinations/{destinationId}", "delete_destination"),
    ("GET", "/connections", "list_connections"),
    ("POST", "/connections", "create_connection"),
    ("GET", "/connections/{connectionId}", "get_connection"),
    ("PATCH", "/connections/{connectionId}", "patch_connection"),
    ("DELETE", "/connections/{connectionId}", "delete_connection"),
    ("GET", "/streams", "get_streams"),
    ("GET", "/jobs", "list_jobs"),
    ("POST", "/jobs", "create_job"),
    ("GET", "/jobs/{jobId}", "get_job"),
    ("DELETE", "/jobs/{jobId}", "cancel_job"),
]
_ROUTE_HANDLERS = {(m, t): h for m, t, h in _ROUTES}
_TEMPLATES = [(t, _route_regex(t)) for t in dict.fromkeys([TOKEN_PATH] + [t for _, t, _ in _ROUTES])]
#: (method, route template) pairs the fake serves, for documentation and tests.
ENDPOINTS = [("POST", TOKEN_PATH)] + [(m, t) for m, t, _ in _ROUTES]


def _match_route(path: str) -> tuple[str | None, dict[str, str]]:
    for template, regex in _TEMPLATES:
        m = regex.match(path)
        if m:
            return template, m.groupdict()
    return None, {}
