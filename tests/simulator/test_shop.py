"""The simulated shop is a pure function of its settings and the date: the demo's figures repeat.

Each date's export is generated in two fresh buckets, the second by a separate Python process,
later, with another hash seed and time zone (nothing of the run may leak into the data), and the
objects must be byte-identical. A changed seed must change the bytes: the comparison can fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace

import pytest

from include.simulator.exports import export_day
from include.simulator.shop import ShopSettings
from tests.support import REPO_ROOT

pytestmark = pytest.mark.integration

SHOP = ShopSettings(customers=300, orders=300, products=50, chunk_rows=250)
DATES = ("2026-01-01", "2026-01-02", "2026-01-04")  # the first export, a daily one, a catch-up


def bucket_contents(client, bucket: str) -> dict[str, str]:
    """{object key: sha256 of its bytes} of every object in the bucket."""
    out = {}
    for obj in client.list_objects(bucket, recursive=True):
        data = client.get_object(bucket, obj.object_name).read()
        out[obj.object_name] = hashlib.sha256(data).hexdigest()
    return out


def export_dates(client, settings: ShopSettings) -> dict[str, str]:
    for date in DATES:
        export_day(client, settings, date, log=lambda _: None)
    return bucket_contents(client, settings.bucket)


EXPORT_IN_A_CHILD = """
import json, sys
from dataclasses import replace
from minio import Minio
from include.simulator.shop import ShopSettings
from include.simulator.exports import export_day
args = json.loads(sys.argv[1])
client = Minio(args["endpoint"], access_key=args["key"], secret_key=args["secret"], secure=False)
settings = replace(ShopSettings(**args["shop"]), bucket=args["bucket"])
for date in args["dates"]:
    export_day(client, settings, date, log=lambda _: None)
"""


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "jsonl.gz"])
def test_the_same_dates_generated_twice_are_byte_identical(s3_server, fmt):
    client = s3_server.client()
    shop = replace(SHOP, format=fmt)
    first = export_dates(client, replace(shop, bucket=f"a-{uuid.uuid4().hex[:10]}"))
    assert len(first) >= 2 * len(DATES) + 1, first  # several streams and parts per export

    other = f"b-{uuid.uuid4().hex[:10]}"
    args = {
        "endpoint": s3_server.endpoint.split("://", 1)[1], "key": s3_server.access_key,
        "secret": s3_server.secret_key, "bucket": other, "dates": DATES,
        "shop": {k: getattr(shop, k) for k in ShopSettings.KEYS},
    }  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Kiritimati"}
    subprocess.run(
        [sys.executable, "-c", EXPORT_IN_A_CHILD, json.dumps(args)], check=True, env=env, cwd=REPO_ROOT, timeout=300
    )
    second = bucket_contents(client, other)
    assert second == first, "a date's export must not depend on the run"

    reseeded = export_dates(client, replace(shop, bucket=f"c-{uuid.uuid4().hex[:10]}", seed=shop.seed + 1))
    assert reseeded.keys() == first.keys() and reseeded != first, "another seed is another shop"
