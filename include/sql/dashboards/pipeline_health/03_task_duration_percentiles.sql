-- title: Task duration p50 / p95, last 30 days (s)
-- panel: table
select
    task_id,
    count(*) as tries,
    round(percentile_cont(0.5) within group (order by duration_seconds)::numeric, 2) as p50_seconds,
    round(percentile_cont(0.95) within group (order by duration_seconds)::numeric, 2) as p95_seconds
from metrics.task_runs
where duration_seconds is not null
    and coalesce(end_date, updated_at) > now() - interval '30 days'
group by task_id
order by p95_seconds desc, task_id
