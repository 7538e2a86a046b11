-- Term filters read as containment of the head's payload (payload @> '{"field": value}'), which
-- a GIN index answers with a bitmap scan: a selective filter no longer reads every head.
-- New collection tables have the index from the start (es_core/storage/catalog.py); the heads
-- alone hold payloads, so the index covers them alone. Without a pending list (fastupdate):
-- rows written would wait in it until vacuum, and every search would read it whole.
DO $mig$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT table_name FROM collections WHERE delete_time IS NULL LOOP
        IF to_regclass(quote_ident(c.table_name)) IS NOT NULL THEN
            EXECUTE format(
                'CREATE INDEX IF NOT EXISTS %I ON %I USING gin (payload jsonb_path_ops)'
                ' WITH (fastupdate = off)'
                ' WHERE is_average AND user_id IS NULL',
                c.table_name || '_payload_gin', c.table_name);
        END IF;
    END LOOP;
END
$mig$;
