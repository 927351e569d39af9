-- title: DAG run success rate, last 30 days (%)
-- panel: stat
-- unit: percent
select
    round(100.0 * count(*) filter (where state = 'success') / nullif(count(*), 0), 1) as success_rate_pct,
    count(*) as finished_runs
from metrics.dag_runs
where state in ('success', 'failed')
    and coalesce(end_date, updated_at) > now() - interval '30 days'
