{#-
    A snapshot's daily merge compares only the keys its select returns (issue 27).

    dbt's snapshot_staging_table joins the select with every current row of the snapshot
    (`snapshotted_data`: a CTE read twice, so Postgres materializes all of it: 1.1M customers
    copied and hashed for a day's 22k). With hard deletes ignored (dbt's default, and this
    project's), a current row whose key the select does not return yields no insert and no
    update, so narrowing the rows dbt reads to the select's keys changes nothing in the result;
    the customer_id index answers it. Other hard_deletes modes (which look for missing keys) read
    every current row, as dbt does. Dispatched by dbt (`adapter.dispatch('snapshot_staging_table',
    'dbt')`): the project's postgres__ version comes before dbt's default__ one.
-#}
{% macro postgres__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {%- if strategy.hard_deletes in (none, '', 'ignore') -%}
        {%- set keys = strategy.unique_key if strategy.unique_key is not string else [strategy.unique_key] -%}
        {%- set narrowed -%}
            (
                select * from {{ target_relation }}
                where ({{ keys | join(', ') }}) in (
                    select {{ keys | join(', ') }} from ({{ source_sql }}
                    ) as snapshot_keys
                )
            ) as snapshotted
        {%- endset -%}
        {{ return(dbt.default__snapshot_staging_table(strategy, source_sql, narrowed)) }}
    {%- endif -%}
    {{ return(dbt.default__snapshot_staging_table(strategy, source_sql, target_relation)) }}
{%- endmacro %}
