"""The embedded Airbyte runtime: runs a declared connection's connector and writes what it reads.

Runs in its own interpreter (.venv-airbyte), started by the Airflow task
(include/pipeline/ingest/embedded.py) as `python -P include/airbyte_runtime/__main__.py`, a JSON
spec on its stdin; it prints progress lines, then `RESULT <json>`. It drives connectors over the
published Airbyte protocol (airbyte-protocol-models) and writes Postgres itself; its modules import
only the standard library, airbyte-protocol-models, orjson, jsonschema, psycopg2, pyarrow and
minio (the lake's part of a shared read), and
include.airbyte_runtime / include.pipeline.ingest modules that do the same (schema_changes,
bad_files). No PyAirbyte: it had no public hook for its write path or its connector start.

One idea per module:
- connector: the connector process and its output (wide pipe, read-ahead relay, die with parent);
- messages: Airbyte protocol messages, with a fast path for RECORD lines;
- catalog: the config checked against the spec, the configured catalog, the read groups;
- metadata_cache: the connector's spec and discover, asked at once or kept between syncs;
- sync: one `read` of the connector, its messages handed to the writer;
- rows / tables / stage / destination_postgres / state: records as Postgres rows, the warehouse
  layout, the stage COPY, the merge/append/replace into tables, the stored state;
- checks: schema changes and bad files, checked before a stream commits;
- locks: one sync per stream at a time (advisory locks), left-over stages dropped;
- lake: the lake's destination (Parquet in Airbyte's S3 layout), run from the Airflow side, or
  fed by the warehouse's read (shared_lake: one read for two destinations);
- main: the entry point.
"""
