"""The HTTP side: a request handler that logs each request, applies faults and delays, checks the
token, parses the body and dispatches to the fake's route handler under its lock."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .constants import API_PREFIX, TOKEN_PATH
from .faults import RequestRecord, _Fault
from .problems import UNEXPECTED_DETAIL, _HttpError, micronaut_error_body, problem_body
from .routes import _ROUTE_HANDLERS, _match_route, _strip_prefix

if TYPE_CHECKING:
    from .fake import FakeAirbyteApi


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAirbyteApi/1.0"
    fake: FakeAirbyteApi

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    # ---------------------------------------------------------------------------------
    def _serve(self, method: str) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        full_path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        rel = _strip_prefix(full_path) if full_path.startswith(API_PREFIX) else None
        route, params = _match_route(rel) if rel is not None else (None, {})
        record = RequestRecord(method, rel if rel is not None else full_path, route, query, started=time.time())
        with fake._lock:
            fake._requests.append(record)
            delay_before = fake._take(fake._delays, method, record.path, route, "before")
            fail_before = fake._take(fake._failures, method, record.path, route, "before")
        if delay_before:
            fake._sleep(delay_before.seconds)
        if fail_before:
            self._send_fault(record, fail_before)
            return

        status, payload, ctype = self._handle(method, rel, route, params, query, raw, record)

        with fake._lock:
            delay_after = fake._take(fake._delays, method, record.path, route, "after")
            fail_after = fake._take(fake._failures, method, record.path, route, "after")
        if delay_after:
            fake._sleep(delay_after.seconds)
        if fail_after:
            self._send_fault(record, fail_after)
            return
        self._send(record, status, payload, ctype)

    def _handle(self, method, rel, route, params, query, raw, record):
        fake = self.fake
        if route is None:
            return 404, micronaut_error_body("Not Found", self.path, "Page Not Found"), "application/json"
        if route == TOKEN_PATH:
            if method != "POST":
                return 405, micronaut_error_body("Method Not Allowed", self.path), "application/json"
            with fake._lock:
                return fake._issue_token(self.headers.get("Content-Type", ""), raw, self.path)
        if (method, route) not in _ROUTE_HANDLERS:
            return 405, micronaut_error_body("Method Not Allowed", self.path), "application/json"
        with fake._lock:
            if route != "/health":
                record.authorized = fake._authorized(self.headers.get("Authorization"))
                if not record.authorized:
                    return 401, micronaut_error_body("Unauthorized", self.path), "application/json"
        body: Any = None
        if raw:
            if "json" not in (self.headers.get("Content-Type") or "").lower():
                return 415, micronaut_error_body("Unsupported Media Type", self.path), "application/json"
            try:
                body = json.loads(raw)
            except ValueError:
                err_body = problem_body(400, "bad-request", "The request body is not valid JSON")
                return 400, err_body, "application/problem+json"
        try:
            with fake._lock:
                status, render = fake._dispatch(method, route, params, query, body)
            fake._run_callbacks()
            with fake._lock:
                payload = render() if callable(render) else render
        except _HttpError as err:
            fake._run_callbacks()
            return err.status, err.body, err.content_type
        except Exception as exc:  # a bug in the fake: answer like Airbyte's unexpected-problem
            err_body = problem_body(500, None, f"{UNEXPECTED_DETAIL} ({type(exc).__name__}: {exc})")
            return 500, err_body, "application/problem+json"
        return status, payload, "application/json"

    def _send_fault(self, record: RequestRecord, fault: _Fault) -> None:
        record.fault = "disconnect" if fault.disconnect else f"status {fault.status}"
        if fault.disconnect:
            record.status = None
            record.finished = time.time()
            self.close_connection = True
            return
        body = fault.body
        if body is None:
            body = problem_body(fault.status or 500, None, UNEXPECTED_DETAIL)
        self._send(record, fault.status or 500, body, fault.content_type)

    def _send(self, record: RequestRecord, status: int, payload: Any, content_type: str) -> None:
        if payload is None:
            data = b""
        elif isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload).encode()
        record.status = status
        record.finished = time.time()
        try:
            self.send_response(status)
            if data:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            # the client gave up (e.g. read timeout while the response was delayed)
            self.close_connection = True
