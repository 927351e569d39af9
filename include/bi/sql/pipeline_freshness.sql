-- the rows of the chart "Freshness checks per raw table" (include/bi/assets/charts/pipeline_freshness.yaml)
select table_name, max(checked_at) as last_checked_at, min(lag_seconds) as min_lag_seconds,
    sum(case when is_stale then 1 else 0 end) as stale_checks
from metrics.freshness
group by table_name
