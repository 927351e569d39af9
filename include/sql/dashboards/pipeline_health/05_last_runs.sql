-- title: Last DAG runs
-- panel: table
select
    dag_id,
    run_id,
    logical_date,
    state,
    start_date,
    end_date,
    round(duration_seconds::numeric, 1) as duration_seconds,
    tasks_total,
    tasks_failed
from metrics.dag_runs
order by coalesce(end_date, updated_at) desc
limit 20
