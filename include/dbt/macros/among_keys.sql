{#- SQL: `column` holds a value of `query`. On an increment (`enriched`: the
    relation int_purchases_enriched, there), through the
    column's index, one probe per value (`= any(array(...))`: Postgres estimates a few
    values; a semi-join would hash a scan of every row for a day's few percent); on a first build
    every key is listed, and a semi-join reads them best. -#}
{% macro among_keys(column, query, enriched) -%}
    {%- if enriched is none -%}
        {{ column }} in ({{ query }})
    {%- else -%}
        {{ column }} = any(array({{ query }}))
    {%- endif -%}
{%- endmacro %}
