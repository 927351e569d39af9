"""The embedded S3 server listens on 127.0.0.1 only and answers nothing without a valid key.

Against the session's real SeaweedFS: every listening socket of the `weed mini` process is on
127.0.0.1; anonymous requests (list, read, write) and requests signed with a wrong secret or an
unknown key are refused, and the refused write leaves no object.
"""

from __future__ import annotations

import io
import uuid

import psutil
import pytest
from minio import Minio
from minio.error import S3Error

from tests.support.http import request


def test_every_listener_of_the_s3_server_is_on_127_0_0_1(s3_server):
    pid = s3_server.running_pid()
    assert pid is not None
    listening = [c.laddr for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert s3_server.port in {addr.port for addr in listening}, "the S3 port is among the listeners"
    assert {addr.ip for addr in listening} == {"127.0.0.1"}, f"listeners off loopback: {listening}"


@pytest.fixture(scope="module")
def stored(s3_server) -> tuple[str, str]:
    """A bucket with one object in it, written with the valid key."""
    bucket, key = f"access-{uuid.uuid4().hex[:8]}", "private/secret.txt"
    client = s3_server.client()
    client.make_bucket(bucket)
    client.put_object(bucket, key, io.BytesIO(b"not for anonymous eyes"), 22)
    return bucket, key


def anonymous(method: str, url: str, body: bytes | None = None) -> int:
    reply = request(url, method, data=body, content_type=None)
    assert reply.status, f"{method} {url}: no answer ({reply.error})"
    return reply.status


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/", None),  # list buckets
        ("GET", "/{bucket}?list-type=2", None),  # list objects
        ("GET", "/{bucket}/{key}", None),  # read the object
        ("PUT", "/{bucket}/anonymous.txt", b"written without a key"),  # write one
        ("DELETE", "/{bucket}/{key}", None),  # delete one
    ],
)
def test_requests_without_a_key_are_refused(s3_server, stored, method, path, body):
    bucket, key = stored
    status = anonymous(method, s3_server.endpoint + path.format(bucket=bucket, key=key), body)
    assert status == 403, f"anonymous {method} {path} answered {status}"
    names = {o.object_name for o in s3_server.client().list_objects(bucket, recursive=True)}
    assert names == {key}, "the object is still there and nothing was written"


@pytest.mark.parametrize("wrong", ["secret", "access key"])
def test_a_wrong_secret_or_an_unknown_key_is_refused(s3_server, stored, wrong):
    bucket, key = stored
    access = s3_server.access_key if wrong == "secret" else "AKUNKNOWN" + s3_server.access_key[:8]
    secret = s3_server.secret_key + "x" if wrong == "secret" else s3_server.secret_key
    client = Minio(f"127.0.0.1:{s3_server.port}", access_key=access, secret_key=secret, secure=False)
    with pytest.raises(S3Error) as refused:
        client.get_object(bucket, key)
    assert refused.value.code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied")
    with pytest.raises(S3Error):
        client.put_object(bucket, "wrong-key.txt", io.BytesIO(b"x"), 1)
    assert {o.object_name for o in s3_server.client().list_objects(bucket, recursive=True)} == {key}


def test_the_server_holds_a_volume_for_every_bucket_whatever_the_free_disk(s3_server):
    """SeaweedFS gives each bucket a volume of its own and `weed mini` caps the volumes at the disk's
    free GB by default: a CI run on a disk with 38 GB free failed every write after the 38th bucket
    (HTTP 500, "no free volumes left"). The server is started with its own cap (services/s3.py)."""
    from include.pipeline.services.s3 import VOLUME_MAX

    topology = request(f"http://127.0.0.1:{s3_server.ports['master.port']}/dir/status").body["Topology"]
    assert topology["Max"] == VOLUME_MAX >= 500, topology
    assert topology["Free"] > VOLUME_MAX // 2, f"the session's buckets already hold most volumes: {topology}"
