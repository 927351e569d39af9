"""The request log and injected faults: failures (a status or a dropped connection) and delays,
before or after the request is handled."""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass
from typing import Any

from .routes import _strip_prefix


@dataclass
class RequestRecord:
    """One request as the fake saw it (``path`` is relative to ``/api/public/v1``)."""

    method: str
    path: str
    route: str | None
    query: dict[str, list[str]]
    status: int | None = None
    authorized: bool | None = None
    started: float = 0.0
    finished: float | None = None
    fault: str | None = None


@dataclass
class _Fault:
    method: str
    pattern: str
    remaining: int | None  # None = forever
    when: str  # "before" | "after"
    status: int | None = 500
    body: Any = None
    disconnect: bool = False
    seconds: float = 0.0  # for delays
    content_type: str = "application/problem+json"

    def matches(self, method: str, path: str, route: str | None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method != "*" and self.method != method:
            return False
        return self.pattern == route or fnmatch.fnmatchcase(path, self.pattern)


class Faults:
    """Fault injection and the request log of the fake (mixed into FakeAirbyteApi)."""

    def fail_next(
        self,
        method: str,
        path: str,
        times: int | None = 1,
        *,
        status: int = 500,
        body: Any = None,
        when: str = "before",
        disconnect: bool = False,
    ) -> None:
        """Answer the next ``times`` requests matching (method, path) with ``status``.

        ``path`` is relative to ``/api/public/v1`` (the prefix is accepted too): a route
        template (``/jobs/{jobId}``) or an fnmatch pattern of the concrete path (``/jobs/*``).
        ``method`` may be ``"*"``. ``times=None`` = until :meth:`clear_faults`.
        ``when="before"``: nothing happens server-side; ``when="after"``: the request is
        fully handled (e.g. the job IS created) and then the error is sent instead.
        ``disconnect=True``: close the socket without any response instead of ``status``.
        The default body is the public API's 500 problem document.
        """
        self._check_when(when)
        with self._lock:
            self._failures.append(_Fault(method.upper(), _strip_prefix(path), times, when, status, body, disconnect))

    def delay(self, method: str, path: str, seconds: float, times: int | None = None, *, when: str = "after") -> None:
        """Hold responses of (method, path) for ``seconds``. ``when="after"`` (default): the
        request is handled first, so a client that times out leaves the effect behind (e.g. a
        job that was accepted and created). ``times=None`` = every matching request."""
        self._check_when(when)
        with self._lock:
            self._delays.append(_Fault(method.upper(), _strip_prefix(path), times, when, seconds=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    @staticmethod
    def _check_when(when: str) -> None:
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")

    # ---------------------------------------------------------------- request log
    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return [copy.copy(r) for r in self._requests]

    def request_count(self, method: str | None = None, path: str | None = None, status: int | None = None) -> int:
        """Requests seen, optionally filtered by method, path (route template or fnmatch pattern,
        relative to the API prefix) and response status (faults included)."""
        with self._lock:
            n = 0
            for r in self._requests:
                if method and method.upper() not in ("*", r.method):
                    continue
                if path is not None:
                    p = _strip_prefix(path)
                    if not (p == r.route or fnmatch.fnmatchcase(r.path, p)):
                        continue
                if status is not None and r.status != status:
                    continue
                n += 1
            return n

    def reset_request_log(self) -> None:
        with self._lock:
            self._requests.clear()

    def _take(self, faults: list[_Fault], method: str, path: str, route: str | None, when: str) -> _Fault | None:
        for fault in faults:
            if fault.when == when and fault.matches(method, path, route):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)
