-- Items written by reference (UpsertItems with a source, ImportItems) keep where their content
-- was read from on their head row, so GetItems can show it and a reindex can read it again.
-- New collection tables have the column from the start (es_core/storage/catalog.py).
DO $mig$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT table_name FROM collections WHERE delete_time IS NULL LOOP
        IF to_regclass(quote_ident(c.table_name)) IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I ADD COLUMN IF NOT EXISTS source jsonb', c.table_name);
        END IF;
    END LOOP;
END
$mig$;
