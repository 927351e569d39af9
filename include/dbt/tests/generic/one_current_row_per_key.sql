{#- A snapshot's key with more than one current version (dbt_valid_to is null). -#}
{% test one_current_row_per_key(model, column_name) %}

select
    {{ column_name }},
    count(*) as current_rows
from {{ model }}
where dbt_valid_to is null
group by {{ column_name }}
having count(*) > 1

{% endtest %}
