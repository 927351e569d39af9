-- title: Totals: revenue, orders, returns
-- panel: stat
select
    sum(net_revenue) as net_revenue,
    sum(order_count) as orders,
    sum(return_count) as returns,
    round(100.0 * sum(return_count) / nullif(sum(order_count), 0), 1) as return_rate_pct
from marts.daily_revenue
