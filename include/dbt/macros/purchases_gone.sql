{#-
    SQL: the purchases int_purchase_changes (`changes`) lists as they were before the build
    (state 'before') and not after it: their key left staging (its newest extraction went to the
    quarantine), so a full build would leave them out, and the pre-hooks of int_purchases_enriched
    and orders delete them. A listed purchase still staged has its 'after' row (int_purchase_changes
    reads it from staging), so the work table answers alone: at 10M orders, looking each of a day's
    ~400,000 'before' keys up in staging or int_purchases_enriched took 5-8 s a model.
-#}
{% macro purchases_gone(changes) -%}
    select gone.purchase_id from {{ changes }} as gone
    where gone.state = 'before' and not exists (
        select from {{ changes }} as kept
        where kept.state = 'after' and kept.purchase_id = gone.purchase_id
    )
{%- endmacro %}
