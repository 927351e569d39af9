-- title: Freshness gate: every check of the latest gated run (a wait shows as several checks)
-- panel: table
with latest as (
    select dag_id, run_id
    from metrics.freshness_checks
    order by checked_at desc
    limit 1
)
select
    checked_at,
    table_name,
    round((behind_seconds / 3600)::numeric, 2) as hours_behind_interval_end,
    round((lag_seconds / 3600)::numeric, 2) as lag_hours,
    round((max_lag_seconds / 3600)::numeric, 2) as limit_hours,
    synced_this_run,
    is_stale
from metrics.freshness_checks
join latest using (dag_id, run_id)
order by checked_at desc, table_name
