"""The platform engine: the declaration applied to an Airbyte server, syncs run through its public API.

Split the way the Airbyte provider splits hooks, triggers and operators:

api.py        a small client of the public API (/api/public/v1, client-credentials token)
apply.py      plan / apply of include/airbyte/connections.yaml, by name, in one workspace
jobs.py       an Airbyte job as one plain dict (SDK model or API answer), its statuses
triggers.py   the deferred wait in the triggerer, and the attempt counter
operators.py  the Airflow side: connection id looked up by name at run time, deferrable sync,
              reattach instead of duplicate jobs, cancel on timeout / kill / mark-failed

The DAG's ingest task that chooses between this and the embedded engine is ../connection_sync.py.
"""
