-- One row per published lake partition (include/pipeline/publish): the mart's ds partition as its
-- manifest committed it. A rerun of the same ds replaces the row (the partition was replaced).
create table if not exists metrics.lake_partitions (
    mart               text not null,
    ds                 date not null,
    dag_id             text,
    run_id             text,
    rows               bigint not null,
    bytes              bigint not null,
    objects            integer not null,
    committed_at       timestamptz not null,
    dbt_invocation_id  text,
    updated_at         timestamptz not null default now(),
    primary key (mart, ds)
);
