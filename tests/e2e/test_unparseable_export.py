"""End to end (issue 25): a day whose export files carry a time that does not parse and times with
a +02:00 offset runs green. The bad record is in the quarantine model, not in staging, and
counted in metrics and in the run summary; the offset record's times are the right instants.

Extra export files for the next day are written beside the simulated shop's, into the stack's own
S3 exports bucket, as the shop's export job would; the next day then runs through `make demo`'s
command on a private copy of the session stack.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from include.pipeline.ingest.declaration import load_connections
from include.pipeline.settings import read_env_file
from tests.support import E2E_DATE

pytestmark = pytest.mark.e2e

NEXT_DAY = (dt.date.fromisoformat(E2E_DATE) + dt.timedelta(days=1)).isoformat()
BAD, OFFSET = 900_001, 900_002  # purchase ids far above the simulated shop's


def extra_purchases() -> bytes:
    times = {
        "added_to_cart_at": f"{NEXT_DAY}T10:00:00+02:00",
        "purchased_at": f"{NEXT_DAY}T10:30:00+02:00",
        "returned_at": None,
        "created_at": f"{NEXT_DAY}T09:59:00+02:00",
        "updated_at": f"{NEXT_DAY}T10:30:00+02:00",
    }
    records = [
        {"id": BAD, "user_id": 1, "product_id": 1, **times, "purchased_at": "not a time"},
        {"id": OFFSET, "user_id": 1, "product_id": 1, **times},
    ]
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_a_day_with_an_unparseable_time_and_offsets_runs_green(own_stack):
    stack = own_stack
    from minio import Minio

    source = load_connections().connection("shop_to_warehouse").source
    bucket = source.config["bucket"]
    port = json.loads((stack.root / ".local" / "services.json").read_text())["s3"]["port"]
    env = read_env_file(stack.root / ".env")
    client = Minio(f"127.0.0.1:{port}", env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], secure=False)
    data = extra_purchases()
    client.put_object(bucket, f"purchases/{NEXT_DAY}/extra-0001.jsonl", io.BytesIO(data), len(data))

    run = stack.cli("demo", "--date", NEXT_DAY, "--days", "1", check=False)

    out = run.stdout
    assert run.returncode == 0 and "run state: success" in out, out[-4000:] + run.stderr[-2000:]
    assert "shop.purchases: unparseable_value (purchased_at): 1" in out, out[-3000:]
    quarantined = stack.sql(
        "select problem, column_name, bad_value from staging.stg_shop__quarantined_records where record_key = %s",
        [str(BAD)],
    )
    assert quarantined == [("unparseable_value", "purchased_at", "not a time")]
    assert stack.sql("select purchase_id from staging.stg_shop__purchases where purchase_id = %s", [BAD]) == []
    assert stack.sql("select order_id from marts.orders where order_id = %s", [BAD]) == []
    [(cart, paid)] = stack.sql(
        "select added_to_cart_at, purchased_at from staging.stg_shop__purchases where purchase_id = %s", [OFFSET]
    )
    day = dt.date.fromisoformat(NEXT_DAY)
    assert cart == dt.datetime(day.year, day.month, day.day, 8, 0, tzinfo=dt.UTC)
    assert paid == dt.datetime(day.year, day.month, day.day, 8, 30, tzinfo=dt.UTC)
    assert stack.sql("select order_date from marts.orders where order_id = %s", [OFFSET]) == [(day,)]
    counted = stack.sql(
        "select d.value from metrics.data_quality as d join metrics.dag_runs as r using (dag_id, run_id)"
        " where d.check_name = 'quarantined_records' and d.subject = %s and r.logical_date::date = %s",
        ["shop.purchases: unparseable_value (purchased_at)", NEXT_DAY],
    )
    assert counted == [(1,)], counted
