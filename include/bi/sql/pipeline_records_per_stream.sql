-- the rows of the chart "Records synced per stream" (include/bi/assets/charts/pipeline_records_per_stream.yaml)
select connection, stream, sum(records) as records, count(*) as syncs
from metrics.syncs
group by connection, stream
