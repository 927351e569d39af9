{#-
    Post-hook of every model: on an incremental run, the indexes of the model's `indexes` config
    that its table lacks are created. dbt creates them only with the table (a first build or a
    full refresh), so an index added to the config later (staging's `customer_id` and `email`,
    2026-12) would reach a warehouse built before only at its next full refresh, and until then a
    daily read through it (`= any(array(...))`) would compare every row with every key. Once per
    missing index: the next runs find it (one catalog query per model).
-#}
{% macro create_missing_indexes(relation) -%}
    {%- if execute and is_incremental() -%}
        {%- for index in config.get('indexes', []) -%}
            {%- set columns = index['columns'] | map('lower') | list -%}
            {%- set found -%}
                select count(*)
                from pg_index as i
                where i.indrelid = '{{ relation }}'::regclass
                    and (
                        select array_agg(a.attname::text order by k.position)
                        from unnest(i.indkey) with ordinality as k (attnum, position)
                        inner join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
                    ) = array[{% for c in columns %}'{{ c }}'{% if not loop.last %}, {% endif %}{% endfor %}]::text[]
                    {%- if index.get('unique') %} and i.indisunique{% endif %}
            {%- endset -%}
            {%- if run_query(found).columns[0].values()[0] == 0 -%}
                {{ log('creating the index on ' ~ relation ~ ' (' ~ columns | join(', ') ~ ') its config declares', info=true) }}
                {{ get_create_index_sql(relation, index) }};
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
