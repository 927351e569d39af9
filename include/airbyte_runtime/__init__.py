"""The embedded Airbyte runtime: runs a declared connection's connector and writes what it reads.

Runs in its own interpreter (.venv-airbyte), started by the Airflow task
(include/pipeline/ingest/embedded.py) as `python -P include/airbyte_runtime/__main__.py`, a JSON
spec on its stdin; it prints progress lines, then `RESULT <json>`. Modules that run there import
only the standard library, PyAirbyte and its dependencies, and include.airbyte_runtime /
include.pipeline.ingest modules that do the same (schema_changes, bad_files).

One idea per module:
- connector: the connector process and its output (wide pipe, read-ahead relay, die with parent);
- messages: Airbyte protocol messages, with a fast path for RECORD lines;
- catalog: the configured catalog, the read groups and the stored state;
- early / metadata_cache: the connector's spec, discover and read started beside PyAirbyte's import;
- rows / stage / postgres: records as Postgres rows, their stage COPY, and the merge into tables;
- checks: schema changes and bad files, checked before a stream commits;
- locks: one sync per stream at a time (advisory locks), left-over stages dropped;
- lake: the lake's destination (Parquet in Airbyte's S3 layout), run from the Airflow side;
- main: the entry point.
"""
