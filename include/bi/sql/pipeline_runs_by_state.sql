-- the rows of the chart "DAG runs by state" (include/bi/assets/charts/pipeline_runs_by_state.yaml)
select dag_id, state, count(*) as runs, avg(duration_seconds) as mean_duration_seconds
from metrics.dag_runs
group by dag_id, state
