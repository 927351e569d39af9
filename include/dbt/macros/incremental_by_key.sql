{#-
    Incremental strategy `by_key` (config `incremental_strategy='by_key'`): the rows of the keys
    the increment holds are deleted, then the increment inserted, as dbt's `merge` gives when the
    increment holds each key once (a unique index on the key keeps it so). The delete reads the
    table through the key's index, one probe per key (`= any(array(...))`: Postgres estimates a
    few values); dbt's `merge` (and `delete+insert`) joins the increment with the table, and
    Postgres hashes every row of the table for it, for a day's few percent. A compound key is
    left to dbt's merge.
-#}
{% macro get_incremental_by_key_sql(arg_dict) -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- if key is not string -%}
        {{ return(get_incremental_merge_sql(arg_dict)) }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }}
    where {{ key }} = any(array(select {{ key }} from {{ arg_dict['temp_relation'] }}));
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
