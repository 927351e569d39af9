-- title: Records synced per stream per day
-- panel: timeseries
-- series: stream
select
    date_trunc('day', recorded_at) as time,
    connection || '.' || stream as stream,
    sum(records) as records
from metrics.syncs
where status = 'succeeded'
group by 1, 2
order by 1, 2
