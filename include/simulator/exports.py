"""The simulated shop's nightly export job: which files a run writes for a logical date, written
into the exports bucket (include/simulator/shop.py holds the shop itself).

Which files a run writes, so that every sync sees each primary key at most once (PyAirbyte's
merge cannot order two versions of a key that arrive in one read):
- no export yet: one `full-` export, the whole shop as of D (the initial export, its history);
- the previous day exported: D's increment (`part-`: records created or changed on D);
- days missing in between: one catch-up export of everything changed since the last one
  (`since-<last>-`), latest version per key;
- D already exported: the same kind again, byte for byte; an object whose content hash is
  unchanged is not rewritten, so source-s3 (whose cursor is each file's last-modified time)
  reads nothing new and a rerun leaves every table as it was;
- a later day already exported: nothing (a nightly export cannot be made for the past);
- full refresh: the exports are replaced by one `full-` export as of D, so re-reading every
  file still yields one version per key.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from include.simulator.shop import (
    COLUMNS,
    CONTENT_TYPES,
    HASH_META,
    SCHEMAS,
    STREAMS,
    ShopHistory,
    ShopSettings,
    day_date,
    day_index,
)


def encode(stream: str, columns: dict[str, Any], fmt: str) -> bytes:
    """One export file's bytes: Parquet (zstd), or JSON lines (nulls as null, address nested),
    gzip-compressed for jsonl.gz (no timestamp in the gzip header: the same date gives the same bytes)."""
    import pyarrow as pa

    table = pa.table({name: columns[name] for name in SCHEMAS[stream]})
    if fmt == "parquet":
        import pyarrow.parquet as pq

        out = io.BytesIO()
        pq.write_table(table, out, compression="zstd")
        return out.getvalue()
    frame = table.to_pandas()
    data = frame.to_json(orient="records", lines=True, force_ascii=False).encode()
    return gzip.compress(data, compresslevel=1, mtime=0) if fmt == "jsonl.gz" else data


@dataclass(frozen=True)
class ExportFile:
    key: str
    rows: int
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


_KEY = re.compile(
    r"^(?P<stream>[a-z_]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<kind>full-|since-\d{4}-\d{2}-\d{2}-|)part-\d+\."
)


def export_files(settings: ShopSettings, day: int, after: int | None, kind: str) -> Iterator[ExportFile]:
    """The files of one export, chunk by chunk: records newer than day `after` (None: all)."""
    history = ShopHistory(settings, day)
    date = day_date(day).isoformat()
    for stream in STREAMS:
        keys = history.keys_in(stream, after)
        for part, start in enumerate(range(0, len(keys), settings.chunk_rows)):
            chunk = keys[start : start + settings.chunk_rows]
            data = encode(stream, COLUMNS[stream](history, chunk), settings.format)
            yield ExportFile(f"{stream}/{date}/{kind}part-{part:04d}.{settings.format}", len(chunk), data)


def existing_exports(client, bucket: str) -> dict[str, str]:
    """{date: kind} of the exports already in the bucket ('full-', 'since-<date>-' or '')."""
    found: dict[str, str] = {}
    for obj in client.list_objects(bucket, recursive=True):
        if match := _KEY.match(obj.object_name):
            found[match["date"]] = match["kind"]
    return found


def plan_export(existing: dict[str, str], day: int, *, full_refresh: bool = False) -> tuple[str, int | None] | None:
    """(kind, after) of the export for `day` given what the bucket holds; None: nothing to write."""
    date = day_date(day).isoformat()
    if full_refresh or not existing:
        return "full-", None
    if date in existing:
        kind = existing[date]
        if kind == "full-":
            return kind, None
        if kind.startswith("since-"):
            return kind, day_index(kind[len("since-") : -1])
        return "", day - 1
    last = max(existing)
    if last > date:
        return None
    last_day = day_index(last)
    if last_day == day - 1:
        return "", day - 1
    return f"since-{last}-", last_day


def export_day(
    client,
    settings: ShopSettings,
    logical_date: dt.date | str,
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write the shop's export for `logical_date` into the bucket; return what was written.

    Objects whose content is unchanged are left alone (their last-modified time is source-s3's
    cursor). A full refresh removes the older exports first.
    """
    import time

    started = time.monotonic()
    day = day_index(logical_date)
    if not client.bucket_exists(settings.bucket):
        client.make_bucket(settings.bucket)
    existing = existing_exports(client, settings.bucket)
    planned = plan_export(existing, day, full_refresh=full_refresh)
    date = day_date(day).isoformat()
    result: dict[str, Any] = {"date": date, "kind": None, "rows": {}, "bytes": 0, "written": 0, "unchanged": 0}
    if planned is None:
        log(f"shop export {date}: the bucket already holds a later export ({max(existing)}); nothing to write")
        result["seconds"] = round(time.monotonic() - started, 3)
        return result
    kind, after = planned
    if full_refresh:
        for obj in list(client.list_objects(settings.bucket, recursive=True)):
            if _KEY.match(obj.object_name):
                client.remove_object(settings.bucket, obj.object_name)
    result["kind"] = {"full-": "full", "": "daily"}.get(kind, kind.rstrip("-"))
    current = {
        o.object_name
        for o in client.list_objects(settings.bucket, recursive=True)
        if o.object_name.split("/")[1:2] == [date]
    }
    for f in export_files(settings, day, after, kind):
        stream = f.key.split("/", 1)[0]
        result["rows"][stream] = result["rows"].get(stream, 0) + f.rows
        result["bytes"] += len(f.data)
        if f.key in current and _stored_hash(client, settings.bucket, f.key) == f.sha256:
            result["unchanged"] += 1
            continue
        client.put_object(
            settings.bucket, f.key, io.BytesIO(f.data), len(f.data), metadata={HASH_META: f.sha256},
            content_type=CONTENT_TYPES[settings.format],
        )  # fmt: skip
        result["written"] += 1
    result["seconds"] = round(time.monotonic() - started, 3)
    log(
        f"shop export {date} ({result['kind']}): "
        + ", ".join(f"{k}={v}" for k, v in result["rows"].items())
        + f"; {result['written']} file(s) written, {result['unchanged']} unchanged, {result['bytes']} bytes"
        + f" in {result['seconds']} s (s3://{settings.bucket}/)"
    )
    return result


def _stored_hash(client, bucket: str, key: str) -> str | None:
    meta = client.stat_object(bucket, key).metadata
    for name, value in meta.items():
        if name.lower() in (HASH_META, f"x-amz-meta-{HASH_META}"):
            return value
    return None
