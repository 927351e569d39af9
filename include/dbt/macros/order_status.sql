{#-
    The status of a purchase from its three timestamps, latest step first. A return counts only
    after a purchase: a return time on an unpaid cart is inconsistent and ignored.
-#}
{% macro order_status(added_to_cart_at, purchased_at, returned_at) -%}
    case
        when {{ purchased_at }} is not null and {{ returned_at }} is not null then 'returned'
        when {{ purchased_at }} is not null then 'purchased'
        when {{ added_to_cart_at }} is not null then 'in_cart'
        else 'created'
    end
{%- endmacro %}
