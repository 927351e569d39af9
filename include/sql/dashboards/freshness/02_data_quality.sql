-- title: Data quality of the latest run: failed dbt tests, quarantined rows
-- panel: barchart
-- empty: no failed dbt test and no quarantined row in the latest run
with latest as (
    select dag_id, run_id
    from metrics.data_quality
    order by recorded_at desc
    limit 1
)
select
    check_name,
    count(*) filter (where value > 0) as subjects_with_issues,
    sum(value) as total
from metrics.data_quality
join latest using (dag_id, run_id)
group by check_name
having sum(value) > 0
order by check_name
