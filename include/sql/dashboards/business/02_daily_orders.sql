-- title: Orders and returns per day (marts.daily_revenue)
-- panel: timeseries
select
    order_date::timestamptz as time,
    order_count,
    return_count
from marts.daily_revenue
order by order_date
