"""Run one declared connection with PyAirbyte, inside the embedded Airbyte runtime (.venv-airbyte).

This file is executed as a script by that venv's interpreter, never imported by Airflow: it may
import only the standard library and PyAirbyte. Input: a JSON spec on stdin (see
include/pipeline/ingest/embedded.py); the warehouse password comes in WAREHOUSE_PASSWORD, never
on the command line. Output: progress lines, then one line `RESULT <json>` with per-stream figures.

Tables are written in the Destinations-V2 shape (_airbyte_raw_id, _airbyte_extracted_at,
_airbyte_meta), which is also what the Airbyte platform's Postgres destination writes.

The write path is PyAirbyte's Postgres cache with two parts replaced (see `copy_cache_class`), because
its own loader (pandas `to_sql`, ~1,000 records/s) was 5x slower than the connectors it runs:

- batches are written as gzipped CSV (level 1) instead of JSON lines, one header line first;
- each stream's batches are loaded into its stage table by `COPY ... FROM STDIN (FORMAT csv)`,
  then moved into the final table in ONE transaction (merge: delete the keys present in the stage
  + insert the latest version of each key; append: insert; overwrite: PyAirbyte's table swap).

Everything else stays PyAirbyte's: reading the connector, batching to disk (bounded memory),
table and column creation, and state, which is stored in <schema>._airbyte_state only after the
stream's rows are committed. A failure before that commit leaves the final table as it was.

A value its column cannot hold (an `integer` column sent "abc" or 1e30, a `number` sent "n/a",
a `boolean` sent "maybe", an `object`/`array` sent text that is not JSON) is written as NULL and
listed in the record's `_airbyte_meta` as `{"changes": [{"field", "change": "NULLED", "reason":
"DESTINATION_TYPECAST_ERROR"}]}`, as Airbyte's Postgres destination does: the sync goes on and
dbt quarantines the record, instead of one bad value failing the whole COPY. Date and time
columns are not checked: a value Postgres cannot parse there still fails the load, naming it.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import resource
import sys
import time
from datetime import date, datetime
from datetime import time as dtime
from typing import Any, ClassVar

import orjson  # a PyAirbyte dependency, in .venv-airbyte

PROGRESS_EVERY = 25_000  # records between progress lines in the task log

# Sync mode -> (PyAirbyte write strategy, force full refresh)
MODES = {
    "incremental_deduped_history": ("merge", False),
    "incremental_append": ("append", False),
    "full_refresh_append": ("append", True),
    "full_refresh_overwrite": ("replace", True),
}


def log(message: str) -> None:
    print(f"[embedded-airbyte] {message}", flush=True)


def csv_field(value: Any) -> str:
    """One value as a Postgres CSV field: NULL is an empty unquoted field, text is always quoted.

    Quoting every string keeps '' (empty text) apart from NULL and carries tabs, newlines,
    backslashes and quotes unchanged; objects and arrays become JSON text for the json columns.
    Postgres text cannot hold NUL (U+0000), so it is dropped from strings.
    """
    kind = type(value)
    if value is None:
        return ""
    if kind is str:
        if "\x00" in value:
            value = value.replace("\x00", "")
        return '"' + value.replace('"', '""') + '"'
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return repr(value)
    if kind is dict or kind is list:
        try:
            dumped = orjson.dumps(value).decode()
        except TypeError:  # nested deeper than orjson allows
            dumped = json.dumps(value, ensure_ascii=False, default=str)
        return '"' + dumped.replace('"', '""') + '"'
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    return '"' + str(value).replace("\x00", "").replace('"', '""') + '"'


# -- values the column type cannot hold: NULLED and listed in _airbyte_meta (see the module doc) -------
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_BOOLEANS = frozenset({"t", "f", "true", "false", "y", "n", "yes", "no", "on", "off", "1", "0"})
BIGINT = 2**63
NUMERIC_LIMIT = 1e29  # PyAirbyte's number columns are DECIMAL(38, 9)
MAX_LOGGED_FLAGS = 5  # per stream, in the task log


def to_integer(value: Any) -> Any:
    """A value a BIGINT column takes (a whole float becomes an int: COPY rejects '5.0')."""
    kind = type(value)
    if kind is float and value.is_integer():
        value, kind = int(value), int
    elif kind is str and _INTEGER.match(value):
        value, kind = int(value), int
    if kind is int and -BIGINT <= value < BIGINT:
        return value
    raise ValueError(value)


def to_number(value: Any) -> Any:
    kind = type(value)
    if kind is str and _NUMBER.match(value):
        if abs(float(value)) < NUMERIC_LIMIT:
            return value
    elif (kind is int or kind is float) and math.isfinite(value) and abs(value) < NUMERIC_LIMIT:
        return value
    raise ValueError(value)


def to_boolean(value: Any) -> Any:
    kind = type(value)
    if kind is bool or (kind is str and value.strip().lower() in _BOOLEANS):
        return value
    if kind is int and value in (0, 1):
        return bool(value)
    raise ValueError(value)


def to_json(value: Any) -> Any:
    """Objects, lists, numbers and booleans are JSON; a string must be JSON text to fit a json column."""
    if type(value) is str:
        json.loads(value)
    return value


CASTS = {"integer": to_integer, "number": to_number, "boolean": to_boolean, "object": to_json, "array": to_json}


def copy_cache_class() -> type:
    """PyAirbyte's PostgresCache whose batches are CSV files loaded by COPY (see the module doc)."""
    from airbyte._processors.sql.postgres import PostgresSqlProcessor
    from airbyte._writers.file_writers import FileWriterBase
    from airbyte.caches import PostgresCache
    from sqlalchemy import text

    class CsvBatchWriter(FileWriterBase):
        """Batches as gzipped CSV: a JSON header line (column names), then one line per record."""

        default_cache_file_suffix = ".csv.gz"
        prune_extra_fields = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._columns: dict[Any, list[str]] = {}  # open file -> its header

        def _open_new_file(self, file_path):  # noqa: ANN001, ANN202
            # level 1: ~4x smaller files for a few % of the time of the default level 9
            return gzip.open(file_path, "wt", encoding="utf-8", compresslevel=1, newline="")

        def _write_record_dict(self, record_dict, open_file_writer) -> None:  # noqa: ANN001
            handler = record_dict._stream_handler
            changes = None
            for column, cast in getattr(handler, "typecasts", ()):
                value = record_dict.get(column)
                if value is None:
                    continue
                try:
                    fitted = cast(value)
                except (ValueError, TypeError, OverflowError):
                    dict.__setitem__(record_dict, column, None)
                    changes = changes or []
                    changes.append({"field": column, "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"})
                    handler.typecast_flags += 1
                    if handler.typecast_flags <= MAX_LOGGED_FLAGS:
                        log(
                            f"stream {handler.typecast_stream}: {column}={str(value)[:80]!r} does not fit its "
                            "column type: written as NULL and listed in _airbyte_meta"
                        )
                    continue
                if fitted is not value:
                    dict.__setitem__(record_dict, column, fitted)
            if changes:
                dict.__setitem__(record_dict, "_airbyte_meta", {"changes": changes})
            columns = self._columns.get(open_file_writer)
            if columns is None:
                columns = self._columns[open_file_writer] = list(record_dict)
                open_file_writer.write(json.dumps(columns) + "\n")
            get = record_dict.get
            open_file_writer.write(",".join([csv_field(get(c)) for c in columns]) + "\n")

        def _flush_active_batch(self, stream_name, progress_tracker) -> None:  # noqa: ANN001
            batch = self._active_batches.get(stream_name)
            if batch is not None:
                self._columns.pop(batch.open_file_writer, None)
            super()._flush_active_batch(stream_name, progress_tracker)

    class CopyPostgresSqlProcessor(PostgresSqlProcessor):
        """Loads each stream's batch files by COPY and merges them in one transaction."""

        file_writer_class = CsvBatchWriter

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._read_started: float | None = None
            self._records_read = 0
            self._stream_counts: dict[str, int] = {}

        def process_record_message(self, record_msg, stream_record_handler, progress_tracker) -> None:  # noqa: ANN001
            if self._read_started is None:
                self._read_started = time.monotonic()
            if not hasattr(stream_record_handler, "typecasts"):
                self._attach_typecasts(record_msg.stream, stream_record_handler)
            super().process_record_message(record_msg, stream_record_handler, progress_tracker)
            self._records_read += 1
            stream = record_msg.stream
            self._stream_counts[stream] = self._stream_counts.get(stream, 0) + 1
            if self._records_read % PROGRESS_EVERY == 0:
                rate = self._records_read / max(time.monotonic() - self._read_started, 1e-6)
                counts = ", ".join(f"{n} {c}" for n, c in self._stream_counts.items())
                log(f"read {self._records_read} records ({counts}), {rate:,.0f} records/s")

        def _attach_typecasts(self, stream_name: str, handler) -> None:  # noqa: ANN001
            """(record key, cast) of the stream's columns whose SQL type can reject a value."""
            from airbyte.types import SQLTypeConversionError, _get_airbyte_type

            casts = []
            properties = self.catalog_provider.get_stream_json_schema(stream_name).get("properties") or {}
            for name, definition in properties.items():
                try:
                    kind = _get_airbyte_type(definition)[0]
                except SQLTypeConversionError:
                    continue
                if kind in CASTS:
                    casts.append((handler.to_index_case(name), CASTS[kind]))
            handler.typecasts = tuple(casts)
            handler.typecast_stream = stream_name
            handler.typecast_flags = 0

        def _write_files_to_new_table(self, files, stream_name: str, batch_id: str) -> str:  # noqa: ANN001
            started = time.monotonic()
            table = self._create_table_for_loading(stream_name, batch_id)
            known = set(self._get_sql_column_definitions(stream_name))
            raw = self.get_sql_engine().raw_connection()
            rows = 0
            try:
                cursor = raw.cursor()
                for path in files:
                    with gzip.open(path, "rb") as batch:
                        header = batch.readline()
                        if not header:
                            continue  # an empty batch: no header was written
                        columns = [self.normalizer.normalize(c) for c in json.loads(header)]
                        unknown = sorted(set(columns) - known)
                        if unknown:
                            raise RuntimeError(f"stream {stream_name}: batch columns {unknown} are not in its schema")
                        cursor.copy_expert(
                            f"copy {self._fully_qualified(table)} "
                            f"({', '.join(self._quote_identifier(c) for c in columns)}) "
                            "from stdin with (format csv)",
                            batch,
                            size=1 << 20,
                        )
                        rows += cursor.rowcount
                cursor.execute(f"analyze {self._fully_qualified(table)}")  # the merge joins on it
                raw.commit()
            except BaseException:
                raw.rollback()
                self._drop_temp_table(table, if_exists=True)  # PyAirbyte drops it only after this step
                raise
            finally:
                raw.close()
            seconds = time.monotonic() - started
            log(
                f"stream {stream_name}: {rows} rows copied to stage in {seconds:.2f} s ({rows / max(seconds, 1e-6):,.0f} rows/s)"
            )
            return table

        def _emulated_merge_temp_table_to_final_table(
            self, stream_name: str, temp_table_name: str, final_table_name: str
        ) -> None:
            """Replace every key present in the stage by its latest staged version, atomically.

            Latest: highest cursor, then latest extracted, then last emitted (raw ids are UUIDv7,
            in emit order). Rows without a key are kept as they come (dbt quarantines them).
            """
            q = self._quote_identifier
            final, stage = self._fully_qualified(final_table_name), self._fully_qualified(temp_table_name)
            columns = ", ".join(q(c) for c in self._get_sql_column_definitions(stream_name))
            keys = [q(k) for k in self.catalog_provider.get_primary_keys(stream_name)]
            cursor = self.catalog_provider.get_cursor_key(stream_name)
            cursor = cursor[0] if isinstance(cursor, list) and cursor else cursor
            order = [f"{q(self.normalizer.normalize(cursor))} desc nulls last"] if cursor else []
            order += ['"_airbyte_extracted_at" desc', '"_airbyte_raw_id" desc']
            on = " and ".join(f"f.{k} = s.{k}" for k in keys)
            any_null = " or ".join(f"{k} is null" for k in keys)
            started = time.monotonic()
            with self.get_sql_connection() as conn:  # one transaction: all or nothing
                deleted = conn.execute(text(f"delete from {final} f using {stage} s where {on}")).rowcount
                inserted = conn.execute(
                    text(
                        f"insert into {final} ({columns}) select {columns} from ("
                        f" select *, row_number() over (partition by {', '.join(keys)} order by {', '.join(order)})"
                        f" as _rank from {stage}) ranked where _rank = 1 or {any_null}"
                    )
                ).rowcount
            log(
                f"stream {stream_name}: stage -> final table (merge on {', '.join(keys)}: {inserted} rows written, "
                f"{deleted} older versions replaced) in {time.monotonic() - started:.2f} s"
            )

        def _append_temp_table_to_final_table(
            self, temp_table_name: str, final_table_name: str, stream_name: str
        ) -> None:
            started = time.monotonic()
            super()._append_temp_table_to_final_table(temp_table_name, final_table_name, stream_name)
            log(f"stream {stream_name}: stage -> final table (append) in {time.monotonic() - started:.2f} s")

        def _swap_temp_table_with_final_table(
            self, stream_name: str, temp_table_name: str, final_table_name: str
        ) -> None:
            started = time.monotonic()
            super()._swap_temp_table_with_final_table(stream_name, temp_table_name, final_table_name)
            log(f"stream {stream_name}: stage -> final table (replace: swapped) in {time.monotonic() - started:.2f} s")

    class CopyPostgresCache(PostgresCache):
        _sql_processor_class: ClassVar[type] = CopyPostgresSqlProcessor

    return CopyPostgresCache


def main() -> int:
    spec = json.load(sys.stdin)
    os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # the connector registry is unreachable
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("NO_LIVE_PROGRESS", "1")

    import airbyte as ab

    wh = spec["warehouse"]
    cache = copy_cache_class()(
        host=wh["host"],
        port=wh["port"],
        username=wh["user"],
        password=os.environ["WAREHOUSE_PASSWORD"],
        database=wh["database"],
        schema_name=spec["schema"],
        **({"cache_dir": spec["work_dir"]} if spec.get("work_dir") else {}),
    )
    streams = spec["streams"]
    source = ab.get_source(
        spec["connector"],
        config=spec["config"],
        local_executable=spec["executable"],
        streams=[s["name"] for s in streams],
        install_if_missing=False,
    )
    for stream in streams:
        if stream.get("cursor_field"):
            source.set_cursor_key(stream["name"], stream["cursor_field"])
        if stream.get("primary_key"):
            source.set_primary_key(stream["name"], list(stream["primary_key"]))

    # One read per (write strategy, refresh) group: PyAirbyte applies one strategy per read.
    groups: dict[tuple[str, bool], list[str]] = {}
    for stream in streams:
        strategy, full = MODES[stream["sync_mode"]]
        if spec.get("full_refresh"):
            strategy, full = ("replace", True)
        groups.setdefault((strategy, full), []).append(stream["name"])

    figures: dict[str, dict] = {}
    for (strategy, full), names in groups.items():
        started = time.monotonic()
        log(f"reading {', '.join(names)} (write strategy {strategy}, full refresh {full})")
        result = source.read(cache=cache, streams=names, write_strategy=strategy, force_full_refresh=full)
        tracker = getattr(result, "_progress_tracker", None)
        counts = dict(getattr(tracker, "stream_read_counts", {}) or {})
        seconds = round(time.monotonic() - started, 3)
        for name in names:
            figures[name] = {
                "records": int(counts.get(name, 0)),
                "table": f"{spec['schema']}.{name}",
                "write_strategy": strategy,
                "seconds": seconds,
            }
            log(f"stream {name}: {figures[name]['records']} records -> {spec['schema']}.{name}")

    with cache.get_sql_engine().connect() as conn:
        from sqlalchemy import text

        for name, fig in figures.items():
            fig["rows_in_table"] = conn.execute(text(f'select count(*) from "{spec["schema"]}"."{name}"')).scalar()

    peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    log(f"peak RSS of this runner: {peak_rss_mib} MiB")
    result = {"connection": spec["connection"], "streams": figures, "runner_peak_rss_mib": peak_rss_mib}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
