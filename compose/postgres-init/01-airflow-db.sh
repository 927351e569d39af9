#!/bin/bash
# Run once by the postgres image on an empty volume (/docker-entrypoint-initdb.d), as the
# superuser: Airflow's metadata database and its own login role. The warehouse database is
# POSTGRES_DB; its roles and grants come from include/sql/warehouse, applied by airflow-init
# (`python -m include.pipeline.services.containers init`), like `make settings` does on a laptop.
#
# Who may connect: Postgres lets every role (PUBLIC) connect to every database. Here only
# `airflow` connects to `airflow`, and only the roles include/sql/warehouse grants connect to the
# warehouse (the superuser bypasses both). The password is read by psql from the environment
# (\getenv), never written on a command line, where `ps` would show it.
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set: run make compose-env}"
: "${POSTGRES_DB:?POSTGRES_DB is not set}"
psql -v ON_ERROR_STOP=1 -q -d postgres -v warehouse="$POSTGRES_DB" <<'SQL'
\getenv pw AIRFLOW_DB_PASSWORD
create role airflow login password :'pw';
\unset pw
create database airflow owner airflow;
revoke all on database airflow from public;
grant connect, temporary on database airflow to airflow;
revoke connect, temporary on database :"warehouse" from public;
SQL
