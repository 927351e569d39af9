-- What an ingest sync met that its declaration did not say (include/pipeline/ingest/schema_changes.py,
-- bad_files.py), one row per (task try, stream, kind, column | file), written by the sync task's
-- metrics callback (include/pipeline/observe/ingest_problems.py). A run that keeps going records
-- them here and alerts; one that stops (disable_connection, on_bad_file: fail) records them too.
-- V005: V004 is left to the quarantine figures built beside this change.

create table if not exists metrics.schema_changes (
    dag_id      text not null,
    run_id      text not null,
    task_id     text not null,
    try_number  integer not null,
    connection  text,
    stream      text not null,
    change      text not null,  -- new_column | type_change | removed_column
    column_name text not null,
    detail      text,           -- e.g. "declared integer, sent string"
    policy      text,           -- the connection's non_breaking_schema_updates_behavior
    action      text,           -- column_added | ignored | recorded | sync_stopped
    records     bigint,         -- records that showed it (type changes), when counted
    recorded_at timestamptz not null default now(),
    primary key (dag_id, run_id, task_id, try_number, stream, change, column_name)
);

create table if not exists metrics.bad_files (
    dag_id       text not null,
    run_id       text not null,
    task_id      text not null,
    try_number   integer not null,
    connection   text,
    stream       text not null,
    file         text not null,  -- the object key in the source's bucket
    line         bigint,         -- where reading broke off, when known
    error        text,
    found_by     text,           -- connector (its ERROR log) | runner (the file read again)
    records_read bigint,         -- records the connector sent from it before the break
    policy       text,           -- the connection's on_bad_file
    action       text,           -- sync_failed | file_skipped
    recorded_at  timestamptz not null default now(),
    primary key (dag_id, run_id, task_id, try_number, stream, file)
);
