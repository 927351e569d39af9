"""Check one committed lake partition of every mart with DuckDB, against its manifest.

publish (lake.py) commits `s3://<bucket>/marts/<mart>/ds=<ds>/` by writing `_manifest.json` last;
the manifest lists each Parquet object with its rows and sha256. This reads the partition the way
a consumer does (DuckDB over S3, lake_sql.py, as the read-only identity) and checks that what
is there is what the manifest says: every listed object readable, its row count and the total the
manifest's, the columns the manifest's schema. The `lake_check` DAG runs it on each new partition.
"""

from __future__ import annotations

from typing import Any

from include.pipeline.publish import lake
from include.pipeline.publish.lake_sql import LakeTarget, connect

# the object alone (no `ds` column from its path); the URL is a bound parameter
COUNT = "select count(*) from read_parquet(?, hive_partitioning = false)"
DESCRIBE = "describe select * from read_parquet(?, hive_partitioning = false)"


class LakeCheckError(RuntimeError):
    pass


def target_from_airflow_connection(conn) -> LakeTarget:
    """The lake as an Airflow `aws` connection gives it (keys in login/password, extra endpoint_url)."""
    endpoint = (conn.extra_dejson.get("endpoint_url") or "").rstrip("/")
    if not endpoint:
        raise LakeCheckError(
            f"Airflow connection {conn.conn_id!r} has no extra endpoint_url (e.g. http://127.0.0.1:8333)"
        )
    region = conn.extra_dejson.get("region_name") or "us-east-1"
    return LakeTarget(endpoint, conn.login or "", conn.password or "", lake.bucket(), region)


def check_mart(con, client, bucket: str, mart: str, ds: str) -> dict[str, Any]:
    """Problems of one mart's partition (empty when it matches its manifest) and its figures."""
    manifest = lake.read_manifest(client, mart, ds, lake_bucket=bucket)
    if manifest is None:
        return {"mart": mart, "ds": ds, "problems": [f"s3://{bucket}/{lake.partition_prefix(mart, ds)}: no manifest"]}
    problems = []
    rows = 0
    columns: list[str] | None = None
    for entry in manifest["objects"]:
        url = f"s3://{bucket}/{entry['key']}"
        counted = con.execute(COUNT, [url]).fetchone()[0]
        if counted != entry["rows"]:
            problems.append(f"{url}: {counted} rows, the manifest says {entry['rows']}")
        rows += counted
        if columns is None:
            described = con.execute(DESCRIBE, [url]).fetchall()
            columns = [row[0] for row in described]
    if rows != manifest["rows"]:
        problems.append(f"{mart} ds={ds}: {rows} rows in its objects, the manifest says {manifest['rows']}")
    expected = [c["name"] for c in manifest.get("schema", [])]
    if columns is not None and expected and columns != expected:
        problems.append(f"{mart} ds={ds}: columns {columns}, the manifest's schema says {expected}")
    return {"mart": mart, "ds": ds, "rows": rows, "objects": len(manifest["objects"]), "problems": problems}


def check_partition(target: LakeTarget, marts: list[str], ds: str) -> list[dict[str, Any]]:
    """Check partition `ds` of each mart; raise LakeCheckError naming every problem found."""
    client = target.client()
    con = connect(target)
    try:
        results = [check_mart(con, client, target.bucket, mart, ds) for mart in marts]
    finally:
        con.close()
    problems = [p for r in results for p in r["problems"]]
    if problems:
        raise LakeCheckError(f"lake partition ds={ds} differs from its manifests:\n- " + "\n- ".join(problems))
    return results
