"""`make lake-sql`: DuckDB over the lake, one view per mart over its committed partitions only.

DuckDB reads S3 through its httpfs extension, which here comes from the `duckdb-ext-httpfs`
wheel (built for the pinned duckdb) and is loaded from that file: automatic install and load of
extensions are off and the extension folder is an empty temporary one, so nothing is ever
downloaded (these machines cannot reach DuckDB's extension server, and a query must not depend
on it).

The views follow the manifest rule of include/pipeline/publish/lake.py: a partition is read only
when it has a `_manifest.json`, and only the objects that manifest lists, so a failed or running
publish (objects without a manifest, or not listed in it) never shows. The views are made when
the session opens: a partition committed later is seen by the next session.

- `<mart>`: every committed partition of the mart, with its `ds` (a date) as a column;
- `lake_partitions`: one row per committed partition (mart, ds, rows, bytes, objects, ...).

Endpoint and keys: S3_ENDPOINT (or the embedded server's in .local/services.json), the lake's
read-only identity S3_LAKE_READER_ACCESS_KEY / S3_LAKE_READER_SECRET_KEY from the environment or .env; the bucket: LAKE_BUCKET (default `lake`).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from include.pipeline import endpoints
from include.pipeline.publish import lake

_MANIFEST_KEY = re.compile(r"^marts/([a-z_][a-z0-9_]{0,62})/ds=(\d{4}-\d{2}-\d{2})/" + re.escape(lake.MANIFEST) + "$")


class LakeSqlError(RuntimeError):
    pass


def httpfs_extension() -> Path:
    """The httpfs extension file of the duckdb-ext-httpfs wheel, built for the installed duckdb
    (the wheel puts it in the `duckdb_ext` package: extensions/v<duckdb version>/<platform>/)."""
    import importlib.util

    import duckdb

    spec = importlib.util.find_spec("duckdb_ext")
    folders = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    found = sorted(
        f for folder in folders for f in folder.glob(f"extensions/v{duckdb.__version__}/*/httpfs.duckdb_extension")
    )
    if not found:
        raise LakeSqlError(
            f"no httpfs extension for duckdb {duckdb.__version__} is installed (the duckdb-ext-httpfs wheel of the"
            " same version): run `make setup`"
        )
    return found[0]


def _literal(value: str) -> str:
    """A SQL string literal (CREATE SECRET takes no bound parameters)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class LakeTarget:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"

    @classmethod
    def from_settings(cls) -> LakeTarget:

        s3 = endpoints.S3.for_identity("lake_reader")  # read and list on the lake, nothing else
        if not s3.endpoint:
            raise LakeSqlError("no S3 endpoint: start the services (`make services`) or export S3_ENDPOINT")
        return cls(s3.endpoint, s3.access_key, s3.secret_key, lake.bucket())

    def client(self):
        from minio import Minio

        url = urlsplit(self.endpoint)
        if not url.netloc or url.scheme not in ("http", "https"):
            raise LakeSqlError(f"S3 endpoint {self.endpoint!r} is not a URL like http://127.0.0.1:8333")
        return Minio(
            url.netloc, access_key=self.access_key, secret_key=self.secret_key, secure=url.scheme == "https",
            region=self.region,
        )  # fmt: skip


def connect(target: LakeTarget, *, extension_dir: Path | None = None):
    """A DuckDB connection that reads the lake's bucket through httpfs (loaded from its wheel)."""
    import duckdb

    url = urlsplit(target.endpoint)
    extension_dir = extension_dir or Path(tempfile.mkdtemp(prefix="lake-sql-ext-"))
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "extension_directory": str(extension_dir),
        }
    )
    con.execute(f"load {_literal(str(httpfs_extension()))}")
    con.execute(
        "create or replace secret lake (type s3, key_id {}, secret {}, endpoint {}, region {}, url_style 'path',"
        " use_ssl {})".format(
            _literal(target.access_key), _literal(target.secret_key), _literal(url.netloc), _literal(target.region),
            "true" if url.scheme == "https" else "false",
        )
    )  # fmt: skip
    return con


def committed_partitions(client, bucket: str) -> list[dict[str, Any]]:
    """Every manifest under marts/ (the committed partitions), sorted by mart and ds."""
    manifests = []
    for obj in client.list_objects(bucket, prefix="marts/", recursive=True):
        match = _MANIFEST_KEY.match(obj.object_name)
        if not match:
            continue
        manifest = lake.read_manifest(client, match.group(1), match.group(2), lake_bucket=bucket)
        if manifest is not None:
            manifests.append(manifest)
    return sorted(manifests, key=lambda m: (m["mart"], m["ds"]))


def create_views(con, client, bucket: str) -> dict[str, int]:
    """One view per mart over the objects its manifests list, and `lake_partitions`; returns
    {mart: committed partitions}."""
    manifests = committed_partitions(client, bucket)
    con.execute(
        "create or replace table lake_partitions (mart varchar, ds date, rows bigint, bytes bigint, objects integer,"
        " committed_at timestamptz, dbt_invocation_id varchar, run_id varchar)"
    )
    if manifests:
        con.executemany(
            "insert into lake_partitions values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [m["mart"], m["ds"], m["rows"], m["bytes"], len(m["objects"]), m["committed_at"],
                 m.get("dbt_invocation_id"), m.get("run_id")]
                for m in manifests
            ],
        )  # fmt: skip
    by_mart: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for m in manifests:
        counts[m["mart"]] = counts.get(m["mart"], 0) + 1
        by_mart.setdefault(m["mart"], []).extend(f"s3://{bucket}/{o['key']}" for o in m["objects"])
    for mart, files in by_mart.items():
        if not files:  # every committed partition of it is empty: no Parquet file to take a schema from
            continue
        listing = ", ".join(_literal(f) for f in files)
        con.execute(
            f'create or replace view "{mart}" as select * from read_parquet([{listing}],'  # noqa: S608 - names checked, files quoted
            " hive_partitioning = true, union_by_name = true)"
        )
    return counts


def open_lake(target: LakeTarget | None = None):
    """(connection, {mart: partitions}) for the configured lake."""
    target = target or LakeTarget.from_settings()
    client = target.client()
    if not client.bucket_exists(target.bucket):
        raise LakeSqlError(f"bucket {target.bucket!r} does not exist on {target.endpoint}: nothing was published yet")
    con = connect(target)
    return con, create_views(con, client, target.bucket)


def run(con, statement: str) -> None:
    """Run one statement; print its rows as a table when it returns any."""
    relation = con.sql(statement)
    if relation is not None:
        relation.show(max_rows=200, max_width=200)


def _statements(lines) -> Any:
    """SQL statements from lines of text, each ending with `;`."""
    buffer = ""
    for line in lines:
        buffer += line
        while ";" in buffer:
            statement, buffer = buffer.split(";", 1)
            if statement.strip():
                yield statement
    if buffer.strip():
        yield buffer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make lake-sql", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sql", help="run this SQL (statements separated by ;) and exit; otherwise read SQL from stdin"
    )
    args = parser.parse_args(argv)
    from minio.error import S3Error

    target = None
    try:
        target = LakeTarget.from_settings()
        con, counts = open_lake(target)
    except (LakeSqlError, RuntimeError) as exc:
        print(f"lake-sql: {exc}", file=sys.stderr)
        return 2
    except S3Error as exc:  # a wrong key, a missing bucket: say which, without a traceback
        print(f"lake-sql: the S3 server at {target.endpoint} refused: {exc.code} ({exc.message})", file=sys.stderr)
        return 2
    interactive = args.sql is None and sys.stdin.isatty()
    if interactive or args.sql is None:
        views = ", ".join(f"{m} ({n} partitions)" for m, n in counts.items()) or "(no committed partition yet)"
        print(
            f"DuckDB over s3://{target.bucket}/ on {target.endpoint}; views: {views}; lake_partitions", file=sys.stderr
        )
    if args.sql is not None:
        source = [args.sql]
    elif interactive:
        print("SQL statements end with ; (Ctrl-D to quit)", file=sys.stderr)
        source = _prompt_lines()
    else:
        source = sys.stdin
    status = 0
    for statement in _statements(source):
        try:
            run(con, statement)
        except Exception as exc:  # noqa: BLE001 - a bad query is reported, the session goes on
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            if not interactive:
                break
    return status


def _prompt_lines():
    while True:
        try:
            yield input("lake> ") + "\n"
        except EOFError:
            print(file=sys.stderr)
            return


if __name__ == "__main__":
    sys.exit(main())
