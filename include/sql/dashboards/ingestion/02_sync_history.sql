-- title: Last syncs
-- panel: table
select
    recorded_at,
    connection,
    stream,
    engine,
    job_id,
    attempts,
    records,
    bytes,
    rows_in_table,
    rows_in_table - lag(rows_in_table) over (partition by connection, stream order by recorded_at) as rows_delta,
    round(duration_seconds::numeric, 1) as duration_seconds,
    status
from metrics.syncs
order by recorded_at desc
limit 50
