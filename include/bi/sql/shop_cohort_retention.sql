-- the rows of the chart "Cohort retention (share of a cohort active N months after its first order)" (include/bi/assets/charts/shop_cohort_retention.yaml)
select cohort_month, months_since_first_order, max(retention_rate) as retention_rate, max(cohort_size) as cohort_size
from marts.monthly_cohort_retention
group by cohort_month, months_since_first_order
