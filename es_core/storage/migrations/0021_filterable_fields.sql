-- Payload fields a collection declares as filterable (es_core/collections/filterable.py): each
-- gets a btree expression index on the heads of its table, built when it is declared, and filters
-- on it get a clause over the same expression (es_core/filters/compiler.py), which the planner
-- answers with the index and estimates from the index's own statistics.
ALTER TABLE collections ADD COLUMN filterable_fields jsonb NOT NULL DEFAULT '[]';

-- The value as a number when it is a JSON number, else NULL: what a numeric range compares.
CREATE FUNCTION es_payload_number(value jsonb) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(value) = 'number' THEN value::numeric END $$;

-- The value as text when it is a JSON string, else NULL: what a string range or term compares.
CREATE FUNCTION es_payload_keyword(value jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(value) = 'string' THEN value #>> '{}' END $$;
