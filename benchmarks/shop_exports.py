"""The daily workload's figures: the shop simulator's speed, a day's increment vs the whole shop,
and source-s3's own read speed per file format.

    .venv/bin/python benchmarks/shop_exports.py [--customers 1000000] [--read-records 100000] [--repeat 2]

1. generation: the initial export (the whole shop) of a shop of --customers customers and as
   many orders, in Parquet, JSONL and gzip'd JSONL, encoded in bounded chunks (not uploaded): seconds,
   records/s, bytes, peak RSS of this process;
2. day 1's increment of that shop (1% new, 1% changed) vs the initial export: records and bytes;
3. source-s3 read: a shop of about --read-records records exported into an embedded S3 server
   (started on free ports in a temp dir), then `source-s3 read` of all three streams, its
   records counted from its stdout, no destination: seconds and records/s per format.

Each timed step runs --repeat times; the best and the median are printed. Measured under
whatever else runs on the machine: say so when quoting the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.airbyte_runtime.connector import widen_pipe  # noqa: E402
from include.pipeline import environments  # noqa: E402
from include.pipeline.ingest.declaration import load_connections  # noqa: E402
from include.pipeline.ingest.embedded import connector_executable  # noqa: E402
from include.pipeline.services.s3 import EmbeddedS3  # noqa: E402
from include.simulator import exports, shop  # noqa: E402


def timed(fn, repeat: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.monotonic()
        result = fn()
        seconds.append(time.monotonic() - started)
    return seconds, result


def fmt_times(seconds: list[float], records: int) -> str:
    best, median = min(seconds), statistics.median(seconds)
    return (
        f"best {best:7.2f} s ({records / best:>9,.0f} rec/s)  median {median:7.2f} s ({records / median:>9,.0f} rec/s)"
    )


def generate(settings: shop.ShopSettings, day: int, after: int | None, kind: str) -> tuple[int, int]:
    rows = size = 0
    for f in exports.export_files(settings, day, after, kind):
        rows += f.rows
        size += len(f.data)
    return rows, size


def read_with_source_s3(server: EmbeddedS3, fmt: str, repeat: int) -> tuple[list[float], int]:
    source = load_connections().sources["shop"]
    config = source.resolved_config(
        {
            "S3_ENDPOINT": server.endpoint,
            "S3_EXPORTS_READER_ACCESS_KEY": server.access_key,
            "S3_EXPORTS_READER_SECRET_KEY": server.secret_key,
        }  # fmt: skip
    )
    config["bucket"] = f"bench-{fmt.replace('.', '-')}"
    for stream in config["streams"]:
        stream["format"] = {"filetype": fmt.split(".")[0]}  # jsonl.gz is read as jsonl
    return read_exports(config, repeat)


def read_all_exports() -> tuple[float, int]:
    """source-s3's own read of every export file of this stack's S3 (settings from the environment,
    .env and .local/services.json, as the DAG resolves them), with the configured catalog the
    embedded sync sends (`sync_catalog`) and no state, as a first sync: (seconds, records)."""

    os.environ.update(environments.s3_env())  # the stage keys connections.yaml names
    connection = load_connections().connection("shop_to_warehouse")
    config = connection.source.resolved_config()
    seconds, records = read_exports(config, 1, catalog=sync_catalog(connection))
    return seconds[0], records


# Run by .venv-airbyte's interpreter: the runner's own functions (it imports PyAirbyte's packages).
SYNC_CATALOG = """
import json, sys
sys.path.append(sys.argv[1])  # the repository, after the venv's own paths
from include.airbyte_runtime.catalog import configured_catalog, read_groups
from include.airbyte_runtime.metadata_cache import read_metadata_cache
sync = json.loads(sys.stdin.read())
cached = read_metadata_cache(sync)
if cached is None:
    sys.exit("no connector metadata cache for this config yet: run one sync first")
_, full, names = read_groups(sync)[0]
print(json.dumps(configured_catalog(sync, cached["catalog"], names, full)))
"""


def sync_catalog(connection) -> dict:  # noqa: ANN001 - a declared Connection
    """The configured catalog the embedded sync of `connection` sends with `read` (incremental
    streams, the declared cursors and keys: include/airbyte_runtime/catalog.py configured_catalog), from the
    connector's cached catalog, so that the connector reads the same records the same way."""
    from include.pipeline.endpoints import Warehouse
    from include.pipeline.ingest.embedded import build_spec, runtime_python

    sync = build_spec(connection, Warehouse.from_settings())
    proc = subprocess.run([str(runtime_python()), "-P", "-c", SYNC_CATALOG, str(ROOT)], input=json.dumps(sync),
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"the sync's catalog could not be built: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def read_exports(config: dict, repeat: int, catalog: dict | None = None) -> tuple[list[float], int]:
    """Run `source-s3 read` (of `catalog`, by default a full refresh of every stream of `config`;
    no state, no destination) `repeat` times: ([seconds], records), records counted from its stdout."""
    catalog = catalog or {
        "streams": [
            {
                "stream": {
                    "name": s["name"],
                    "json_schema": json.loads(s["input_schema"]),
                    "supported_sync_modes": ["full_refresh", "incremental"],
                },
                "sync_mode": "full_refresh",
                "destination_sync_mode": "overwrite",
            }
            for s in config["streams"]
        ]
    }
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(config))
        (Path(tmp) / "catalog.json").write_text(json.dumps(catalog))
        (Path(tmp) / "state.json").write_text("[]")
        cmd = [str(connector_executable("source-s3")), "read", "--config", f"{tmp}/config.json",
               "--catalog", f"{tmp}/catalog.json", "--state", f"{tmp}/state.json"]  # fmt: skip
        env = {**os.environ, "DO_NOT_TRACK": "1"}

        def run() -> int:
            # The connector at its best: its stdout drained in 1 MiB reads from a pipe as wide as the
            # embedded runner's, so it never waits on this reader.
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=tmp, bufsize=0)
            assert proc.stdout
            widen_pipe(proc.stdout)
            count, tail, partial = 0, [], b""
            while True:
                chunk = proc.stdout.read(1 << 20)
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop() if chunk else b""  # at the end, the last line is whole
                for line in lines:
                    if b"RECORD" in line[:30]:
                        count += 1
                    elif line.strip():
                        tail = (tail + [line[:2000]])[-20:]
                if not chunk:
                    break
            if proc.wait() != 0:
                raise RuntimeError(
                    f"source-s3 read exited {proc.returncode}: " + b"".join(tail).decode(errors="replace")
                )
            return count

        return timed(run, repeat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--read-records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    n = args.customers
    print(f"Shop: {n:,} customers, {n:,} orders, 100 products; 1% new and 1% changed a day\n")
    print("1. generation of the initial export (whole shop), encoded in 200k-row chunks, not uploaded")
    for fmt in ("parquet", "jsonl", "jsonl.gz"):
        settings = shop.ShopSettings(customers=n, orders=n, daily_new=0.01, daily_changed=0.01, format=fmt)
        seconds, (rows, size) = timed(lambda s=settings: generate(s, 0, None, "full-"), args.repeat)
        print(f"   {fmt:8s} {rows:>10,} records {size / 1e6:8.1f} MB  {fmt_times(seconds, rows)}")
    print(f"   peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    print("\n2. day 1's increment vs the whole shop (parquet)")
    settings = shop.ShopSettings(customers=n, orders=n, daily_new=0.01, daily_changed=0.01, format="parquet")
    full_rows, full_size = generate(settings, 1, None, "full-")
    inc_rows, inc_size = generate(settings, 1, 0, "")
    print(f"   whole shop on day 1: {full_rows:>10,} records {full_size / 1e6:8.1f} MB")
    print(f"   day 1's increment  : {inc_rows:>10,} records {inc_size / 1e6:8.1f} MB "
          f"({100 * inc_rows / full_rows:.1f}% of the records, {100 * inc_size / full_size:.1f}% of the bytes)")  # fmt: skip

    half = max(1, (args.read_records - 100) // 2)
    print(f"\n3. source-s3's own read (no destination), shop of {half:,} customers + {half:,} orders + 100 products")
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedS3(Path(tmp), secrets.token_hex(8), secrets.token_urlsafe(24))
        server.start()
        try:
            client = server.client()
            for fmt in ("parquet", "jsonl", "jsonl.gz"):
                settings = shop.ShopSettings(
                    customers=half, orders=half, format=fmt, bucket=f"bench-{fmt.replace('.', '-')}"
                )
                exports.export_day(client, settings, "2026-01-01", log=lambda _: None)
                seconds, records = read_with_source_s3(server, fmt, args.repeat)
                print(f"   {fmt:8s} {records:>10,} records  {fmt_times(seconds, records)}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
