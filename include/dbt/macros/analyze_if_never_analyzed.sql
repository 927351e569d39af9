{#- SQL: `analyze` the relation when Postgres holds no statistics of it yet (a table just
    created), else nothing to do. For a snapshot, which has no is_incremental(): its first build
    creates the table, a day's merge adds a few percent of rows to it. -#}
{% macro analyze_if_never_analyzed(relation) -%}
    {%- if execute -%}
        {%- set analyzed = run_query(
            "select exists (select from pg_stats where schemaname = '" ~ relation.schema
            ~ "' and tablename = '" ~ relation.identifier ~ "')"
        ).columns[0].values()[0] -%}
        {%- if not analyzed -%}
            analyze {{ relation }}
        {%- else -%}
            select 'statistics held: analyze left to autovacuum'
        {%- endif -%}
    {%- else -%}
        analyze {{ relation }}
    {%- endif -%}
{%- endmacro %}
