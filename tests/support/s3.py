"""A real S3 server (SeaweedFS, as the stack runs) for the session."""

from __future__ import annotations

import secrets

import pytest

from include.pipeline import settings
from include.pipeline.services.s3 import EmbeddedS3


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> EmbeddedS3:
    """One S3 server (SeaweedFS) for the test session, on free ports, with generated keys."""
    server = EmbeddedS3(
        tmp_path_factory.mktemp("s3"), access_key=secrets.token_hex(10), secret_key=secrets.token_urlsafe(24)
    )
    server.start()
    yield server
    server.stop()


def stage_keys(access_key: str, secret_key: str) -> dict[str, str]:
    """Every S3 stage identity's key settings (S3_<IDENTITY>_ACCESS_KEY / _SECRET_KEY) set to one
    key: what connections.yaml's `${VAR}`s resolve to outside Airflow, on a server with one identity.
    What each stage's own identity may do: tests/security/test_s3_identities.py."""
    values = {}
    for identity in settings.S3_IDENTITIES:
        values.update(zip(settings.s3_key_names(identity), (access_key, secret_key), strict=True))
    return values


@pytest.fixture(scope="module")
def exports_env(s3_server: EmbeddedS3):
    """S3_ENDPOINT / S3_ACCESS_KEY / S3_SECRET_KEY of the session's S3 in os.environ, and every
    stage identity's keys (`stage_keys`: what the `${VAR}` references of connections.yaml resolve
    to), for one test module."""
    values = {"S3_ENDPOINT": s3_server.endpoint, "S3_ACCESS_KEY": s3_server.access_key}
    values["S3_SECRET_KEY"] = s3_server.secret_key
    values.update(stage_keys(s3_server.access_key, s3_server.secret_key))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in values.items():
            patch.setenv(key, value)
        yield values
