"""A real HTTP proxy on 127.0.0.1 in front of the real S3 server, that drops chosen uploads.

The client under test talks to the proxy as it would to S3 (the request's Host header, which
SigV4 signs, is passed on unchanged, so the server checks the client's real signature). The
proxy forwards every request and its response byte for byte, except the PUTs it is told to
fail: it reads half of the body and closes the connection without an answer, as a dropped
network or a killed upload does. A key chosen to fail keeps failing on every retry of the
client (the minio client retries a PUT five times itself), so the upload as a whole fails.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class S3Proxy:
    """Forwards to `upstream` (http://127.0.0.1:PORT); the `fail_put`-th distinct object PUT fails."""

    def __init__(self, upstream: str, fail_put: int | None = None):
        self.upstream = urlsplit(upstream)
        self.fail_put = fail_put
        self.put_keys: list[str] = []  # distinct object keys PUT through the proxy, in order
        self.failed_keys: set[str] = set()
        self.dropped = 0  # requests dropped (the client's own retries included)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    raise RuntimeError("s3 proxy: a chunked request body is not supported")
                if self.command == "PUT" and proxy.should_fail(self.path):
                    self.rfile.read(length // 2)  # half the upload arrives, then the line drops
                    with proxy._lock:
                        proxy.dropped += 1
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    self.send_response_only(response.status, response.reason)
                    for key, value in response.getheaders():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    length_header = response.getheader("Content-Length")
                    if self.command == "HEAD" and length_header is not None:
                        self.send_header("Content-Length", length_header)
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815 - http.server's names

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="s3-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def should_fail(self, path: str) -> bool:
        """True for the `fail_put`-th distinct object key PUT, every time it is PUT."""
        key = urlsplit(path).path
        with self._lock:
            if key in self.failed_keys:
                return True
            if key not in self.put_keys:
                self.put_keys.append(key)
                if self.fail_put is not None and len(self.put_keys) == self.fail_put:
                    self.failed_keys.add(key)
                    return True
        return False

    def heal(self) -> None:
        """The link is back: nothing fails any more (a key that failed can be PUT again; the
        publish names objects by their content, so a retry of the same rows PUTs the same key)."""
        with self._lock:
            self.fail_put = None
            self.failed_keys.clear()

    def __enter__(self) -> S3Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
