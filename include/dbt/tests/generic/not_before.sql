{#- Rows where this timestamp is earlier than `other_column` (e.g. a purchase before its cart). -#}
{% test not_before(model, column_name, other_column) %}

select
    {{ column_name }},
    {{ other_column }}
from {{ model }}
where {{ column_name }} < {{ other_column }}

{% endtest %}
