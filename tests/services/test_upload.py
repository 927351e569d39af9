"""`make upload SRC=... DEST=s3://bucket/prefix/`: local files into the stack's S3 (services/upload.py).

Against the session's real S3 server (SeaweedFS, as `make services` runs it), through the CLI
the Makefile calls: a nested folder is uploaded and read back byte for byte under the prefix, its
bucket created; each object and a summary are printed. Every wrong argument, an unreachable
server and a wrong key end with exit 2 and one line on stderr naming what is wrong, no traceback,
and nothing written.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import uuid

import pytest

from include.pipeline import settings
from include.pipeline.cli import main
from include.pipeline.services import find_free_port
from tests.support import REPO_ROOT


def new_bucket() -> str:
    return f"upload-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def folder(tmp_path):
    """A folder with files at three depths, one of them big enough for a multipart upload (> 5 MiB)."""
    root = tmp_path / "exports"
    files = {
        "customers.csv": b"id,name\n1,Ada\n2,Grace\n",
        "2026/01/orders.jsonl": b'{"id": 1}\n{"id": 2}\n',
        "2026/01/07/big.bin": os.urandom(6 * 1024 * 1024 + 123),
        "2026/empty.txt": b"",
    }
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root, files


def objects(s3_server, bucket: str) -> dict[str, bytes]:
    client = s3_server.client()
    out = {}
    for obj in client.list_objects(bucket, recursive=True):
        response = client.get_object(bucket, obj.object_name)
        try:
            out[obj.object_name] = response.read()
        finally:
            response.close()
            response.release_conn()
    return out


def test_a_folder_is_copied_recursively_under_the_prefix_byte_for_byte(s3_server, exports_env, folder, capsys):
    root, files = folder
    bucket = new_bucket()
    assert not s3_server.client().bucket_exists(bucket)

    assert main(["upload", str(root), f"s3://{bucket}/incoming/day-1/"]) == 0

    assert s3_server.client().bucket_exists(bucket), "the missing bucket was created"
    assert objects(s3_server, bucket) == {f"incoming/day-1/{name}": data for name, data in files.items()}
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"created bucket s3://{bucket} on {s3_server.endpoint}"
    # a folder's own files first, then its subfolders', each in name order
    order = ["customers.csv", "2026/empty.txt", "2026/01/orders.jsonl", "2026/01/07/big.bin"]
    assert lines[1:-1] == [f"  s3://{bucket}/incoming/day-1/{name}  {len(files[name]):,} bytes" for name in order]
    total = sum(len(data) for data in files.values())
    assert re.fullmatch(
        rf"uploaded 4 file\(s\), {total:,} bytes to s3://{bucket}/incoming/day-1/ in \d+\.\d s", lines[-1]
    ), lines[-1]


def test_a_file_goes_under_its_own_name_into_an_existing_bucket(s3_server, exports_env, folder, capsys):
    root, files = folder
    bucket = new_bucket()
    s3_server.client().make_bucket(bucket)
    s3_server.client().put_object(bucket, "kept.txt", io.BytesIO(b"already here"), 12)

    assert main(["upload", str(root / "2026" / "01" / "orders.jsonl"), f"s3://{bucket}"]) == 0

    assert objects(s3_server, bucket) == {"kept.txt": b"already here", "orders.jsonl": files["2026/01/orders.jsonl"]}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"  s3://{bucket}/orders.jsonl  {len(files['2026/01/orders.jsonl'])} bytes", "no bucket made"
    assert lines[1].startswith(f"uploaded 1 file(s), {len(files['2026/01/orders.jsonl'])} bytes to s3://{bucket}/ in ")
    assert len(lines) == 2


def test_uploading_again_overwrites_the_same_keys(s3_server, exports_env, folder, capsys):
    root, files = folder
    bucket = new_bucket()
    assert main(["upload", str(root), f"s3://{bucket}/p"]) == 0
    (root / "customers.csv").write_bytes(b"id,name\n3,Edsger\n")
    assert main(["upload", str(root), f"s3://{bucket}/p/"]) == 0
    stored = objects(s3_server, bucket)
    assert set(stored) == {f"p/{name}" for name in files}, "the same keys, none added"
    assert stored["p/customers.csv"] == b"id,name\n3,Edsger\n"


def fails(capsys, *args: str) -> str:
    """Run the CLI expecting exit 2 and one line on stderr; return that line."""
    assert main(["upload", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "", "nothing was written"
    assert "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith("error: ")
    return line


@pytest.mark.parametrize(
    ("dest", "message"),
    [
        ("", "error: DEST is not set: make upload SRC=<file or folder> DEST=s3://<bucket>/<prefix>/"),
        ("/tmp/out/", "error: DEST='/tmp/out/' is not an S3 URL: write it as s3://<bucket>/<prefix>/"),
        ("https://bucket/p/", "error: DEST='https://bucket/p/' is not an S3 URL"),
        ("s3:///p/", "error: DEST='s3:///p/' names no bucket"),
        ("s3://ab/p/", "error: DEST='s3://ab/p/': bucket name 'ab' is invalid: 2 characters (3 to 63 allowed)"),
        ("s3://My_Bucket/p/", "bucket name 'My_Bucket' is invalid: only lowercase letters, digits, '.' and '-'"),
        ("s3://-bucket/p/", "bucket name '-bucket' is invalid: only lowercase letters"),
        ("s3://my..bucket/p/", "bucket name 'my..bucket' is invalid: no '..', '.-' or '-.'"),
        ("s3://192.168.1.10/p/", "bucket name '192.168.1.10' is invalid: it looks like an IP address"),
        (f"s3://{'b' * 64}/p/", "is invalid: 64 characters (3 to 63 allowed)"),
        ("s3://my-bucket/a//b/", "error: DEST='s3://my-bucket/a//b/': the prefix has an empty, '.' or '..' folder"),
        ("s3://my-bucket/a/../b/", "the prefix has an empty, '.' or '..' folder"),
    ],
)
def test_a_dest_that_is_not_an_s3_folder_url_is_refused(s3_server, exports_env, folder, capsys, dest, message):
    root, _ = folder
    line = fails(capsys, str(root), dest)
    assert message in line, line


def test_a_missing_src_is_named(exports_env, tmp_path, capsys):
    line = fails(capsys, str(tmp_path / "nope"), "s3://my-bucket/p/")
    assert line == f"error: SRC={str(tmp_path / 'nope')!r}: no such file or folder (from {os.getcwd()})"
    line = fails(capsys, "", "s3://my-bucket/p/")
    assert line == "error: SRC is not set: make upload SRC=<file or folder> DEST=s3://<bucket>/<prefix>/"


def test_an_empty_folder_is_refused_and_makes_no_bucket(s3_server, exports_env, tmp_path, capsys):
    (tmp_path / "empty" / "only" / "folders").mkdir(parents=True)
    bucket = new_bucket()
    line = fails(capsys, str(tmp_path / "empty"), f"s3://{bucket}/p/")
    assert line == f"error: SRC={str(tmp_path / 'empty')!r} is a folder with no files in it: nothing to upload"
    assert not s3_server.client().bucket_exists(bucket)


def test_an_unreachable_s3_says_to_start_the_services(exports_env, folder, monkeypatch, capsys):
    root, _ = folder
    port = find_free_port()  # nothing listens there
    monkeypatch.setenv("S3_ENDPOINT", f"http://127.0.0.1:{port}")
    line = fails(capsys, str(root), "s3://my-bucket/p/")
    assert line == (
        f"error: S3 at http://127.0.0.1:{port} is not reachable (NewConnectionError): "
        "run `make services` to start the embedded S3, or check S3_ENDPOINT"
    )


def test_an_endpoint_that_is_not_s3_is_named_in_one_line(exports_env, folder, monkeypatch, capsys):
    """A web server on the port (a wrong S3_ENDPOINT): minio's own errors become the one line."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's hook names)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>not s3</html>")

        do_HEAD = do_GET  # noqa: N815

        def do_PUT(self):  # noqa: N802
            self.send_response(405)  # as a web app does: an HTML page, no S3 error document
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>method not allowed</html>")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root, _ = folder
        monkeypatch.setenv("S3_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        line = fails(capsys, str(root), "s3://my-bucket/p/")
    finally:
        server.shutdown()
    assert line.startswith(f"error: S3 at http://127.0.0.1:{server.server_port} did not answer as S3"), line
    assert "check S3_ENDPOINT" in line


def test_no_endpoint_at_all_says_to_start_the_services(exports_env, folder, monkeypatch, tmp_path, capsys):
    root, _ = folder
    monkeypatch.delenv("S3_ENDPOINT")
    monkeypatch.setattr(settings, "SERVICES_STATE", tmp_path / "services.json")  # never started here
    line = fails(capsys, str(root), "s3://my-bucket/p/")
    assert (
        line
        == "error: no S3 endpoint: the embedded S3 was never started here: run `make services` (or set S3_ENDPOINT)"
    )


def test_a_wrong_secret_is_reported_and_writes_nothing(s3_server, exports_env, folder, monkeypatch, capsys):
    root, _ = folder
    bucket = new_bucket()
    s3_server.client().make_bucket(bucket)
    monkeypatch.setenv("S3_SECRET_KEY", exports_env["S3_SECRET_KEY"] + "x")
    line = fails(capsys, str(root), f"s3://{bucket}/p/")
    assert line.startswith(f"error: S3 at {s3_server.endpoint} refused: SignatureDoesNotMatch ("), line
    assert objects(s3_server, bucket) == {}


def test_make_upload_runs_it_and_fails_in_one_line(s3_server, exports_env, folder):
    """The Makefile target passes SRC and DEST through (paths with spaces too) and keeps the exit code."""
    root, files = folder
    spaced = root / "with space.csv"
    spaced.write_bytes(b"a,b\n")
    bucket = new_bucket()
    env = {**os.environ, **exports_env}
    done = subprocess.run(
        ["make", "-s", "upload", f"SRC={spaced}", f"DEST=s3://{bucket}/x/"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"  s3://{bucket}/x/with space.csv  4 bytes" in done.stdout.splitlines()
    assert objects(s3_server, bucket) == {"x/with space.csv": b"a,b\n"}

    done = subprocess.run(
        ["make", "-s", "upload", f"SRC={root / 'missing'}", f"DEST=s3://{bucket}/x/"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    # make's own line: `make: ***`, or `make[1]: ***` when make test runs this under make
    errors = [line for line in done.stderr.splitlines() if not re.match(r"make(\[\d+\])?: ", line)]
    assert errors == [f"error: SRC={str(root / 'missing')!r}: no such file or folder (from {REPO_ROOT})"]
