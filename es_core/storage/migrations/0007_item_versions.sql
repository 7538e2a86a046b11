-- Ordered writes: every upsert and deletion of items carries a version fixed when its request
-- is accepted, and a write never replaces or removes what a newer one wrote.
--
-- Versions come from one sequence, taken in the transaction that creates the write's task row
-- (tasks.params ->> 'version'). Writes accepted before this migration carry none and count as
-- version 0, as do the rows they wrote.
CREATE SEQUENCE item_write_versions AS bigint START 1;

-- Each collection table gets a third companion:
--   <table>_versions  one row per item ever written or deleted: the version of the latest write
--                     applied to it and whether that write was a deletion (a tombstone). A
--                     writer takes the row (INSERT .. ON CONFLICT DO UPDATE .. WHERE older)
--                     before touching the item's rows, so it is also the item's lock, even for
--                     an item that has no rows yet. Searches never read it.
-- The item rows keep the version they were written with in their own column.
CREATE FUNCTION es_versions_create(items_table text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format(
        'ALTER TABLE %I ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0', items_table);
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I (object_id text PRIMARY KEY, version bigint NOT NULL,'
        ' deleted boolean NOT NULL)',
        items_table || '_versions');
END
$fn$;

-- Existing collections: their rows read as version 0; an item without a versions row is a
-- live (or never written) item at version 0.
DO $mig$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT table_name FROM collections WHERE delete_time IS NULL LOOP
        IF to_regclass(quote_ident(c.table_name)) IS NOT NULL THEN
            PERFORM es_versions_create(c.table_name);
        END IF;
    END LOOP;
END
$mig$;
