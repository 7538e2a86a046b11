-- Each original part row keeps the SHA-256 of the text its vector was encoded from (the
-- cleaned, split part text; bytea, 32 bytes): an upsert of an item whose part text is
-- unchanged reuses the stored vector instead of encoding it again. A collection is bound to
-- one model version (its id is the model's), so the hash need not name the model. NULL for
-- rows whose vector was given by the caller, for heads, user copies, and rows written before
-- this migration: those are never reused.
-- New collection tables have the column from the start (es_core/storage/catalog.py).
DO $mig$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT table_name FROM collections WHERE delete_time IS NULL LOOP
        IF to_regclass(quote_ident(c.table_name)) IS NOT NULL THEN
            EXECUTE format(
                'ALTER TABLE %I ADD COLUMN IF NOT EXISTS content_hash bytea', c.table_name);
        END IF;
    END LOOP;
END
$mig$;
