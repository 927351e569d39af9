"""Airbyte's S3 destination for connections.yaml (`type: s3`): the lake's raw history, as Parquet.

One declaration, both engines:

- platform: `platform_config` (include/pipeline/ingest/declaration/s3.py) is the `destination-s3` configuration of Airbyte's public API
  (api_sdk.yaml `destination-s3`: bucket, bucket path, region, endpoint, keys, Parquet format,
  `s3_path_format`); Airbyte's own connector writes the files.
- embedded: `sync_to_lake` runs the source connector itself (its `read` command, from its venv)
  and writes what it emits the way Airbyte's S3 destination lays it out: under the bucket path,
  `s3_path_format` (by default `${NAMESPACE}/${STREAM_NAME}/${YEAR}_${MONTH}_${DAY}_${EPOCH}_`,
  an empty namespace dropped) then the part number and `.parquet`; each file holds the
  `_airbyte_raw_id`, `_airbyte_extracted_at`, `_airbyte_generation_id` and `_airbyte_meta`
  columns beside the stream's data columns (typed from the stream's JSON schema; a value that
  does not fit its type is written as NULL and listed in `_airbyte_meta.changes`, as Airbyte does).

Memory stays bounded: records are buffered per stream up to `ROWS_PER_GROUP`, written as one
Parquet row group to a local file, and every `ROWS_PER_OBJECT` rows the file is uploaded as the
next part. The connector's state (its cursors) is saved in the bucket, at
`<bucket path>/_airbyte_state/<connection>.json`, only after every record before it is uploaded:
an incremental sync reads from there next time. Like Airbyte's S3 destination this is
at-least-once: parts uploaded by a sync that then failed stay, and the retry reads their records
again (`_airbyte_raw_id` differs; deduplicate on the primary key and `_airbyte_extracted_at`).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.pipeline.ingest.connector_pipe import widen_pipe
from include.pipeline.ingest.declaration import FILE_COLUMNS, FILE_CURSOR, load_catalog
from include.pipeline.ingest.declaration.s3 import COMPRESSION, VARIABLE, S3DestinationError, S3Settings

ROWS_PER_GROUP = 10_000  # records held in memory per stream
ROWS_PER_OBJECT = 500_000  # records per Parquet object (part)
STATE_FOLDER = "_airbyte_state"


# -- object layout -------------------------------------------------------------------------------
def object_key(s3: S3Settings, stream: str, namespace: str | None, started: dt.datetime, part: int) -> str:
    """The key Airbyte's S3 destination gives part `part` of `stream` in a sync started at `started`."""
    values = {
        "NAMESPACE": namespace or "", "STREAM_NAME": stream, "YEAR": f"{started.year:04d}",
        "MONTH": f"{started.month:02d}", "DAY": f"{started.day:02d}", "HOUR": f"{started.hour:02d}",
        "MINUTE": f"{started.minute:02d}", "SECOND": f"{started.second:02d}",
        "MILLISECOND": f"{started.microsecond // 1000:03d}", "EPOCH": str(int(started.timestamp() * 1000)),
        "UUID": str(uuid.uuid4()),
    }  # fmt: skip
    path = VARIABLE.sub(lambda m: values[m.group(1)], s3.path_format)
    key = "/".join(part_ for part_ in f"{s3.path_prefix}/{path}".split("/") if part_)  # empty segments dropped
    if path.endswith("/"):
        key += "/"
    return f"{key}{part}.parquet"


def state_key(s3: S3Settings, connection: str) -> str:
    return f"{s3.path_prefix}/{STATE_FOLDER}/{connection}.json"


# -- records -> Parquet --------------------------------------------------------------------------
def _json_type(schema: dict) -> tuple[str, str | None]:
    """(type, format) of a JSON-schema property, null and unions folded to the one real type."""
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        real = [k for k in kind if k != "null"]
        kind = real[0] if len(real) == 1 else "string"
    if kind == "string" and schema.get("airbyte_type") in ("integer",):
        kind = "integer"
    return kind, schema.get("format")


def _meta_type():
    import pyarrow as pa

    change = pa.struct([("field", pa.string()), ("change", pa.string()), ("reason", pa.string())])
    return pa.struct([("sync_id", pa.int64()), ("changes", pa.list_(change))])


@dataclass
class StreamLayout:
    """The Parquet schema of one stream and how a record's values become its columns."""

    columns: list[tuple[str, str]]  # (column, json type)

    @classmethod
    def of(cls, json_schema: dict) -> StreamLayout:
        properties = json_schema.get("properties") or {}
        return cls([(name, _json_type(prop if isinstance(prop, dict) else {})[0]) for name, prop in properties.items()])

    def arrow_schema(self):
        import pyarrow as pa

        kinds = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}
        fields = [
            pa.field("_airbyte_raw_id", pa.string(), nullable=False),
            pa.field("_airbyte_extracted_at", pa.timestamp("ms", tz="UTC"), nullable=False),
            pa.field("_airbyte_generation_id", pa.int64()),
            pa.field("_airbyte_meta", _meta_type()),
        ]
        return pa.schema(fields + [pa.field(name, kinds.get(kind, pa.string())) for name, kind in self.columns])

    def row(self, data: dict, emitted_at: int, sync_id: int, generation_id: int) -> list:
        changes = []
        values: list[Any] = [str(uuid.uuid4()), emitted_at, generation_id]
        cells = []
        for name, kind in self.columns:
            value = data.get(name)
            try:
                cells.append(_fit(value, kind))
            except (TypeError, ValueError, OverflowError):
                cells.append(None)
                changes.append({"field": name, "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"})
        values.append({"sync_id": sync_id, "changes": changes})
        return values + cells


def _fit(value: Any, kind: str) -> Any:
    """The value as its column holds it; raise for a value the type cannot hold."""
    if value is None:
        return None
    if kind == "integer":
        if isinstance(value, bool):
            raise TypeError("a boolean is not an integer")
        number = int(value) if isinstance(value, int) else int(str(value)) if str(value).lstrip("-").isdigit() else None
        if number is None or not -(2**63) <= number < 2**63:
            raise ValueError(f"{value!r} is not a 64-bit integer")
        return number
    if kind == "number":
        if isinstance(value, bool):
            raise TypeError("a boolean is not a number")
        return float(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise TypeError(f"{value!r} is not a boolean")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value if isinstance(value, str) else json.dumps(value)


class PartWriter:
    """One stream's Parquet parts: row groups into a local file, uploaded every ROWS_PER_OBJECT rows."""

    def __init__(self, stream: str, namespace: str | None, layout: StreamLayout, upload: Callable[[Path, str, int], None],
                 key_of: Callable[[int], str], folder: Path, rows_per_group: int, rows_per_object: int):  # fmt: skip
        self.stream, self.namespace, self.layout = stream, namespace, layout
        self.schema = layout.arrow_schema()
        self.upload, self.key_of, self.folder = upload, key_of, folder
        self.rows_per_group, self.rows_per_object = rows_per_group, rows_per_object
        self.buffer: list[list] = []
        self.writer = None
        self.path: Path | None = None
        self.rows_in_part = 0
        self.part = 0
        self.records = 0
        self.bytes = 0
        self.keys: list[str] = []

    def add(self, row: list) -> None:
        self.buffer.append(row)
        self.records += 1
        if len(self.buffer) >= self.rows_per_group:
            self._write_group()
            if self.rows_in_part >= self.rows_per_object:
                self.finish_part()

    def _write_group(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffer:
            return
        if self.writer is None:
            self.path = self.folder / f"{self.stream}-{self.part}.parquet"
            self.writer = pq.ParquetWriter(self.path, self.schema, compression=COMPRESSION.lower())
        columns = list(zip(*self.buffer, strict=True))
        arrays = [pa.array(list(values), type=f.type) for values, f in zip(columns, self.schema, strict=True)]
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows_in_part += len(self.buffer)
        self.buffer = []

    def finish_part(self) -> None:
        """Write what is buffered and upload the open part (nothing when no record is pending)."""
        self._write_group()
        if self.writer is None:
            return
        self.writer.close()
        key = self.key_of(self.part)
        self.bytes += self.path.stat().st_size
        self.upload(self.path, key, self.rows_in_part)
        self.path.unlink()
        self.keys.append(key)
        self.writer, self.path, self.rows_in_part = None, None, 0
        self.part += 1


# -- the embedded sync ---------------------------------------------------------------------------
@dataclass
class LakeSync:
    """Airbyte messages in, Parquet parts and the saved state out (the destination's half)."""

    s3: S3Settings
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
                writer = self._writer(record["stream"], record.get("namespace"))
                data = record.get("data") or {}
                if (record["stream"], tuple(data)) not in self._known_keys:
                    self._meet_keys(writer, data)
                writer.add(writer.layout.row(data, record["emitted_at"], self.sync_id, 0))
            elif kind == "STATE":
                state = message["state"]
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

    def close(self) -> None:
        import shutil

        for writer in self.writers.values():
            if writer.writer is not None:
                writer.writer.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def load_state(client, s3: S3Settings, connection: str) -> list | None:
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


def client_for(s3: S3Settings):
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


def _messages(lines: Iterable[str], log: Callable[[str], None], tail: list[str]) -> Iterator[dict]:
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


def configured_catalog(connection, discovered: dict[str, dict]) -> dict:
    """The configured catalog of the connection's streams (append into the lake)."""
    streams = []
    for s in connection.streams:
        if s.name not in discovered:
            raise S3DestinationError(
                f"connection '{connection.name}': the source does not offer stream {s.name!r} (it offers {sorted(discovered)})"
            )
        stream = discovered[s.name]
        incremental = s.sync_mode.startswith("incremental")
        entry = {
            "stream": stream,
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "overwrite" if s.sync_mode == "full_refresh_overwrite" else "append",
        }
        if incremental:
            entry["cursor_field"] = [s.cursor_field] if s.cursor_field else stream.get("default_cursor_field") or []
        if s.primary_key:
            entry["primary_key"] = [[k] for k in s.primary_key]
        streams.append(entry)
    return {"streams": streams}


def _run_connector(executable: Path, args: list[str], env: dict[str, str], log, tail) -> Iterator[dict]:
    """The connector's messages, the process ended (and checked) when they are all read."""
    proc = subprocess.Popen(
        [str(executable), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        widen_pipe(proc.stdout)  # so that the connector never waits on this reader (connector_pipe.py)
        yield from _messages(proc.stdout, log, tail)
        code = proc.wait()
    finally:
        if proc.poll() is None:
            from include.pipeline.ingest.embedded import _kill_group

            _kill_group(proc)
    if code != 0:
        raise S3DestinationError(
            f"{executable.name} {args[0]} failed (exit {code}). Last output:\n" + "\n".join(tail[-30:])
        )


def sync_to_lake(
    connection,
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
    environ: dict[str, str] | None = None,
    rows_per_group: int | None = None,
    rows_per_object: int | None = None,
    config_overrides: dict | None = None,
) -> dict:
    """Run the connection's source and land its records in the lake; return the figures per stream.
    `config_overrides`: source settings over the declared ones (a test's bucket)."""
    from include.pipeline.ingest.embedded import EmbeddedSyncError, child_env, connector_executable, secret_redactor

    destination = connection.destination
    if destination.type != "s3" or destination.s3 is None:
        raise S3DestinationError(f"connection '{connection.name}' does not go to an s3 destination")
    s3 = destination.s3.resolved(environ)
    executable = connector_executable(connection.source.connector)
    if not executable.exists():
        raise EmbeddedSyncError(
            f"the connector {connection.source.connector} is not installed ({executable}): run `make setup`"
        )
    config = {**connection.source.resolved_config(environ), **(config_overrides or {})}
    redact = secret_redactor(connection.source.connector, config, [s3.secret_access_key, s3.access_key_id])

    def say(line: str) -> None:
        log(redact(line))

    client = client_for(s3)
    if not client.bucket_exists(s3.bucket):
        client.make_bucket(s3.bucket)
    started = time.monotonic()
    tail: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"lake-sync-{connection.name}-") as private:  # mode 0700
        config_path = Path(private) / "config.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        env = child_env()
        discovered = declared_catalog(connection.source) or _discover(executable, config_path, env, say, tail)
        catalog = configured_catalog(connection, discovered)
        catalog_path = Path(private) / "catalog.json"
        catalog_path.write_text(json.dumps(catalog))
        args = ["read", "--config", str(config_path), "--catalog", str(catalog_path)]
        state = None if full_refresh else load_state(client, s3, connection.name)
        if state:
            state_path = Path(private) / "state.json"
            state_path.write_text(json.dumps(state))
            args += ["--state", str(state_path)]
        say(
            f"embedded engine: '{connection.name}' with {connection.source.connector} into s3://{s3.bucket}/{s3.path_prefix}/"
            f" ({len(catalog['streams'])} streams, {'from its saved state' if state else 'from the start'})"
        )
        layouts = {
            s["stream"]["name"]: StreamLayout.of(s["stream"].get("json_schema") or {}) for s in catalog["streams"]
        }
        overwrite = {s.name for s in connection.streams if s.sync_mode == "full_refresh_overwrite"}
        sink = LakeSync(s3, connection.name, client, layouts, overwrite, rows_per_group=rows_per_group or ROWS_PER_GROUP,
                        rows_per_object=rows_per_object or ROWS_PER_OBJECT, log=say,
                        schema_policy=connection.non_breaking_schema_updates_behavior)  # fmt: skip
        messages = _run_connector(executable, args, env, say, tail)
        try:
            sink.consume(messages)
            figures = sink.commit()
        finally:
            messages.close()  # a failed upload stops the connector too: nothing left running
            sink.close()
    seconds = round(time.monotonic() - started, 3)
    total = sum(f["records"] for f in figures.values())
    say(f"embedded engine: '{connection.name}' done in {seconds} s, {total} records into the lake")
    streams = {
        s.name: {  # `table`: where metrics.syncs' destination_table points for this stream
            "records": 0,
            "bytes": 0,
            **figures.get(s.name, {}),
            "table": f"s3://{s3.bucket}/{object_key(s3, s.name, None, sink.started, 0).rsplit('/', 1)[0]}/",
        }  # fmt: skip
        for s in connection.streams
    }
    return {"connection": connection.name, "streams": streams, "seconds": seconds, "engine": "embedded",
            "destination": f"s3://{s3.bucket}/{s3.path_prefix}/", "bytes": sink.uploaded_bytes,
            "schema_changes": sink.schema_changes, "bad_files": []}  # fmt: skip


def declared_catalog(source) -> dict[str, dict] | None:
    """The streams of a file-based source from its declaration (each `input_schema` plus the
    columns source-s3 adds), or of the connector's committed catalog snapshot: what `discover`
    would answer, without starting the connector once more (a start costs seconds). None: unknown."""
    streams = source.config.get("streams")
    if not isinstance(streams, list):
        return load_catalog(source.connector) or None
    catalog = {}
    for item in streams:
        schema = item.get("input_schema")
        if isinstance(schema, str):
            schema = json.loads(schema)
        if not isinstance(schema, dict) or not schema:
            return None  # inferred by the connector: ask it
        properties = {column: {"type": ["null", str(kind).strip().lower()]} for column, kind in schema.items()}
        catalog[item["name"]] = {
            "name": item["name"],
            "json_schema": {"type": "object", "properties": {**properties, **FILE_COLUMNS}},
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": True,
            "default_cursor_field": [FILE_CURSOR],
        }
    return catalog


def _discover(executable: Path, config_path: Path, env: dict[str, str], log, tail) -> dict[str, dict]:
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
