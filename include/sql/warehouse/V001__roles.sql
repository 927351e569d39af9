-- One login role per job, each owning only what its job writes (issue 11, least privilege).
-- Applied once per database, as the superuser, by include/pipeline/services/warehouse.py (recorded
-- in public.warehouse_migrations). Passwords are set by that module from .env, never here.
--
--   warehouse_ingest     owns and writes raw and airbyte_internal (Airbyte's Destinations-V2 loader)
--   warehouse_transform  reads raw; owns staging, intermediate, marts, snapshots, analytics (dbt)
--   warehouse_metrics    owns metrics (include/sql/metrics)
--   warehouse_reader     reads marts and metrics (Grafana, the Streamlit dashboard), nothing else

-- Roles belong to the whole server: create the missing ones (another database may have made them).
do $$
declare
    name text;
begin
    foreach name in array array['warehouse_ingest', 'warehouse_transform', 'warehouse_metrics', 'warehouse_reader']
    loop
        if not exists (select 1 from pg_roles where rolname = name) then
            execute format(
                'create role %I login nosuperuser nocreatedb nocreaterole noinherit noreplication nobypassrls', name
            );
        end if;
    end loop;
end
$$;

-- The database: every role may connect. No role may create schemas here (no CREATE on the
-- database); temporary tables only for the writers (dbt's incremental merges use them).
do $$
begin
    execute format(
        'grant connect on database %I to warehouse_ingest, warehouse_transform, warehouse_metrics, warehouse_reader',
        current_database()
    );
    execute format('revoke temporary on database %I from public', current_database());
    execute format('grant temporary on database %I to warehouse_ingest, warehouse_transform', current_database());
end
$$;

-- Servers older than Postgres 15 let everyone create in schema public.
revoke create on schema public from public;

-- Each job's schemas, created if missing and given to their role together with everything already
-- in them: a database made before this migration (everything owned by the superuser) is upgraded.
do $$
declare
    target record;
    relation record;
begin
    for target in
        select * from (values
            ('raw', 'warehouse_ingest'),
            ('airbyte_internal', 'warehouse_ingest'),
            ('staging', 'warehouse_transform'),
            ('intermediate', 'warehouse_transform'),
            ('marts', 'warehouse_transform'),
            ('snapshots', 'warehouse_transform'),
            ('analytics', 'warehouse_transform'),
            ('metrics', 'warehouse_metrics')
        ) as t (schema_name, owner)
    loop
        execute format('create schema if not exists %I', target.schema_name);
        execute format('alter schema %I owner to %I', target.schema_name, target.owner);
        for relation in
            select c.relname, c.relkind
            from pg_class as c
            join pg_namespace as n on n.oid = c.relnamespace
            where n.nspname = target.schema_name
                and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
                -- a serial or identity sequence follows its table
                and not exists (
                    select 1 from pg_depend as d
                    where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')
                )
        loop
            execute format(
                'alter %s %I.%I owner to %I',
                case relation.relkind
                    when 'v' then 'view'
                    when 'm' then 'materialized view'
                    when 'f' then 'foreign table'
                    when 'S' then 'sequence'
                    else 'table'
                end,
                target.schema_name, relation.relname, target.owner
            );
        end loop;
    end loop;
end
$$;

-- transform reads raw: the tables there now, and every table ingest creates later.
grant usage on schema raw to warehouse_transform;
grant select on all tables in schema raw to warehouse_transform;
alter default privileges for role warehouse_ingest in schema raw grant select on tables to warehouse_transform;

-- reader reads marts and metrics: the tables there now, and those their owners create later.
grant usage on schema marts, metrics to warehouse_reader;
grant select on all tables in schema marts, metrics to warehouse_reader;
alter default privileges for role warehouse_transform in schema marts grant select on tables to warehouse_reader;
alter default privileges for role warehouse_metrics in schema metrics grant select on tables to warehouse_reader;
