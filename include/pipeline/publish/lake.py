"""Publish the marts to the lake: `s3://<bucket>/marts/<mart>/ds=<ds>/`, committed by a manifest.

A partition is committed atomically, the way a reader can check without any lock:

1. the mart is read in a fixed order (its primary key, or every column when it has none:
   `order_by`) as Postgres's own CSV (`COPY ... TO STDOUT`, streamed through a pipe: no Python
   object per value), parsed by Arrow into the columns' types, and written as Parquet row groups
   of `ROWS_PER_GROUP` rows to a local file; every `ROWS_PER_OBJECT` rows the file is closed and
   uploaded as `part-<NNNN>-<sha256 prefix>.parquet` (memory holds a few row groups, disk one
   object);
2. `_manifest.json` is written last: the objects with their rows, bytes and sha256, the schema,
   the row count, the dbt invocation id and the run id;
3. only then are the partition's other objects deleted (an earlier run's, a failed attempt's).

Readers trust only the objects the manifest lists (`read_partition`). A failed or killed attempt
leaves at most unlisted objects behind, which nothing reads and the next commit deletes; a rerun
of the same ds replaces the partition only when its own manifest is in place.

Object names come from their content: the same rows give the same bytes (Parquet written the same
way from rows read in the same order) and so the same key. A rerun of a day whose mart did not
change writes the very objects its partition already has (reruns compare key for key), and
rewriting a listed key puts the bytes it already holds, so the committed manifest stays true
throughout; rows that changed make new keys, which no committed manifest lists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from include.pipeline import settings

LAKE_CONN_ID = "lake"  # airflow_settings.yaml: the lake's S3 (endpoint, keys)
MANIFEST = "_manifest.json"
ROWS_PER_GROUP = 50_000  # rows held in memory at once
ROWS_PER_OBJECT = 1_000_000  # rows per Parquet object
_SAFE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PublishError(RuntimeError):
    pass


def bucket() -> str:
    return settings.setting("LAKE_BUCKET", "lake") or "lake"


def partition_prefix(mart: str, ds: str) -> str:
    if not _SAFE.match(mart):
        raise PublishError(f"mart name {mart!r} is not a plain lower-case SQL name")
    if not _DS.match(ds):
        raise PublishError(f"ds {ds!r} is not a date YYYY-MM-DD")
    return f"marts/{mart}/ds={ds}/"


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    precision: int | None = None
    scale: int | None = None

    def arrow_type(self):
        """The Parquet (Arrow) type of a Postgres column; what has no exact match becomes text."""
        import pyarrow as pa

        t = self.pg_type
        if t in ("smallint", "integer", "bigint"):
            return pa.int64()
        if t in ("real", "double precision"):
            return pa.float64()
        if t == "numeric":
            if self.precision is not None and self.scale is not None:
                return pa.decimal128(self.precision, self.scale)
            return pa.float64()  # unconstrained numeric: no fixed scale for a decimal column
        if t == "boolean":
            return pa.bool_()
        if t == "date":
            return pa.date32()
        if t == "timestamp without time zone":
            return pa.timestamp("us")
        if t == "timestamp with time zone":
            return pa.timestamp("us", tz="UTC")
        return pa.string()


def columns_of(cur, schema: str, table: str) -> list[Column]:
    cur.execute(
        "select column_name, data_type, numeric_precision, numeric_scale from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position",
        (schema, table),
    )
    found = [
        Column(n, t, p if t == "numeric" else None, s if t == "numeric" else None) for n, t, p, s in cur.fetchall()
    ]
    if not found:
        raise PublishError(f"{schema}.{table} does not exist (or has no columns): was the transform run?")
    return found


def key_columns(cur, schema: str, table: str) -> list[str]:
    """The table's primary-key columns in key order ([] when it has none: a mart's enforced
    contract gives it one)."""
    cur.execute(
        "select a.attname from pg_index i join pg_class c on c.oid = i.indrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " cross join lateral unnest(i.indkey) with ordinality as k(attnum, position)"
        " join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum"
        " where n.nspname = %s and c.relname = %s and i.indisprimary order by k.position",
        (schema, table),
    )
    return [name for (name,) in cur.fetchall()]


def order_by(columns: list[Column], key: list[str] | None = None):
    """The publish's sort, so the same rows come out in the same order whatever order a rebuilt
    table holds them in: the primary key (unique, so a total order), else every column in table
    order (json has no ordering: its text)."""
    from psycopg2 import sql

    if key:
        return sql.SQL(", ").join(sql.Identifier(name) for name in key)
    return sql.SQL(", ").join(
        sql.SQL("{}::text").format(sql.Identifier(c.name)) if c.pg_type == "json" else sql.Identifier(c.name)
        for c in columns
    )


# How Postgres writes values as text for the publish's COPY, whatever the server's or the role's
# defaults: ISO dates, timestamptz with a UTC offset, floats that read back to the same value.
_OUTPUT_SETTINGS = {"DateStyle": "ISO, YMD", "TimeZone": "UTC", "extra_float_digits": "1", "IntervalStyle": "postgres"}


def csv_options(columns: list[Column]):
    """Arrow's reading of Postgres's CSV: NULL is an unquoted empty field, an empty string a
    quoted one; booleans t/f; a value may hold newlines; nothing else is NULL ("N/A" is text)."""
    import pyarrow.csv as pacsv

    return (
        pacsv.ReadOptions(column_names=[c.name for c in columns], block_size=8 << 20),
        pacsv.ParseOptions(newlines_in_values=True),
        pacsv.ConvertOptions(
            column_types={c.name: c.arrow_type() for c in columns}, null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"],
        ),
    )  # fmt: skip


class _CopyOut:
    """`COPY (query) TO STDOUT (FORMAT csv)` into a pipe, fed by a thread while the caller reads it:
    Postgres writes, Arrow parses, at the same time. A reader that stops early closes its end; the
    copy then fails on the broken pipe and the query is cancelled."""

    def __init__(self, pg_conn, statement):
        self._conn = pg_conn
        read_fd, write_fd = os.pipe()
        self.reader = os.fdopen(read_fd, "rb", buffering=1 << 20)
        self._writer = os.fdopen(write_fd, "wb", buffering=1 << 20)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._copy, args=(statement,), name="publish-copy", daemon=True)
        self._thread.start()

    def _copy(self, statement) -> None:
        try:
            with self._conn.cursor() as cur:
                cur.copy_expert(statement, self._writer)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader's thread by `finish`
            self.error = exc
        finally:
            try:
                self._writer.close()
            except OSError:
                pass  # the reader went away: its own error is the one reported

    def finish(self, *, failed: bool) -> None:
        """Wait for the copy; raise its error (a reader's failure, already raised, wins)."""
        if failed and self._thread.is_alive():
            self._conn.cancel()
        self.reader.close()
        self._thread.join()
        if failed and self.error is not None:
            # the copy was cut (cancelled, or its pipe closed): its transaction is aborted, or will
            # be once the server's error is read; a rollback is all it can take (libpq drops what
            # is left of the COPY), and it gives the connection its settings back
            self._conn.rollback()
        if self.error is not None and not failed:
            raise self.error


def _batches(pg_conn, statement, columns: list[Column], where: str):
    """The query's rows as Arrow record batches, parsed from Postgres's CSV."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    copy = _CopyOut(pg_conn, statement)
    failed = True
    try:
        read, parse, convert = csv_options(columns)
        try:
            reader = pacsv.open_csv(copy.reader, read_options=read, parse_options=parse, convert_options=convert)
            yield from reader
        except pa.ArrowInvalid as exc:
            if copy.error is not None:  # the copy failed first: the CSV was cut short
                raise copy.error from exc
            found = re.search(r"CSV column #(\d+)", str(exc))
            column = columns[int(found.group(1))] if found and int(found.group(1)) < len(columns) else None
            what = f"column {column.name} ({column.pg_type})" if column else "a column"
            raise PublishError(
                f"{where}: a value of {what} has no Parquet form of its type (Arrow: {exc}); fix the value in the"
                " model or cast the column"
            ) from exc
        failed = False
    finally:
        copy.finish(failed=failed)


class _Regroup:
    """Record batches of any size in, tables of exactly the sizes asked for out (the row groups'
    boundaries depend on the rows alone, so the same rows give the same bytes)."""

    def __init__(self, schema):
        self._schema, self._batches, self.rows = schema, [], 0

    def add(self, batch) -> None:
        if batch.num_rows:
            self._batches.append(batch)
            self.rows += batch.num_rows

    def take(self, n: int):
        import pyarrow as pa

        table = pa.Table.from_batches(self._batches, schema=self._schema)
        head, rest = table.slice(0, n), table.slice(n)
        self._batches, self.rows = rest.to_batches(), rest.num_rows
        return head.combine_chunks()


def _restore(pg_conn, saved: dict[str, str], *, quietly: bool = False) -> None:
    """Give the connection back the settings the publish changed for its COPY (after a failure:
    as far as its transaction allows; a rollback restores them anyway)."""
    import psycopg2

    try:
        with pg_conn.cursor() as cur:
            for name, value in saved.items():
                cur.execute("select set_config(%s, %s, false)", (name, value))
    except psycopg2.Error:
        if not quietly:
            raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def publish_mart(
    pg_conn,
    client,
    mart: str,
    ds: str,
    *,
    schema: str = "marts",
    lake_bucket: str | None = None,
    invocation_id: str | None = None,
    run_id: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Publish `schema.mart` as the partition ds=`ds`; return the manifest written."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from psycopg2 import sql

    lake_bucket = lake_bucket or bucket()
    prefix = partition_prefix(mart, ds)
    attempt = uuid.uuid4().hex[:12]
    started = dt.datetime.now(dt.UTC)
    if not client.bucket_exists(lake_bucket):
        client.make_bucket(lake_bucket)
    with pg_conn.cursor() as cur:
        columns = columns_of(cur, schema, mart)
        primary_key = key_columns(cur, schema, mart)
        saved = {}
        for name, value in _OUTPUT_SETTINGS.items():
            cur.execute("select current_setting(%s), set_config(%s, %s, false)", (name, name, value))
            saved[name] = cur.fetchone()[0]
    arrow_schema = pa.schema([pa.field(c.name, c.arrow_type()) for c in columns])
    statement = sql.SQL("copy (select {} from {}.{} order by {}) to stdout with (format csv)").format(
        sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
        sql.Identifier(schema), sql.Identifier(mart), order_by(columns, primary_key),
    )  # fmt: skip
    objects: list[dict] = []
    total_rows = 0
    try:
        with tempfile.TemporaryDirectory(prefix=f"publish-{mart}-") as tmp:
            writer, path, rows_in_object = None, None, 0

            def finish_object() -> None:
                nonlocal writer, path, rows_in_object
                writer.close()
                size, digest = path.stat().st_size, _sha256(path)
                key = f"{prefix}part-{len(objects):04d}-{digest[:16]}.parquet"  # named by its content
                entry = {"key": key, "rows": rows_in_object, "bytes": size, "sha256": digest}
                client.fput_object(lake_bucket, key, str(path), content_type="application/vnd.apache.parquet")
                path.unlink()
                objects.append(entry)
                log(f"publish {mart} ds={ds}: {key} ({rows_in_object:,} rows, {size:,} bytes)")
                writer, path, rows_in_object = None, None, 0

            def write_group(group) -> None:
                nonlocal writer, path, rows_in_object, total_rows
                if writer is None:
                    path = Path(tmp) / f"part-{len(objects):04d}.parquet"
                    # no dictionary pages: for the marts' ids, times and amounts, every value of a row
                    # group is its own entry; plain zstd pages are smaller and half the CPU (docs/lake.md)
                    writer = pq.ParquetWriter(path, arrow_schema, compression="zstd", use_dictionary=False)
                writer.write_table(group, row_group_size=group.num_rows)  # one row group
                rows_in_object += group.num_rows
                total_rows += group.num_rows
                if rows_in_object >= ROWS_PER_OBJECT:
                    finish_object()

            pending = _Regroup(arrow_schema)
            with contextlib.closing(_batches(pg_conn, statement, columns, f"{schema}.{mart}")) as batches:
                for batch in batches:
                    pending.add(batch)
                    while pending.rows >= (wanted := min(ROWS_PER_GROUP, ROWS_PER_OBJECT - rows_in_object)):
                        write_group(pending.take(wanted))
            while pending.rows:
                write_group(pending.take(min(ROWS_PER_GROUP, ROWS_PER_OBJECT - rows_in_object)))
            if writer is not None:
                finish_object()
    except BaseException:
        _restore(pg_conn, saved, quietly=True)
        raise
    _restore(pg_conn, saved)
    manifest = {
        "mart": mart,
        "ds": ds,
        "rows": total_rows,
        "bytes": sum(o["bytes"] for o in objects),
        "objects": objects,
        "schema": [
            {"name": c.name, "type": str(f.type), "postgres_type": c.pg_type}
            for c, f in zip(columns, arrow_schema, strict=True)
        ],
        "source": f"{schema}.{mart}",
        "dbt_invocation_id": invocation_id,
        "run_id": run_id,
        "attempt": attempt,
        "committed_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    body = json.dumps(manifest, indent=2).encode()
    client.put_object(lake_bucket, prefix + MANIFEST, io.BytesIO(body), len(body), content_type="application/json")
    listed = {o["key"] for o in objects} | {prefix + MANIFEST}
    stale = [
        o.object_name
        for o in client.list_objects(lake_bucket, prefix=prefix, recursive=True)
        if o.object_name not in listed
    ]
    for key in stale:
        client.remove_object(lake_bucket, key)
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    log(
        f"publish {mart} ds={ds}: committed {total_rows:,} rows in {len(objects)} objects "
        f"({manifest['bytes']:,} bytes) in {seconds:.1f} s; {len(stale)} old objects removed"
    )
    return manifest


def read_manifest(client, mart: str, ds: str, *, lake_bucket: str | None = None) -> dict | None:
    """The partition's manifest, or None when the partition was never committed."""
    from minio.error import S3Error

    try:
        response = client.get_object(lake_bucket or bucket(), partition_prefix(mart, ds) + MANIFEST)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            return None
        raise
    try:
        return json.loads(response.read())
    finally:
        response.close()
        response.release_conn()


def read_partition(client, mart: str, ds: str, *, lake_bucket: str | None = None):
    """The committed partition as an Arrow table (checksums verified), or None if not committed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lake_bucket = lake_bucket or bucket()
    manifest = read_manifest(client, mart, ds, lake_bucket=lake_bucket)
    if manifest is None:
        return None
    tables = []
    for entry in manifest["objects"]:
        response = client.get_object(lake_bucket, entry["key"])
        try:
            data = response.read()
        finally:
            response.close()
            response.release_conn()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise PublishError(f"s3://{lake_bucket}/{entry['key']}: sha256 differs from its manifest")
        tables.append(pq.read_table(io.BytesIO(data)))
    if not tables:
        return pa.schema([]).empty_table()
    return pa.concat_tables(tables)


def upload_folder(client, folder: Path, prefix: str, *, lake_bucket: str | None = None) -> list[str]:
    """Upload every file under `folder` to `prefix` (dbt artifacts, the docs site); return the keys."""
    lake_bucket = lake_bucket or bucket()
    if not client.bucket_exists(lake_bucket):
        client.make_bucket(lake_bucket)
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = prefix.rstrip("/") + "/" + path.relative_to(folder).as_posix()
        client.fput_object(lake_bucket, key, str(path))
        keys.append(key)
    return keys
