"""The Airflow Assets of the data platform: what the ingest and publish tasks write, named so the
names stay the same across restarts and machines.

The embedded Postgres listens on a port chosen at each start; an Asset named after it (as
OpenLineage names a table, `postgres://127.0.0.1:55191/...`) would be a new Asset after every
restart, its history and consumers left on the old one. These Assets use a logical namespace
instead: the warehouse is the host `warehouse` (the database name from WAREHOUSE_DB), the lake is
its bucket. Nothing here opens a connection: DAG files call it while Airflow parses them.

- raw tables: `postgres://warehouse:5432/<db>/<schema>/<stream>` (Airflow's postgres URI form),
  named `warehouse.<schema>.<stream>`; the lake's raw history `s3://<bucket>/<prefix>/<stream>/`;
- marts in the lake: `s3://<bucket>/marts/<mart>/`, named `lake.marts.<mart>`; each publish adds an
  event whose partition key is the run's `ds` (the partition `ds=<ds>/` it committed).
"""

from __future__ import annotations

from airflow.sdk import Asset

from include.pipeline import settings

WAREHOUSE_HOST = "warehouse"  # logical: the embedded server's 127.0.0.1:<port> changes at each start


def warehouse_database() -> str:
    return settings.setting("WAREHOUSE_DB") or "warehouse"


def warehouse_table(schema: str, table: str, group: str = "warehouse") -> Asset:
    """A table in the warehouse, in the logical namespace."""
    return Asset(
        name=f"warehouse.{schema}.{table}",
        uri=f"postgres://{WAREHOUSE_HOST}:5432/{warehouse_database()}/{schema}/{table}",
        group=group,
    )


def raw_table(schema: str, table: str) -> Asset:
    """A table the ingest writes into the warehouse."""
    return warehouse_table(schema, table, group="raw")


def lake_prefix(bucket: str, prefix: str, stream: str) -> Asset:
    """A stream's folder in an S3 destination (the lake's raw history)."""
    path = "/".join(p.strip("/") for p in (prefix, stream) if p.strip("/"))
    return Asset(name=f"{bucket}.{path.replace('/', '.')}", uri=f"s3://{bucket}/{path}/", group="raw")


def mart(name: str) -> Asset:
    """A mart's location in the lake; its events carry the `ds` partition as partition key."""
    from include.pipeline.publish import lake

    return Asset(name=f"lake.marts.{name}", uri=f"s3://{lake.bucket()}/marts/{name}/", group="marts")


def connection_outputs(connection) -> list[Asset]:
    """What one declared connection writes (include/airbyte/connections.yaml): a raw table per stream
    in a Postgres destination, a folder per stream in an S3 one."""
    destination = connection.destination
    if destination.type == "s3":  # bucket and path_prefix checked by ingest/declaration/s3.py
        s3 = destination.s3
        return [lake_prefix(s3.bucket, s3.path_prefix, s.name) for s in connection.streams]
    return [raw_table(destination.schema, s.name) for s in connection.streams]
