-- the rows of the chart "dbt nodes: own execution time" (include/bi/assets/charts/pipeline_dbt_nodes.yaml)
select resource_type, name, avg(execution_time_seconds) as mean_seconds, count(*) as runs
from metrics.dbt_nodes
group by resource_type, name
