-- Pipeline metrics, written by include/pipeline/observe (listener plugin, callbacks, freshness check).
-- Every table has the natural key of the event it records as its primary key, and every writer
-- upserts on it: an event delivered twice (a retried hook, a redelivered callback) leaves one row.
-- Applied once by include/pipeline/observe/schema.py (recorded in metrics.schema_migrations);
-- written so that applying it again by hand is harmless too.

create schema if not exists metrics;

-- one row per DAG run; state follows the run (running -> success | failed)
create table if not exists metrics.dag_runs (
    dag_id            text not null,
    run_id            text not null,
    logical_date      timestamptz,
    run_type          text,
    state             text not null,
    queued_at         timestamptz,
    start_date        timestamptz,
    end_date          timestamptz,
    duration_seconds  double precision,
    tasks_total       integer,
    tasks_failed      integer,
    msg               text,
    deliveries        integer not null default 1,
    updated_at        timestamptz not null default now(),
    primary key (dag_id, run_id)
);

-- one row per task try (map_index -1 when not mapped)
create table if not exists metrics.task_runs (
    dag_id            text not null,
    run_id            text not null,
    task_id           text not null,
    map_index         integer not null default -1,
    try_number        integer not null,
    state             text,
    operator          text,
    queued_at         timestamptz,
    start_date        timestamptz,
    end_date          timestamptz,
    duration_seconds  double precision,
    hostname          text,
    updated_at        timestamptz not null default now(),
    primary key (dag_id, run_id, task_id, map_index, try_number)
);

-- one row per (task try, event): running / success / failed / skipped, as the listener saw them
create table if not exists metrics.task_events (
    dag_id        text not null,
    run_id        text not null,
    task_id       text not null,
    map_index     integer not null default -1,
    try_number    integer not null,
    event         text not null,
    state         text,
    error         text,
    deliveries    integer not null default 1,
    first_seen_at timestamptz not null default now(),
    last_seen_at  timestamptz not null default now(),
    primary key (dag_id, run_id, task_id, map_index, try_number, event)
);

-- one row per stream synced by one task try
create table if not exists metrics.syncs (
    dag_id            text not null,
    run_id            text not null,
    task_id           text not null,
    try_number        integer not null,
    stream            text not null,            -- '*' for a sync that failed before per-stream figures
    connection        text not null,
    engine            text,
    job_id            text,
    attempts          integer,
    records           bigint,
    bytes             bigint,
    rows_in_table     bigint,
    destination_table text,
    duration_seconds  double precision,
    status            text not null,            -- succeeded | failed | cancelled
    error             text,
    recorded_at       timestamptz not null default now(),
    primary key (dag_id, run_id, task_id, try_number, stream)
);

-- one row per dbt node (model, test, seed, snapshot) run by one task try, from run_results.json
create table if not exists metrics.dbt_nodes (
    dag_id                 text not null,
    run_id                 text not null,
    task_id                text not null,
    try_number             integer not null,
    unique_id              text not null,
    resource_type          text not null,
    name                   text not null,
    status                 text not null,       -- success | error | fail | warn | pass | skipped
    execution_time_seconds double precision,
    rows_affected          bigint,
    failures               bigint,
    message                text,
    invocation_id          text,
    recorded_at            timestamptz not null default now(),
    primary key (dag_id, run_id, task_id, try_number, unique_id)
);

-- newest _airbyte_extracted_at per raw table, checked by the freshness task of a run
create table if not exists metrics.freshness (
    dag_id              text not null,
    run_id              text not null,
    table_name          text not null,
    newest_extracted_at timestamptz,
    row_count           bigint,
    lag_seconds         double precision,
    max_lag_seconds     double precision,
    is_stale            boolean,
    checked_at          timestamptz not null default now(),
    primary key (dag_id, run_id, table_name)
);

-- data quality figures of a run: failed dbt tests, rows quarantined (Airbyte type errors, quarantine models)
create table if not exists metrics.data_quality (
    dag_id      text not null,
    run_id      text not null,
    check_name  text not null,                 -- dbt_test_failures | quarantined_rows
    subject     text not null,                 -- the test's unique_id, or the table
    value       bigint not null,
    details     text,
    recorded_at timestamptz not null default now(),
    primary key (dag_id, run_id, check_name, subject)
);

create index if not exists task_runs_start_idx on metrics.task_runs (start_date);
create index if not exists syncs_recorded_idx on metrics.syncs (recorded_at);
create index if not exists dbt_nodes_recorded_idx on metrics.dbt_nodes (recorded_at);
