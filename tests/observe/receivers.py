"""Real alert receivers on 127.0.0.1 for the tests: an SMTP server (aiosmtpd) and an HTTP endpoint."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mailbox:
    """What the SMTP server received: one entry per message, and the logins it accepted."""

    host: str
    port: int
    login: str
    password: str
    messages: list[dict] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1 with AUTH LOGIN/PLAIN (no TLS: a test server), storing every message."""

    def __init__(self, login: str, password: str) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        box = Mailbox("127.0.0.1", free_port(), login, password)
        self.box = box

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == (
                login,
                password,
            )
            if ok:
                box.logins.append((login, password))
            return AuthResult(success=ok)

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                part = msg.get_body(preferencelist=("html", "plain"))
                box.messages.append(
                    {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "subject": str(msg["subject"]),
                     "body": part.get_content() if part is not None else "", "raw": envelope.content.decode("utf-8", "replace")}
                )  # fmt: skip
                return "250 OK"

        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=box.port, authenticator=authenticate, auth_require_tls=False
        )

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self.box

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class WebhookReceiver:
    """http.server on 127.0.0.1 storing every POST (path, headers, JSON body); answers 200."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                posts.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body or b"null")})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def connection_env(box: Mailbox, hook: WebhookReceiver, token: str) -> dict[str, str]:
    """AIRFLOW_CONN_ALERTS_EMAIL / AIRFLOW_CONN_ALERTS_WEBHOOK pointing at the receivers."""
    mail = {
        "conn_type": "smtp", "host": box.host, "port": box.port, "login": box.login, "password": box.password,
        "extra": {"to": "oncall@example.com, data@example.com", "from_email": "airflow@example.com",
                  "disable_ssl": True, "disable_tls": True, "timeout": 10, "retry_limit": 0},
    }  # fmt: skip
    webhook = {"conn_type": "http", "host": hook.url, "password": token}
    return {"AIRFLOW_CONN_ALERTS_EMAIL": json.dumps(mail), "AIRFLOW_CONN_ALERTS_WEBHOOK": json.dumps(webhook)}
