"""The connect arguments of Airflow's SQLite metadata database: `airflow_env` points
`AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS` here when the database is SQLite (Airflow imports
this dict in every process, while it sets up its engine: this module imports nothing).

SQLite lets one writer in at a time; another waits `timeout` seconds for the lock (Python's
sqlite3: 5 by default), then fails with "database is locked". On 2 busy cores `airflow backfill
create` waited longer than that while the scheduler wrote: the command failed half-way, the
scheduler found a run it had started gone (StaleDataError) and exited, and `make up` stopped the
stack. A writer now waits up to a minute.
"""

CONNECT_ARGS = {"timeout": 60}
