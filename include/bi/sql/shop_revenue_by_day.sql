-- the rows of the chart "Revenue by day" (include/bi/assets/charts/shop_revenue_by_day.yaml)
select order_date, sum(net_revenue) as net_revenue, sum(gross_revenue) as gross_revenue
from marts.daily_revenue
group by order_date
