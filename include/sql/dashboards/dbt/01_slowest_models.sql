-- title: Slowest dbt models, last 30 days: dbt's own execution time per model (s), no waiting
-- panel: barchart
select
    name as model,
    round(avg(execution_time_seconds)::numeric, 2) as avg_seconds,
    round(max(execution_time_seconds)::numeric, 2) as max_seconds
from metrics.dbt_nodes
where resource_type in ('model', 'snapshot', 'seed')
    and recorded_at > now() - interval '30 days'
group by name
order by avg_seconds desc, model
limit 10
