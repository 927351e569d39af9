-- title: Lake: published mart partitions (committed by their manifest)
-- panel: table
select
    mart,
    ds,
    rows,
    bytes,
    objects,
    committed_at,
    run_id
from metrics.lake_partitions
order by committed_at desc, mart
limit 50
