"""The platform engine: the declaration applied to an Airbyte server, syncs run through its public API.

api.py       a small client of the public API (/api/public/v1, client-credentials token)
apply.py     plan / apply of include/airbyte/connections.yaml, by name, in one workspace
operator.py  the Airflow side: connection id looked up by name at run time, deferrable sync,
             reattach instead of duplicate jobs, cancel on timeout / kill / mark-failed
"""
