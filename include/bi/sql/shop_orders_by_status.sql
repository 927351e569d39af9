-- the rows of the chart "Orders by status" (include/bi/assets/charts/shop_orders_by_status.yaml)
select order_status, count(*) as orders
from marts.orders
group by order_status
