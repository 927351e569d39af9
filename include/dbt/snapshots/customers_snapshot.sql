{#-
    The snapshot reads only the customers staged since its last run (`extracted_at` at or after
    the newest it holds: a record landing with that same time stamp is compared again, never
    missed), not every customer: a customer absent from the select keeps its current row (hard
    deletes are ignored), so a day's run compares the day's changed profiles only. Its config,
    columns and tests: customers_snapshot.yml. The newest time is a literal (macro
    newest_extraction), so Postgres reads the day's customers through staging's extracted_at index.
-#}
{% snapshot customers_snapshot %}
    {%- set existing = adapter.get_relation(this.database, this.schema, this.identifier) if execute else none %}
    select * from {{ ref('stg_shop__users') }}  -- noqa: AM04
    {% if existing is not none %}
        where extracted_at >= {{ newest_extraction(this) }}
    {% endif %}
{% endsnapshot %}
