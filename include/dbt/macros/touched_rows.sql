{#-
    What a daily build tests: the rows it wrote, not whole tables (issue 27; docs/transform.md).

    dbt reads the model of every generic test through `get_where_subquery` (its `where` config).
    This override adds, in a daily `dbt build` only, a filter to the rows the build wrote or whose
    meaning it could change. Which rows: macro touched_scope. Each kind of test keeps its meaning:
    - a test of one row at a time (not_null, accepted_values, accepted_range, not_before): the
      build's rows; the others were tested when they were written and have not changed since;
    - `unique` (one_current_row_per_key, unique_combination_of_columns): every row, in the whole
      table, whose value one of the build's rows holds: a duplicate needs at least one row the
      build wrote, so a duplicate of an old row by a new one fails as before;
    - `relationships`: the child rows whose parent key the build touched (int_purchase_changes
      lists a parent that left for the quarantine too), checked against the whole parent; in
      staging (tested before int_purchase_changes is built) the rows written since: the orphans
      of a parent quarantined by this build are read by the marts' relationships tests;
    - any other test, and every test of a model touched_keys does not list (the small ones:
      products, the daily and cohort aggregates, the quarantine, the work table), reads it whole;
    - a source's one-row tests (not_null on raw's keys) read the records landed since the newest
      extraction the last build holds, as staging does.
    A first build, `--full-refresh`, a plain `dbt test` and `dbt run` read whole tables.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set touched = touched_rows(relation) -%}
    {%- set conditions = [] -%}
    {%- if where %}{% do conditions.append('(' ~ where ~ ')') %}{% endif -%}
    {%- if touched %}{% do conditions.append('(' ~ touched ~ ')') %}{% endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}


{#- The models whose daily tests read the touched rows only: {model: {column: the column of
    int_purchase_changes holding its touched values}}, the model's own key first; `since`: the
    model is built before int_purchase_changes (staging, the snapshot) and has `extracted_at`
    (`extracted`: the column's name, when it is another); `indexed`: other columns with an index
    of their own (a `unique` test on one reads it through the index, macro among). A source is
    listed as `source <source>.<table>`: the raw tables, whose one-row tests read the records
    landed since (a daily build's staging reads no others). -#}
{% macro touched_keys() -%}
    {%- set purchase = {'purchase_id': 'purchase_id', 'customer_id': 'customer_id', 'product_id': 'product_id'} -%}
    {%- set raw = {'keys': {}, 'since': true, 'extracted': '_airbyte_extracted_at'} -%}
    {%- do return({
        'source shop.users': raw,
        'source shop.purchases': raw,
        'source shop.products': raw,
        'stg_shop__users': {'keys': {'customer_id': 'customer_id'}, 'since': true, 'indexed': ['email']},
        'stg_shop__purchases': {'keys': purchase, 'since': true},
        'customers_snapshot': {'keys': {'customer_id': 'customer_id'}, 'since': true, 'indexed': ['dbt_scd_id']},
        'int_purchases_enriched': {'keys': purchase, 'since': false},
        'orders': {'keys': {'order_id': 'purchase_id', 'customer_id': 'customer_id', 'product_id': 'product_id'}, 'since': false},
        'customers': {'keys': {'customer_id': 'customer_id'}, 'since': false},
    }) -%}
{%- endmacro %}


{#- SQL: the filter the generic test being compiled reads `relation` through, or '' (whole). -#}
{% macro touched_rows(relation) -%}
    {%- set entry = touched_keys().get(tested_node_name(relation)) if execute else none -%}
    {%- if entry is none or flags.WHICH != 'build' or flags.FULL_REFRESH -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set scope = touched_scope(entry) -%}
    {%- if scope is none -%}{%- do return('') -%}{%- endif -%}
    {%- set test = model.get('test_metadata') or {} -%}
    {%- set name = test.get('name') -%}
    {%- set kwargs = test.get('kwargs') or {} -%}
    {%- set column = kwargs.get('column_name') -%}
    {%- if not entry['keys'] -%}
        {#- a source: its one-row tests read the records landed since; a build that has already
            built int_purchase_changes (a retried test) and every other test read it whole -#}
        {%- if scope['changes'] is none and name in ('not_null', 'accepted_values', 'accepted_range') -%}
            {%- do return(entry['extracted'] ~ ' >= ' ~ scope['since']) -%}
        {%- endif -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- set key = (entry['keys'] | list)[0] -%}
    {%- if scope['changes'] is not none -%}
        {%- set own_rows = among([key], touched_values(scope['changes'], entry['keys'][key])) -%}
    {%- else -%}
        {%- set own_rows = entry.get('extracted', 'extracted_at') ~ ' >= ' ~ scope['since'] -%}
    {%- endif -%}
    {%- if name in ('not_null', 'accepted_values', 'accepted_range', 'not_before') -%}
        {%- do return(own_rows) -%}
    {%- elif name in ('unique', 'one_current_row_per_key', 'unique_combination_of_columns') -%}
        {%- set columns = kwargs.get('combination') or [column] -%}
        {%- if columns == [key] and scope['changes'] is not none -%}
            {%- do return(own_rows) -%}
        {%- endif -%}
        {%- set query = 'select ' ~ columns | join(', ') ~ ' from ' ~ relation ~ ' where ' ~ own_rows -%}
        {%- set indexed = [key] + entry.get('indexed', []) -%}
        {%- if columns | length == 1 and columns[0] in indexed -%}
            {%- do return(among(columns, query)) -%}
        {%- endif -%}
        {%- do return('(' ~ columns | join(', ') ~ ') in (' ~ query ~ ')') -%}
    {%- elif name == 'relationships' and scope['changes'] is not none and column in entry['keys'] -%}
        {#- a semi-join Postgres sizes from int_purchase_changes' statistics: at 10M (700,000
            orders a day) hashing both tables beats the 700,000 probes of the build's own rows
            through the keys' indexes (14.5 s), which it chose from `= any(array(...))`'s guess -#}
        {%- do return(column ~ ' in (' ~ touched_values(scope['changes'], entry['keys'][column]) ~ ')') -%}
    {%- elif name == 'relationships' and scope['changes'] is none -%}
        {#- staging, before int_purchase_changes: the rows written since. A parent this build moved
            to the quarantine is a touched key of int_purchase_changes: the marts' relationships
            test (orders -> customers, products) reads its orphans -#}
        {%- do return(own_rows) -%}
    {%- else -%}
        {%- do return('') -%}
    {%- endif -%}
{%- endmacro %}


{#- SQL: the rows whose key (`columns`: the model's own key, first in touched_keys, which every
    model listed there indexes) holds a row of `query`: `= any(array(...))`, which Postgres
    estimates as a few values and reads through the key's index, one probe per value (a semi-join
    `in (select ...)` is estimated from the whole work table and hashes a scan of every row of the
    model: 0.3-0.5 s a test at 1.1M rows, for a day's 2%). Never on a column without an index:
    a scan then compares every row with the whole array (1.1M rows x 22k e-mails: minutes). -#}
{% macro among(columns, query) -%}
    {{ columns[0] }} = any(array({{ query }}))
{%- endmacro %}


{#- The name touched_keys lists the relation a generic test reads under: `source <source>.<table>`
    for a source (the test's node depends on it), else the relation's identifier. -#}
{% macro tested_node_name(relation) -%}
    {%- for node in model.depends_on.nodes if node.startswith('source.') -%}
        {%- set source = graph.sources.get(node) -%}
        {%- if source and source.identifier == relation.identifier and source.schema == relation.schema -%}
            {%- do return('source ' ~ source.source_name ~ '.' ~ source.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do return(relation.identifier) -%}
{%- endmacro %}


{#- SQL: the non-null values of `column` in int_purchase_changes (`changes`). -#}
{% macro touched_values(changes, column) -%}
    select distinct {{ column }} from {{ changes }} where {{ column }} is not null
{%- endmacro %}


{#- Which rows of a model (an entry of touched_keys) this build touched, or none (test it whole):
    - {'changes': int_purchase_changes} once this dbt invocation built int_purchase_changes as an
      increment (its comment, macro purchase_changes_mark): the keys it lists;
    - {'since': SQL} for a model built before it (`since` in touched_keys), when
      int_purchases_enriched is still the last build's: the rows extracted at or after the newest
      extraction it holds, the time int_purchase_changes reads changes from (`>=`: as staging,
      the records re-read at that time stamp are included). -#}
{% macro touched_scope(entry) -%}
    {%- set changes = node_relation('int_purchase_changes') -%}
    {%- set enriched = node_relation('int_purchases_enriched') -%}
    {%- if changes is none or enriched is none -%}{%- do return(none) -%}{%- endif -%}
    {%- set mark = run_query("select obj_description('" ~ changes ~ "'::regclass, 'pg_class')").columns[0].values()[0] -%}
    {%- if mark == 'increment of dbt invocation ' ~ invocation_id -%}
        {%- do return({'changes': changes}) -%}
    {%- elif entry['since'] and not (mark or '').endswith(' of dbt invocation ' ~ invocation_id) -%}
        {#- a literal, not a subquery: Postgres then estimates the few rows at or after it from the
            extracted_at index, and reads them through it, instead of guessing a third of the table -#}
        {%- set since = run_query(
            "select coalesce(max(extracted_at), '-infinity'::timestamp)::text from " ~ enriched
        ).columns[0].values()[0] -%}
        {%- do return({'changes': none, 'since': "'" ~ since ~ "'::timestamp"}) -%}
    {%- else -%}
        {%- do return(none) -%}
    {%- endif -%}
{%- endmacro %}


{#- The relation of the project's model `name` as it is in the database, or none. -#}
{% macro node_relation(name) -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ name) if execute else none -%}
    {%- if node is none -%}{%- do return(none) -%}{%- endif -%}
    {%- do return(adapter.get_relation(node.database, node.schema, node.alias)) -%}
{%- endmacro %}


{#- int_purchase_changes' post-hook: its comment says whether this build computed an increment
    (int_purchases_enriched was there to compare with, and no --full-refresh) or rebuilds
    everything, and which dbt invocation built it (macro touched_scope reads it). -#}
{% macro purchase_changes_mark() -%}
    {%- set kind = 'increment' if node_relation('int_purchases_enriched') is not none and not flags.FULL_REFRESH else 'whole build' -%}
    comment on table {{ this }} is '{{ kind }} of dbt invocation {{ invocation_id }}'
{%- endmacro %}
