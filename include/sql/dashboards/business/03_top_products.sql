-- title: Top 10 products by net revenue (marts.products)
-- panel: barchart
select
    make || ' #' || product_id as product,
    net_revenue,
    units_sold
from marts.products
order by net_revenue desc, product_id
limit 10
