-- the rows of the chart "Top 10 products by net revenue" (include/bi/assets/charts/shop_top_products.yaml)
select make, product_id, sum(net_revenue) as net_revenue
from marts.products
group by make, product_id
order by net_revenue desc
limit 10
