"""The lake's destination: a connector's messages in, Parquet parts in Airbyte's S3 layout out.

What Airbyte's S3 destination does, for the embedded engine: objects under the bucket path,
`s3_path_format` (by default `${NAMESPACE}/${STREAM_NAME}/${YEAR}_${MONTH}_${DAY}_${EPOCH}_`, an
empty namespace dropped), then the part number and `.parquet` (parquet.py writes the parts). The
connector's state (its cursors) is saved in the bucket, at `<bucket path>/_airbyte_state/
<connection>.json`, only after every record before it is uploaded: an incremental sync reads from
there next time. Like Airbyte's S3 destination this is at-least-once: parts uploaded by a sync that
then failed stay, and the retry reads their records again (`_airbyte_raw_id` differs; deduplicate on
the primary key and `_airbyte_extracted_at`).

The connector runs through the same process code as the warehouse's (connector.py: wide pipe, its
own process group, killed with the sync). Runs on Airflow's side: the declaration is resolved by
include/pipeline/ingest/lake_sync.py, which calls this.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.airbyte_runtime.connector import kill_group, widen_pipe
from include.airbyte_runtime.parquet import PartWriter, StreamLayout

ROWS_PER_GROUP = 10_000  # records held in memory per stream
ROWS_PER_OBJECT = 500_000  # records per Parquet object (part)
STATE_FOLDER = "_airbyte_state"
_VARIABLE = re.compile(r"\$\{([A-Z_]+)\}")


class S3DestinationError(RuntimeError):
    pass


def object_key(s3: Any, stream: str, namespace: str | None, started: dt.datetime, part: int) -> str:
    """The key Airbyte's S3 destination gives part `part` of `stream` in a sync started at `started`."""
    values = {
        "NAMESPACE": namespace or "", "STREAM_NAME": stream, "YEAR": f"{started.year:04d}",
        "MONTH": f"{started.month:02d}", "DAY": f"{started.day:02d}", "HOUR": f"{started.hour:02d}",
        "MINUTE": f"{started.minute:02d}", "SECOND": f"{started.second:02d}",
        "MILLISECOND": f"{started.microsecond // 1000:03d}", "EPOCH": str(int(started.timestamp() * 1000)),
        "UUID": str(uuid.uuid4()),
    }  # fmt: skip
    path = _VARIABLE.sub(lambda m: values[m.group(1)], s3.path_format)
    key = "/".join(part_ for part_ in f"{s3.path_prefix}/{path}".split("/") if part_)  # empty segments dropped
    if path.endswith("/"):
        key += "/"
    return f"{key}{part}.parquet"


def state_key(s3: Any, connection: str) -> str:
    return f"{s3.path_prefix}/{STATE_FOLDER}/{connection}.json"


@dataclass
class LakeSync:
    """Airbyte messages in, Parquet parts and the saved state out (the destination's half)."""

    s3: Any
    connection: str
    client: Any
    layouts: dict[str, StreamLayout]
    overwrite: set[str] = field(default_factory=set)  # full_refresh_overwrite streams
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    rows_per_group: int = ROWS_PER_GROUP
    rows_per_object: int = ROWS_PER_OBJECT
    log: Callable[[str], None] = print
    schema_policy: str = "propagate_columns"  # the connection's non_breaking_schema_updates_behavior

    def __post_init__(self) -> None:
        self.sync_id = int(self.started.timestamp() * 1000)
        self.folder = Path(tempfile.mkdtemp(prefix=f"lake-{self.connection}-"))
        self.writers: dict[str, PartWriter] = {}
        self.states: dict[str, Any] = {}  # stream (or "" for a global state) -> the latest state message
        self.uploaded_bytes = 0
        self.schema_changes: list[dict] = []  # new columns met (schema_changes.py), as the runner reports them
        self._known_keys: set[tuple[str, tuple]] = set()

    def _writer(self, stream: str, namespace: str | None) -> PartWriter:
        writer = self.writers.get(stream)
        if writer is None:
            if stream not in self.layouts:
                raise S3DestinationError(f"the source emitted a record of stream {stream!r}, which was not selected")

            def key_of(part: int, stream=stream, namespace=namespace) -> str:
                return object_key(self.s3, stream, namespace, self.started, part)

            writer = PartWriter(
                stream, namespace, self.layouts[stream], self._upload, key_of, self.folder, self.rows_per_group,
                self.rows_per_object,
            )  # fmt: skip
            self.writers[stream] = writer
        return writer

    def _upload(self, path: Path, key: str, rows: int) -> None:
        size = path.stat().st_size
        self.client.fput_object(self.s3.bucket, key, str(path), content_type="application/vnd.apache.parquet")
        self.uploaded_bytes += size
        self.log(f"lake: s3://{self.s3.bucket}/{key} ({rows:,} records, {size:,} bytes)")

    def consume(self, messages: Iterable[dict]) -> None:
        for message in messages:
            kind = message.get("type")
            if kind == "RECORD":
                record = message["record"]
                self.take(record["stream"], record.get("namespace"), record.get("data") or {}, record["emitted_at"])
            elif kind == "STATE":
                self.take_state(message["state"])

    def take(self, stream: str, namespace: str | None, data: dict, emitted_at: int) -> None:
        """One record into its stream's open part."""
        writer = self._writer(stream, namespace)
        if (stream, tuple(data)) not in self._known_keys:
            self._meet_keys(writer, data)
        writer.add(writer.layout.row(data, emitted_at, self.sync_id, 0))

    def take_state(self, state: dict) -> None:
        """A state message (as JSON): saved by `commit`, after every record before it is uploaded."""
        descriptor = (state.get("stream") or {}).get("stream_descriptor") or {}
        self.states[descriptor.get("name", "")] = state

    def _meet_keys(self, writer: PartWriter, data: dict) -> None:
        """A record with keys not seen yet: a key the stream's schema lacks is a new column, which the
        policy keeps (the open part is uploaded, the next parts have the column), ignores or refuses
        (disable_connection: the sync fails before its state is saved). Recorded either way."""
        from include.pipeline.ingest import schema_changes

        self._known_keys.add((writer.stream, tuple(data)))
        names = {name for name, _ in writer.layout.columns}
        for key in (k for k in data if k not in names):
            kind = schema_changes.json_type(data[key]) if data[key] is not None else "string"
            change = {"stream": writer.stream, "column": key, "change": schema_changes.NEW_COLUMN,
                      "detail": f"not declared; first value a JSON {kind}", "policy": self.schema_policy,
                      "action": schema_changes.action_of(self.schema_policy, schema_changes.NEW_COLUMN),
                      "records": None}  # fmt: skip
            if change not in self.schema_changes:
                self.schema_changes.append(change)
                self.log(f"lake: {schema_changes.describe(change)}")
            if self.schema_policy == "disable_connection":
                raise S3DestinationError(
                    f"non_breaking_schema_updates_behavior is disable_connection: {schema_changes.describe(change)}; "
                    "nothing of this sync's state was saved"
                )
            if self.schema_policy in schema_changes.KEEPS:
                writer.finish_part()  # a part has one schema: the column starts with the next one
                writer.layout.columns.append((key, kind))
                writer.schema = writer.layout.arrow_schema()

    def commit(self) -> dict[str, dict]:
        """Upload every open part, then save the state, then (overwrite streams) remove older objects."""
        for writer in self.writers.values():
            writer.finish_part()
        if self.states:
            body = json.dumps(list(self.states.values()), sort_keys=True).encode()
            self.client.put_object(
                self.s3.bucket, state_key(self.s3, self.connection), io.BytesIO(body), len(body),
                content_type="application/json",
            )  # fmt: skip
        removed = 0
        for stream in self.overwrite:
            keep = set(self._writer(stream, None).keys)
            prefix = object_key(self.s3, stream, None, self.started, 0).rsplit("/", 1)[0] + "/"
            for obj in self.client.list_objects(self.s3.bucket, prefix=prefix, recursive=True):
                if obj.object_name not in keep:
                    self.client.remove_object(self.s3.bucket, obj.object_name)
                    removed += 1
        if removed:
            self.log(f"lake: {removed} objects of earlier full refreshes removed")
        return {
            name: {"records": w.records, "bytes": w.bytes, "objects": len(w.keys), "keys": w.keys}
            for name, w in self.writers.items()
        }

    def uploaded_keys(self) -> list[str]:
        return [key for writer in self.writers.values() for key in writer.keys]

    def remove_uploaded(self) -> int:
        """Remove the parts this sync uploaded (its state was not saved: they would be read again)."""
        removed = 0
        for key in self.uploaded_keys():
            self.client.remove_object(self.s3.bucket, key)
            removed += 1
        return removed

    def close(self) -> None:
        import shutil

        for writer in self.writers.values():
            if writer.writer is not None:
                writer.writer.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def load_state(client, s3: Any, connection: str) -> list | None:
    from minio.error import S3Error

    try:
        response = client.get_object(s3.bucket, state_key(s3, connection))
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            return None
        raise
    try:
        return json.loads(response.read())
    finally:
        response.close()
        response.release_conn()


def client_for(s3: Any):
    """A `minio` client for resolved settings."""
    from urllib.parse import urlsplit

    from minio import Minio

    url = urlsplit(s3.endpoint if "://" in s3.endpoint else f"http://{s3.endpoint}")
    if not url.netloc:
        raise S3DestinationError(
            f"the s3 destination's endpoint {s3.endpoint!r} is not a URL like http://127.0.0.1:8333"
        )
    return Minio(
        url.netloc, access_key=s3.access_key_id, secret_key=s3.secret_access_key, secure=url.scheme == "https",
        region=s3.region,
    )  # fmt: skip


def connector_messages(lines: Iterable[str], log: Callable[[str], None], tail: list[str]) -> Iterator[dict]:
    """Airbyte messages from a connector's stdout; logs and errors go to `log` and `tail`."""
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            if line:
                log(line)
                tail[:] = (tail + [line])[-30:]
            continue
        try:
            message = json.loads(line)
        except ValueError:
            log(line)
            continue
        kind = message.get("type")
        if kind in ("RECORD", "STATE"):
            yield message
        elif kind == "LOG":
            text = message["log"].get("message", "")
            if message["log"].get("level") in ("ERROR", "FATAL", "WARN"):
                log(text)
                tail[:] = (tail + [text])[-30:]
        elif kind == "TRACE" and message["trace"].get("type") == "ERROR":
            text = message["trace"]["error"].get("message", "")
            log(f"connector error: {text}")
            tail[:] = (tail + [text])[-30:]


def run_connector(executable: Path, args: list[str], env: dict[str, str], log, tail) -> Iterator[dict]:
    """The connector's messages, the process ended (and checked) when they are all read."""
    proc = subprocess.Popen(
        [str(executable), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        widen_pipe(proc.stdout)  # so that the connector never waits on this reader (connector.py)
        yield from connector_messages(proc.stdout, log, tail)
        code = proc.wait()
    finally:
        if proc.poll() is None:
            kill_group(proc)
    if code != 0:
        raise S3DestinationError(
            f"{executable.name} {args[0]} failed (exit {code}). Last output:\n" + "\n".join(tail[-30:])
        )


def discover(executable: Path, config_path: Path, env: dict[str, str], log, tail) -> dict[str, dict]:
    """The streams the source offers (its `discover` command's catalog)."""
    proc = subprocess.run(
        [str(executable), "discover", "--config", str(config_path)], capture_output=True, text=True, env=env,
        timeout=600, check=False,
    )  # fmt: skip
    catalog = None
    for line in proc.stdout.splitlines():
        if line.startswith('{"type":"CATALOG"') or line.startswith('{"type": "CATALOG"'):
            catalog = json.loads(line)["catalog"]
    if proc.returncode != 0 or catalog is None:
        lines = [*proc.stdout.splitlines()[-15:], *proc.stderr.splitlines()[-15:]]
        for line in lines:
            log(line)
        raise S3DestinationError(f"{executable.name} discover failed (exit {proc.returncode}): see the lines above")
    return {s["name"]: s for s in catalog["streams"]}
