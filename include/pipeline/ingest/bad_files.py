"""Files a sync could not read whole: a truncated or corrupt gzip, a JSON line that does not parse.

source-s3 does not fail on either (measured with its pinned CDK, docs/ingest.md "Bad files"):

- a file whose reading raises midway (a truncated gzip) is logged as `Error parsing record ...
  file=<key> line_no=<n>` at level ERROR, the records read before the break are emitted, and the
  sync ends green; the file stays out of the stream's cursor history, so it is read again later;
- a JSON line that does not parse is glued to the lines after it until they parse together, which
  they never do: the rest of the file is dropped without a word, and the file enters the cursor
  history, so it is never read again.

The embedded runner therefore checks, before it commits a stream, every file that stream read in
the sync: the connector's ERROR logs name the files it broke off (`from_log`), and each JSON lines
file is read again from S3 (`check_object`): its gzip must end properly and its non-blank lines
must be as many as the records the connector sent from it (when not, `first_lost_line` finds the
line where the connector's parser stopped, as the connector does). Under the connection's
`on_bad_file` (connections.yaml):

- `fail` (the default): the stream is not committed (its stage is dropped, its state not stored:
  its cursor does not move) and the sync fails naming the file and line. Once the file is
  replaced, the next run reads it (a newer last-modified time puts it back in the sync);
- `skip`: the file's records are left out of the commit, the rest of the stream is committed, and
  the file is recorded (metrics.bad_files) and alerted. A replaced file is read again as above.

Standard library only (boto3, which PyAirbyte brings, is imported when a file is read again): the
embedded runner (.venv-airbyte) loads this file by its path.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterable
from typing import Any

POLICIES = ("fail", "skip")
DEFAULT_POLICY = "fail"

PARSE_ERROR = re.compile(r"Error parsing record.*?stream=(?P<stream>\S+) file=(?P<file>\S+) line_no=(?P<line>\d+)")


class BadFileStop(RuntimeError):
    """on_bad_file: fail: a stream read a file it could not read whole; nothing of it was committed."""


def from_log(message: str, stack_trace: str | None = None) -> dict | None:
    """The bad file a connector ERROR log names (`Error parsing record ... file=... line_no=...`), or None."""
    match = PARSE_ERROR.search(message or "")
    if match is None:
        return None
    lines = [line.strip() for line in (stack_trace or "").splitlines() if line.strip()]
    line = int(match["line"])
    return {
        "stream": match["stream"],
        "file": match["file"],
        "line": line or None,  # 0: the break came before the first line was read
        "error": lines[-1][:300] if lines else "the connector could not parse it",
        "found_by": "connector",
    }


def _loads() -> Any:
    try:
        import orjson

        return orjson.loads, (orjson.JSONDecodeError,)
    except ImportError:  # pragma: no cover - the runner's venv has orjson
        return json.loads, (ValueError,)


def first_lost_line(lines: Iterable[bytes]) -> int | None:
    """The line where source-s3's JSON lines parser starts dropping the rest of a file, or None.

    As the connector: lines are added to an accumulator until it parses (so an object written
    over several lines is read whole); one that never parses takes every line after it along."""
    loads, errors = _loads()
    accumulator, start = b"", None
    for number, line in enumerate(lines, 1):
        if not accumulator.strip():
            accumulator, start = b"", number if line.strip() else None
        accumulator += line
        try:
            loads(accumulator)
        except errors:
            continue
        accumulator, start = b"", None
    return start if accumulator.strip() else None


def s3_client(config: dict) -> Any:
    """A boto3 S3 client from source-s3's config (endpoint, region, keys at the top or in credentials)."""
    import boto3

    credentials = config.get("credentials") if isinstance(config.get("credentials"), dict) else {}

    def value(key: str) -> Any:
        return config.get(key) or credentials.get(key)

    return boto3.client(
        "s3",
        endpoint_url=value("endpoint") or None,
        region_name=value("region_name") or "us-east-1",
        aws_access_key_id=value("aws_access_key_id"),
        aws_secret_access_key=value("aws_secret_access_key"),
    )


def check_object(client: Any, bucket: str, key: str, records: int) -> dict | None:
    """Read `key` again: the problem that kept the connector from reading it whole, or None.

    `records`: how many the connector sent from it. A gzip must end with its end-of-stream marker;
    a JSON lines file must have as many non-blank lines as records, unless its objects span lines."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    stream: Any = gzip.GzipFile(fileobj=body) if key.endswith(".gz") else body
    lines = 0
    try:
        for line in stream.iter_lines(keepends=True) if hasattr(stream, "iter_lines") else stream:
            if line.strip():
                lines += 1
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # what a broken gzip raises, not a network error
        return {"file": key, "line": lines + 1, "error": f"{type(e).__name__}: {e}", "found_by": "runner"}
    finally:
        body.close()
    if lines <= records:
        return None
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        stream = gzip.GzipFile(fileobj=body) if key.endswith(".gz") else body
        lost = first_lost_line(stream.iter_lines(keepends=True) if hasattr(stream, "iter_lines") else stream)
    finally:
        body.close()
    if lost is None:
        return None
    return {
        "file": key,
        "line": lost,
        "error": f"line {lost} is not JSON: it and the {lines - records - 1} non-blank line(s) after it were not read",
        "found_by": "runner",
    }


def describe(bad: dict) -> str:
    """One line naming a bad file, where in it, why, and what was done."""
    where = f" line {bad['line']}" if bad.get("line") else ""
    return (
        f"bad file in stream {bad['stream']}: {bad['file']}{where}: {bad['error']} -> "
        f"{bad.get('action', 'sync_failed').replace('_', ' ')} (on_bad_file: {bad.get('policy', DEFAULT_POLICY)})"
    )
