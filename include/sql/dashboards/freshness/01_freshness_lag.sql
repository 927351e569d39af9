-- title: Freshness: newest _airbyte_extracted_at per raw table (latest check)
-- panel: table
select distinct on (table_name)
    table_name,
    newest_extracted_at,
    round((lag_seconds / 3600)::numeric, 2) as lag_hours,
    row_count,
    is_stale,
    checked_at
from metrics.freshness
order by table_name, checked_at desc
