"""Authentication: the token endpoint (JSON or form body, as Airbyte versions differ), token
lifetimes and revocation, and the Bearer check of every other request."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from .problems import micronaut_error_body


class Tokens:
    """Tokens of the fake's one application (mixed into FakeAirbyteApi)."""

    # ---------------------------------------------------------------- tokens
    @property
    def tokens_issued(self) -> int:
        with self._lock:
            return self._tokens_issued

    def revoke_tokens(self) -> None:
        """Invalidate every issued token server-side (clients keep their cached copy)."""
        with self._lock:
            self._tokens.clear()

    # -- token endpoint -------------------------------------------------------------------
    def _issue_token(self, content_type: str, raw: bytes, path: str) -> tuple[int, Any, str]:
        media = content_type.split(";")[0].strip().lower()
        if media == "application/json":
            try:
                data = json.loads(raw or b"null")
            except ValueError:
                return 400, micronaut_error_body("Bad Request", path, "Invalid JSON"), "application/json"
            if not isinstance(data, dict):
                return 400, micronaut_error_body("Bad Request", path, "Invalid JSON"), "application/json"
        elif media == "application/x-www-form-urlencoded":
            if not self.accept_form_encoded_token:
                # Older OSS servers parse the body as JSON before authentication and fail with 401
                # ("JsonParseException: Unrecognized token 'grant_type'").
                return 401, micronaut_error_body("Unauthorized", path), "application/json"
            data = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        else:
            return (
                415,
                micronaut_error_body(
                    "Unsupported Media Type",
                    path,
                    f"Content Type [{media or 'none'}] not allowed. Allowed types: "
                    "[application/json, application/x-www-form-urlencoded]",
                ),
                "application/json",
            )
        if data.get("client_id") != self.client_id or data.get("client_secret") != self.client_secret:
            status = self.bad_credentials_status
            message = "Unauthorized" if status == 401 else "Bad Request"
            return status, micronaut_error_body(message, path, "Invalid client id or token"), "application/json"
        token = secrets.token_urlsafe(32)
        self._tokens[token] = time.monotonic() + self.token_lifetime
        self._tokens_issued += 1
        expires_in = self.token_expires_in if self.token_expires_in is not None else max(1, round(self.token_lifetime))
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}, "application/json"

    def _authorized(self, header: str | None) -> bool:
        if not self.require_auth:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        expiry = self._tokens.get(header[len("Bearer ") :].strip())
        return expiry is not None and time.monotonic() < expiry
