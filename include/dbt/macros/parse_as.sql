{#-
    Typed casts that never stop the line. Raw columns the loader cannot check (times, and any
    number, boolean or date a source sends as a string) are parsed in staging with
    `parse_as(column, type)`: null when the value does not parse, instead of an error that fails
    the model, the run and every later run (the record stays in raw).

    A value that does not parse is not dropped silently: the source's yml declares each such
    column (`config: {meta: {parse_as: <type>}}` on the source table's column), so
    `latest_extraction` flags the record `unparseable_value` (it leaves staging) and the source's
    quarantine model lists it with the column and the value. `parse_as` checks that declaration
    when the model compiles: a cast the quarantine would not see fails the build, naming the fix.
    (Not named `safe_cast`: that is dbt's own macro, which unit-test fixtures call.)

    Times: ISO-8601 only (`2026-01-09`, `2026-01-09T10:00:00`, `...10:00:00.5+02:00`, `...Z`). A
    `timestamptz` is the instant: an offset is honoured (10:00+02:00 is 08:00 UTC), a time without
    one is taken as UTC, whatever the session's time zone. A `timestamp` is that instant's UTC wall
    time. Words Postgres would take (`now`, `today`, `epoch`) do not parse: no cast depends on when
    it runs.

    Each cast is a small function (`try_cast_<type>(text)`, in the staging schema), made by
    `create_parse_functions` (on-run-start): a value parses exactly as Postgres parses it
    (`pg_input_is_valid` on Postgres 16+, a PL/pgSQL function catching the cast's error before).
-#}

{#- {type: regex a value must match first, or none}: the types parse_as takes. A time starts with an
    ISO date; the rest is what Postgres takes (`T` or a space, a time, `Z`, `+02:00`, a zone name). -#}
{% macro parse_types() -%}
    {%- set iso_date = '^\\s*\\d{4}-\\d{2}-\\d{2}' -%}
    {%- set integer = '^\\s*[+-]?\\d+\\s*$' -%}
    {%- set number = '^\\s*[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?\\s*$' -%}
    {{ return({
        'timestamptz': iso_date,
        'timestamp': iso_date,
        'date': iso_date ~ '\\s*$',
        'numeric': number,
        'bigint': integer,
        'integer': integer,
        'smallint': integer,
        'double precision': number,
        'real': number,
        'boolean': none,
        'uuid': none,
        'jsonb': none,
    }) }}
{%- endmacro %}


{#- A type as parse_types names it, and its (precision, scale) for numeric(p, s). -#}
{% macro parse_base_type(data_type) -%}
    {%- set t = data_type | lower | trim -%}
    {%- set aliases = {
        'timestamp with time zone': 'timestamptz', 'timestamp without time zone': 'timestamp',
        'int8': 'bigint', 'int': 'integer', 'int4': 'integer', 'int2': 'smallint', 'decimal': 'numeric',
        'float8': 'double precision', 'float': 'double precision', 'float4': 'real', 'bool': 'boolean',
    } -%}
    {%- set base = t.split('(')[0] | trim -%}
    {%- set base = aliases.get(base, base) -%}
    {%- if base not in parse_types() -%}
        {{ exceptions.raise_compiler_error(
            "parse_as: type '" ~ data_type ~ "' is not one it parses; use one of: "
            ~ (parse_types().keys() | join(', ')) ~ " (numeric may take (precision, scale))"
        ) }}
    {%- endif -%}
    {%- set params = t.split('(')[1].rstrip(')').split(',') if '(' in t else [] -%}
    {{ return([base, params | map('trim') | map('int') | list]) }}
{%- endmacro %}


{#- The schema that holds the try_cast_<type> functions (the staging schema). -#}
{% macro parse_schema() -%}
    {{ return(generate_schema_name('staging', none)) }}
{%- endmacro %}


{#- `column` (a raw column, as SQL) parsed as `data_type`, or null when it does not parse. -#}
{% macro parse_expression(column, data_type) -%}
    {%- set base, params = parse_base_type(data_type) -%}
    {%- set parsed -%}
        {{ adapter.quote(parse_schema()) }}.try_cast_{{ base | replace(' ', '_') }}(({{ column }})::text)
    {%- endset -%}
    {%- if base == 'numeric' and params | length == 2 -%}
        {#- numeric(p, s) holds less than 10^(p - s) once rounded: anything larger does not parse -#}
        (case when abs(round({{ parsed }}, {{ params[1] }})) < 1e{{ params[0] - params[1] }}
            then {{ parsed }}::numeric({{ params[0] }}, {{ params[1] }}) end)
    {%- elif base == 'numeric' and params | length == 1 -%}
        (case when abs(round({{ parsed }})) < 1e{{ params[0] }} then {{ parsed }}::numeric({{ params[0] }}) end)
    {%- else -%}
        {{ parsed }}
    {%- endif -%}
{%- endmacro %}


{#-
    In a staging model: the raw `column` of the model's source parsed as `data_type`, null when it
    does not parse (the record is then in the quarantine, not in the model). The source's yml must
    declare the column `parse_as: <data_type>` (checked here, at compile time).
-#}
{% macro parse_as(column, data_type) -%}
    {%- if execute and model is defined and model.sources -%}
        {%- set source_name, table_name = model.sources[0][0], model.sources[0][1] -%}
        {%- set declared = parsed_columns(source(source_name, table_name)) -%}
        {%- set name = column | replace('"', '') -%}
        {%- if (declared.get(name) or '') | replace(' ', '') | lower != data_type | replace(' ', '') | lower -%}
            {{ exceptions.raise_compiler_error(
                model.name ~ ": parse_as('" ~ column ~ "', '" ~ data_type ~ "') needs the column declared in "
                ~ "the source's yml, so a value that does not parse is quarantined, not dropped. Fix: under "
                ~ "source '" ~ source_name ~ "', table '" ~ table_name ~ "', column '" ~ name ~ "': "
                ~ "config: {meta: {parse_as: '" ~ data_type ~ "'}}"
                ~ (" (it says " ~ declared.get(name) ~ ")" if declared.get(name) else "")
            ) }}
        {%- endif -%}
    {%- endif -%}
    {{ parse_expression(adapter.quote(column | replace('"', '')), data_type) }}
{%- endmacro %}


{#- {raw column: type} the source's yml declares `parse_as` for, for the source table `relation`. -#}
{% macro parsed_columns(relation) -%}
    {%- set out = {} -%}
    {%- if execute -%}
        {%- for node in graph.sources.values() -%}
            {%- if node.schema == relation.schema and node.identifier == relation.identifier -%}
                {%- for name, col in node.columns.items() -%}
                    {%- set meta = (col.get('config') or {}).get('meta') or col.get('meta') or {} -%}
                    {%- if meta.get('parse_as') -%}{%- do out.update({name: meta['parse_as']}) -%}{%- endif -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(out) }}
{%- endmacro %}


{#- SQL: the first of `columns` ({column: type}) holding a value that does not parse, as
    `what` = 'name' (the column's name) or 'value' (its raw value); null when all parse. -#}
{% macro unparseable(columns, what='name') -%}
    {%- if columns -%}
        case
            {%- for name, data_type in columns.items() %}
            when {{ adapter.quote(name) }} is not null
                and {{ parse_expression(adapter.quote(name), data_type) }} is null
                then {% if what == 'name' %}'{{ name }}'{% else %}left(({{ adapter.quote(name) }})::text, 500){% endif %}
            {%- endfor %}
        end
    {%- else -%}
        null
    {%- endif -%}
{%- endmacro %}


{#-
    on-run-start: the try_cast_<type>(text) functions, (re)made only when missing or changed.
    Postgres 16+: plain SQL (`pg_input_is_valid`, inlined by the planner: about the cost of a
    bare cast); older servers (compose runs 15): PL/pgSQL catching the cast's error, about 10x
    slower. `--vars '{parse_as_plpgsql: true}'` takes the older path on any server (tests).
-#}
{% macro create_parse_functions() -%}
    {%- set schema = parse_schema() -%}
    {#- a zone past `YYYY-MM-DDT` (`Z`, `+02:00`, `-0530`, `UTC`, `Europe/Paris`; not `PM`): cheaper
        than a full regex, and enough once the value is valid and starts with the ISO date. -#}
    {%- set zoned = "substr(ltrim(v), 12) ~ '[zZ+-]|[a-zA-Z]{3}'" -%}
    do $parse_as$
    begin
        if not exists (select from pg_namespace where nspname = '{{ schema }}') then
            create schema {{ adapter.quote(schema) }};
        end if;
    end
    $parse_as$;
    {%- for base, pattern in parse_types().items() %}
        {%- set name = 'try_cast_' ~ base | replace(' ', '_') %}
        {%- set guard = "v ~ '" ~ pattern ~ "' and " if pattern else "" %}
        {#- Postgres 16+: no offset = UTC, explicitly (the session's time zone plays no part) -#}
        {%- if base == 'timestamptz' %}
            {%- set parsed = "case when " ~ zoned ~ " then v::timestamptz else v::timestamp at time zone 'UTC' end" %}
        {%- elif base == 'timestamp' %}
            {%- set parsed = "case when " ~ zoned ~ " then v::timestamptz at time zone 'UTC' else v::timestamp end" %}
        {%- else %}
            {%- set parsed = 'v::' ~ base %}
        {%- endif %}
        {%- set sql_body = "select case when " ~ guard ~ "pg_input_is_valid(v, '" ~ base ~ "') then " ~ parsed ~ " end" %}
        {#- older servers: the function runs in UTC, so no offset = UTC -#}
        {%- set cast = "v::timestamptz at time zone 'UTC'" if base == 'timestamp' else 'v::' ~ base %}
        {%- set plpgsql_body -%}
            begin
                {%- if pattern %}
                if v !~ '{{ pattern }}' then return null; end if;
                {%- endif %}
                return {{ cast }};
            exception when others then return null;
            end
        {%- endset %}
    do $parse_as$
    declare
        modern boolean := current_setting('server_version_num')::int >= 160000
            and not {{ 'true' if var('parse_as_plpgsql', false) else 'false' }};
        body text := case when modern then $body${{ sql_body }}$body$ else $body${{ plpgsql_body }}$body$ end;
    begin
        if not exists (
            select from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
            where n.nspname = '{{ schema }}' and p.proname = '{{ name }}' and p.prosrc = body
        ) then
            execute format(
                'create or replace function %I.%I(v text) returns {{ base }} language %s stable %s as %L',
                '{{ schema }}', '{{ name }}',
                case when modern then 'sql' else 'plpgsql' end,
                case when modern then '' else 'set timezone to ''UTC''' end,
                body
            );
        end if;
    end
    $parse_as$;
    {%- endfor %}
{%- endmacro %}
