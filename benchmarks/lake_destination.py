"""The embedded S3 destination's write path: records/s and this process's peak RSS.

    .venv/bin/python benchmarks/lake_destination.py [--records 1000000]

Starts a throw-away S3 server (the embedded SeaweedFS) in a temp folder and feeds `--records`
user-like Airbyte RECORD messages (ints, text, a float, a JSON object, ISO timestamps) through
include/airbyte_runtime/lake.py's LakeSync, as the embedded sync does with a connector's
output: row groups of ROWS_PER_GROUP records, a Parquet part uploaded every ROWS_PER_OBJECT. The
connector itself is not run (its own speed is measured in ingest_throughput.py). Memory should
stay flat whatever the record count.
"""

from __future__ import annotations

import argparse
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from include.airbyte_runtime import lake, parquet  # noqa: E402
from include.pipeline.ingest.declaration.s3 import S3Settings  # noqa: E402
from include.pipeline.services.s3 import EmbeddedS3  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def records(n: int):
    for i in range(n):
        yield {
            "type": "RECORD",
            "record": {
                "stream": "users",
                "emitted_at": 1_767_744_000_000 + i,
                "data": {
                    "id": i, "name": f"customer {i}", "email": f"c{i}@example.com", "age": 18 + i % 70,
                    "weight": i % 120, "height": f"{1.5 + (i % 50) / 100:.2f}", "address": {"city": f"city {i % 500}"},
                    "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-02T00:00:00+00:00",
                    "_ab_source_file_last_modified": "2026-01-02T00:00:00.000000Z",
                    "_ab_source_file_url": "users/2026-01-01/part-0000.parquet",
                },
            },
        }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    schema = {"properties": {
        "id": {"type": ["null", "integer"]}, "name": {"type": ["null", "string"]}, "email": {"type": ["null", "string"]},
        "age": {"type": ["null", "integer"]}, "weight": {"type": ["null", "integer"]}, "height": {"type": ["null", "string"]},
        "address": {"type": ["null", "object"]}, "created_at": {"type": ["null", "string"]},
        "updated_at": {"type": ["null", "string"]}, "_ab_source_file_last_modified": {"type": "string"},
        "_ab_source_file_url": {"type": "string"},
    }}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-lake-destination-") as tmp:
        server = EmbeddedS3(Path(tmp) / "s3", secrets.token_hex(10), secrets.token_urlsafe(24), buckets=("lake",))
        server.start()
        try:
            s3 = S3Settings("lake", "raw_history", "parquet", server.endpoint, "us-east-1", "-", "-")
            layouts = {"users": parquet.StreamLayout.of(schema)}
            print(f"start: peak RSS {peak_rss_mib():.0f} MiB", flush=True)
            started = time.perf_counter()
            sink = lake.LakeSync(s3, "bench", server.client(), layouts, log=lambda _: None)
            try:
                sink.consume(records(args.records))
                figures = sink.commit()
            finally:
                sink.close()
            seconds = time.perf_counter() - started
            users = figures["users"]
            print(
                f"{args.records:,} records -> {users['objects']} parts, {users['bytes'] / 2**20:.1f} MiB of Parquet in"
                f" {seconds:.1f} s ({args.records / seconds:,.0f} records/s); peak RSS {peak_rss_mib():.0f} MiB",
                flush=True,
            )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
