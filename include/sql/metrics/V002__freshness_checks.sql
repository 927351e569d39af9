-- One row per check of the freshness gate (include/pipeline/observe/freshness.py): while the gate
-- waits for raw data, each check adds a row, so the freshness dashboard shows the wait and the lag.
-- metrics.freshness keeps the latest check per (run, table).

create table if not exists metrics.freshness_checks (
    dag_id              text not null,
    run_id              text not null,
    table_name          text not null,
    checked_at          timestamptz not null,
    try_number          integer,
    newest_extracted_at timestamptz,
    lag_seconds         double precision,  -- now - newest extraction (dbt's own measure)
    behind_seconds      double precision,  -- end of the data interval - newest extraction
    max_lag_seconds     double precision,  -- the dbt source's error_after
    synced_this_run     boolean,
    is_stale            boolean,
    primary key (dag_id, run_id, table_name, checked_at)
);
