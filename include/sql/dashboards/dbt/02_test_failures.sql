-- title: dbt tests: failed runs and failing rows, last 30 days
-- panel: table
select
    name as test,
    count(*) filter (where status in ('fail', 'error')) as failed_runs,
    coalesce(max(failures), 0) as max_failing_rows,
    count(*) as runs,
    max(recorded_at) as last_run_at
from metrics.dbt_nodes
where resource_type = 'test'
    and recorded_at > now() - interval '30 days'
group by name
order by failed_runs desc, max_failing_rows desc, test
