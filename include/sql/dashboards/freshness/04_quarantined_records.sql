-- title: Quarantined records after the latest dbt build, by source.stream, problem and column
-- panel: table
with latest as (
    select dag_id, run_id
    from metrics.data_quality
    where check_name = 'quarantined_records'
    order by recorded_at desc
    limit 1
)
select
    subject as stream_problem,
    value as records,
    recorded_at
from metrics.data_quality
join latest using (dag_id, run_id)
where check_name = 'quarantined_records'
order by value desc, subject
