-- title: DAG run duration per day, p50 / p95 (s)
-- panel: timeseries
-- unit: s
select
    date_trunc('day', coalesce(end_date, updated_at)) as time,
    percentile_cont(0.5) within group (order by duration_seconds) as p50_seconds,
    percentile_cont(0.95) within group (order by duration_seconds) as p95_seconds
from metrics.dag_runs
where duration_seconds is not null
group by 1
order by 1
