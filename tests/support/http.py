"""HTTP calls of the tests, to servers on this machine (the fake Airbyte API, Airflow's API server,
S3, the dashboard): standard library only, an error status returned rather than raised.

`request` gives the status, content type and body (parsed JSON, else text); `call` is the JSON
form the REST tests use: (status, a dict), with `{"error": ...}` when the answer is not a JSON
object. Status 0 means no answer (refused, reset, timed out).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, NamedTuple

LOCAL = ("http://127.0.0.1:", "http://localhost:")


class Reply(NamedTuple):
    status: int  # 0: no answer
    content_type: str
    body: Any  # parsed JSON; the text when it is not JSON; None when empty (or no answer)
    error: str = ""  # why there was no answer


def request(
    url: str,
    method: str = "GET",
    body: Any = None,
    *,
    data: bytes | None = None,
    token: str | None = None,
    content_type: str | None = "application/json",
    timeout: float = 10.0,
) -> Reply:
    """`method` `url` with `body` as JSON (or raw `data`, sent as `content_type`) and `token` as a
    Bearer token. Only http://127.0.0.1 and http://localhost: the tests call nothing else."""
    if not url.startswith(LOCAL):
        raise ValueError(f"{url}: the tests' HTTP helper calls servers on this machine only ({', '.join(LOCAL)})")
    if data is None and body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http://127.0.0.1 only, checked above
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - checked above
            status, ctype, raw = resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        status, ctype, raw = err.code, err.headers.get("Content-Type", ""), err.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return Reply(0, "", None, f"{type(exc).__name__}: {exc}")
    return Reply(status, ctype, _parse(raw))


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def call(
    url: str, method: str = "GET", body: Any = None, token: str | None = None, timeout: float = 15.0
) -> tuple[int, dict]:
    """A JSON REST call: (status, the answer's JSON object, else `{"error": the answer or why none}`)."""
    reply = request(url, method, body, token=token, timeout=timeout)
    if isinstance(reply.body, dict):
        return reply.status, reply.body
    if reply.status and reply.body is None and reply.status < 400:
        return reply.status, {}
    return reply.status, {"error": reply.error or str(reply.body)[:2000]}
