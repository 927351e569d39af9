-- title: Task duration p50 / p95, last 30 days (s): a dbt task's time is mostly its wait for the dbt producer
-- panel: table
with own_dbt_time as (
    -- what dbt itself spent on the task's nodes (run_results), per try
    select
        dag_id,
        run_id,
        task_id,
        try_number,
        sum(execution_time_seconds) as seconds
    from metrics.dbt_nodes
    group by dag_id, run_id, task_id, try_number
)

select
    t.task_id,
    case
        when bool_or(t.operator ilike '%producer%') then 'runs dbt build (every model and test)'
        when count(o.seconds) > 0 then 'waits for the dbt producer, then reports its nodes'
        else 'the task itself'
    end as what_it_times,
    count(*) as tries,
    round(percentile_cont(0.5) within group (order by t.duration_seconds)::numeric, 2) as p50_seconds,
    round(percentile_cont(0.95) within group (order by t.duration_seconds)::numeric, 2) as p95_seconds,
    round(percentile_cont(0.5) within group (order by o.seconds)::numeric, 2) as dbt_own_p50_seconds
from metrics.task_runs as t
left join own_dbt_time as o using (dag_id, run_id, task_id, try_number)
where t.duration_seconds is not null
    and coalesce(t.end_date, t.updated_at) > now() - interval '30 days'
group by t.task_id
order by p95_seconds desc, t.task_id
