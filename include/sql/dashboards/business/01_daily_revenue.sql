-- title: Daily net revenue (marts.daily_revenue)
-- panel: timeseries
select
    order_date::timestamptz as time,
    net_revenue,
    gross_revenue
from marts.daily_revenue
order by order_date
