-- title: Failed tries by task, last 30 days
-- panel: barchart
-- empty: no failed tries in 30 days
select
    task_id,
    count(*) filter (where state in ('failed', 'up_for_retry', 'upstream_failed')) as failed_tries,
    count(*) as tries
from metrics.task_runs
where coalesce(end_date, updated_at) > now() - interval '30 days'
group by task_id
having count(*) filter (where state in ('failed', 'up_for_retry', 'upstream_failed')) > 0
order by failed_tries desc, task_id
