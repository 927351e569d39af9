"""Each stage's S3 identity may do what its stage needs and is refused everything else, on the
real SeaweedFS the stack runs (its identities written by services/stack.py as `make services`
writes them); anonymous requests are refused; only the admin identity creates buckets."""

from __future__ import annotations

import io
import secrets

import pytest
from minio import Minio
from minio.error import S3Error

from include.pipeline import settings
from include.pipeline.services import stack as services_stack
from include.pipeline.services.s3 import EmbeddedS3

LAKE = "lake"
# a bucket of your own files that a source of connections.yaml reads (make upload's target)
OWN = "helpdesk"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    keys = {}
    with pytest.MonkeyPatch.context() as patch:
        for identity in settings.S3_IDENTITIES:
            for name in settings.s3_key_names(identity):
                keys[name] = secrets.token_urlsafe(18)
                patch.setenv(name, keys[name])
        patch.setattr(services_stack, "source_buckets", lambda lake: sorted({settings.EXPORTS_BUCKET, OWN}))
        stages = services_stack.stage_identities(LAKE)
    s3 = EmbeddedS3(tmp_path_factory.mktemp("s3-identities"), secrets.token_hex(10), secrets.token_urlsafe(24),
                    buckets=(settings.EXPORTS_BUCKET, LAKE, OWN), stage_identities=stages)  # fmt: skip
    s3.start()
    admin = s3.client()
    for bucket in s3.buckets:
        admin.put_object(bucket, "seed/one.json", io.BytesIO(b"{}"), 2)
    yield s3, keys
    s3.stop()


def client(s3: EmbeddedS3, keys: dict[str, str] | None, identity: str | None) -> Minio:
    if identity is None:  # anonymous
        return Minio(f"127.0.0.1:{s3.port}", secure=False)
    access, secret = settings.s3_key_names(identity)
    return Minio(f"127.0.0.1:{s3.port}", access_key=keys[access], secret_key=keys[secret], secure=False)


def allowed(c: Minio, bucket: str, action: str) -> bool:
    """Whether `c` may do `action` (Read, Write, List) on `bucket`: AccessDenied is False."""
    try:
        if action == "Read":
            c.get_object(bucket, "seed/one.json").read()
        elif action == "Write":
            name = f"probe/{secrets.token_hex(4)}.json"
            c.put_object(bucket, name, io.BytesIO(b"{}"), 2)
            c.remove_object(bucket, name)
        else:
            list(c.list_objects(bucket, recursive=True))
    except S3Error as exc:
        assert exc.code == "AccessDenied", exc
        return False
    return True


def expected(identity: str) -> dict[tuple[str, str], bool]:
    _conn_id, where, actions = settings.S3_IDENTITIES[identity]
    buckets = {"exports": {settings.EXPORTS_BUCKET}, "sources": {settings.EXPORTS_BUCKET, OWN}, "lake": {LAKE}}[where]
    return {
        (bucket, action): bucket in buckets and action in actions
        for bucket in (settings.EXPORTS_BUCKET, LAKE, OWN)
        for action in ("Read", "Write", "List")
    }


@pytest.mark.parametrize("identity", list(settings.S3_IDENTITIES))
def test_each_stage_identity_may_only_what_its_stage_needs(server, identity):
    s3, keys = server
    c = client(s3, keys, identity)
    seen = {case: allowed(c, *case) for case in expected(identity)}
    assert seen == expected(identity)
    assert any(seen.values()), "the identity can do its stage's job"
    with pytest.raises(S3Error, match="AccessDenied"):
        c.make_bucket(f"new-{secrets.token_hex(3)}")


def test_the_stages_are_the_ones_the_pipeline_needs():
    """The shop's export writes, ingest reads (never writes) the exports, publish writes the lake,
    DuckDB only reads it: no two stages share an identity's rights."""
    ids = settings.S3_IDENTITIES
    assert {conn for conn, _, _ in ids.values()} == {"shop_exports_writer", "shop_exports", "lake", "lake_reader"}
    assert "Write" not in ids["exports_reader"][2] and "Write" not in ids["lake_reader"][2]
    assert len({(where, actions) for _, where, actions in ids.values()}) == len(ids)


def test_anonymous_requests_are_refused(server):
    s3, _ = server
    anonymous = client(s3, None, None)
    assert not any(
        allowed(anonymous, b, a) for b in (settings.EXPORTS_BUCKET, LAKE, OWN) for a in ("Read", "Write", "List")
    )


def test_a_changed_identity_restarts_the_server_on_it(server):
    """An older stack's server (one admin key) picks the stage identities up at the next start."""
    s3, keys = server
    assert s3._write_identities() is False, "unchanged: no restart"
    pid = s3.running_pid()
    renamed = tuple({**i, "secret_key": i["secret_key"] + "x"} if i["name"] == "lake_reader" else i
                    for i in s3.stage_identities)  # fmt: skip
    s3.stage_identities = renamed
    s3.start()
    assert s3.running_pid() != pid
    access, secret = settings.s3_key_names("lake_reader")
    c = Minio(f"127.0.0.1:{s3.port}", access_key=keys[access], secret_key=keys[secret] + "x", secure=False)
    assert allowed(c, LAKE, "List")
