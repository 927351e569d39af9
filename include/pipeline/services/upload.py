"""`make upload SRC=<file or folder> DEST=s3://<bucket>/<prefix>/`: local files into the stack's S3.

The S3 is the one every stage uses (endpoints.S3: S3_ENDPOINT, else the embedded SeaweedFS that
`make services` started, with S3_ACCESS_KEY / S3_SECRET_KEY from the environment or .env). DEST
names a bucket and a folder in it (the prefix may be empty); the bucket is created when missing.
A file is written as <prefix>/<its name>, a folder's files (recursively, symlinks to files
followed, symlinked folders not) as <prefix>/<their path relative to the folder>. One line per
object written (its URL and bytes), then a summary (files, bytes, seconds).

Every error is a `UploadError` (a ServiceError: the CLI prints it as one line and exits 2), raised
before anything is written when it is about the arguments (SRC, DEST) or the server (not
reachable, keys refused).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from include.pipeline import endpoints
from include.pipeline.services import ServiceError

USAGE = "make upload SRC=<file or folder> DEST=s3://<bucket>/<prefix>/"
# S3's bucket naming rules (AWS general purpose buckets; SeaweedFS and MinIO apply the same):
# 3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_LIKE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


class UploadError(ServiceError):
    """What is wrong with an upload, in one line."""


@dataclass(frozen=True)
class Destination:
    bucket: str
    prefix: str  # "" or "a/b/" (always ending with /)

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_destination(dest: str) -> Destination:
    """`s3://bucket`, `s3://bucket/` or `s3://bucket/some/prefix[/]` -> Destination (the prefix is a folder)."""
    if not dest:
        raise UploadError(f"DEST is not set: {USAGE}")
    if not dest.startswith("s3://"):
        raise UploadError(f"DEST={dest!r} is not an S3 URL: write it as s3://<bucket>/<prefix>/")
    bucket, _, path = dest.removeprefix("s3://").partition("/")
    if not bucket:
        raise UploadError(f"DEST={dest!r} names no bucket: write it as s3://<bucket>/<prefix>/")
    problem = bucket_name_problem(bucket)
    if problem:
        raise UploadError(f"DEST={dest!r}: bucket name {bucket!r} is invalid: {problem}")
    parts = path.strip("/").split("/") if path.strip("/") else []
    if any(part in ("", ".", "..") for part in parts):
        raise UploadError(f"DEST={dest!r}: the prefix has an empty, '.' or '..' folder; write it as a/b/")
    return Destination(bucket, "".join(f"{part}/" for part in parts))


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 bucket name, or None."""
    if not 3 <= len(name) <= 63:
        return f"{len(name)} characters (3 to 63 allowed)"
    if not _BUCKET.match(name):
        return "only lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return "no '..', '.-' or '-.'"
    if _IP_LIKE.match(name):
        return "it looks like an IP address"
    return None


def files_to_upload(src: Path, dest: Destination) -> list[tuple[Path, str]]:
    """[(local file, object key)] of `src` under `dest`, in path order."""
    if not src.exists():
        raise UploadError(f"SRC={str(src)!r}: no such file or folder (from {Path.cwd()})")
    if src.is_file():
        return [(src, dest.key(src.name))]
    if not src.is_dir():
        raise UploadError(f"SRC={str(src)!r} is neither a file nor a folder")
    found = []
    for folder, dirs, names in os.walk(src):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            if path.is_file():  # a broken symlink, a socket, a fifo: not a file to copy
                found.append((path, dest.key(path.relative_to(src).as_posix())))
    if not found:
        raise UploadError(f"SRC={str(src)!r} is a folder with no files in it: nothing to upload")
    return found


def client_for(s3: endpoints.S3):
    """A `minio` client of `s3` that gives up on an unreachable server within seconds (one retry
    of a refused connection, a 5 s connect timeout), not minio's default five retries of 5 min."""
    import certifi
    import urllib3
    from minio import Minio

    url = urlsplit(s3.endpoint)
    if not url.netloc or url.scheme not in ("http", "https"):
        raise UploadError(f"S3_ENDPOINT={s3.endpoint!r} is not a URL like http://127.0.0.1:8333")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=300),
        maxsize=10,
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=5, connect=1, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return Minio(
        url.netloc, access_key=s3.access_key, secret_key=s3.secret_key, secure=url.scheme == "https", http_client=http
    )


def s3_from_settings() -> endpoints.S3:
    """The stack's S3 (S3_ENDPOINT, else the embedded one), or an UploadError saying what to do."""
    try:
        s3 = endpoints.S3.from_settings()
    except RuntimeError as exc:
        raise UploadError(str(exc)) from None
    if not s3.endpoint:
        raise UploadError(
            "no S3 endpoint: the embedded S3 was never started here: run `make services` (or set S3_ENDPOINT)"
        )
    return s3


def stack_client():
    """A `minio` client of the stack's S3: S3_ENDPOINT, else the embedded server `make services` started."""
    return client_for(s3_from_settings())


@dataclass(frozen=True)
class UploadResult:
    files: int
    bytes: int
    seconds: float
    created_bucket: bool


def upload(
    src: str | Path, dest: str, *, s3: endpoints.S3 | None = None, out: Callable[[str], None] = print
) -> UploadResult:
    """Copy `src` (a file or a folder) to `dest` (s3://bucket/prefix/) on `s3` (default: the
    stack's), printing each object written and a summary through `out`."""
    from minio.error import MinioException, S3Error
    from urllib3.exceptions import HTTPError

    started = time.monotonic()
    if not str(src):  # before Path(): Path("") is the current folder
        raise UploadError(f"SRC is not set: {USAGE}")
    target = parse_destination(dest)
    files = files_to_upload(Path(src), target)
    s3 = s3 or s3_from_settings()
    client = client_for(s3)
    where = f"S3 at {s3.endpoint}"
    current = ""
    try:
        created = False
        if not client.bucket_exists(target.bucket):
            client.make_bucket(target.bucket)
            created = True
            out(f"created bucket s3://{target.bucket} on {s3.endpoint}")
        total = 0
        for path, key in files:
            current = f" writing s3://{target.bucket}/{key}"
            try:
                fh = path.open("rb")
            except OSError as exc:
                raise UploadError(f"cannot read {path}: {exc.strerror}") from None
            with fh:
                size = os.fstat(fh.fileno()).st_size
                client.put_object(target.bucket, key, fh, size)
            total += size
            out(f"  s3://{target.bucket}/{key}  {size:,} bytes")
    except S3Error as exc:
        raise UploadError(f"{where} refused{current}: {exc.code} ({exc.message})") from None
    except MinioException as exc:  # e.g. InvalidResponseError: something answered, not as S3
        raise UploadError(f"{where} did not answer as S3{current} ({type(exc).__name__}): check S3_ENDPOINT") from None
    except HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UploadError(
            f"{where} is not reachable{current} ({type(reason).__name__}): run `make services` to start the "
            "embedded S3, or check S3_ENDPOINT"
        ) from None
    seconds = time.monotonic() - started
    out(f"uploaded {len(files)} file(s), {total:,} bytes to {target} in {seconds:.1f} s")
    return UploadResult(len(files), total, seconds, created)
