#!/bin/bash
# Run once by the postgres image on an empty volume (/docker-entrypoint-initdb.d), as the
# superuser: Airflow's metadata database and its own login role. The warehouse database is
# POSTGRES_DB; its roles and grants come from include/sql/warehouse, applied by airflow-init
# (`python -m include.pipeline.services.containers init`), like `make settings` does on a laptop.
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set: run make compose-env}"
psql -v ON_ERROR_STOP=1 -q -d postgres -v pw="$AIRFLOW_DB_PASSWORD" <<'SQL'
create role airflow login password :'pw';
create database airflow owner airflow;
SQL
