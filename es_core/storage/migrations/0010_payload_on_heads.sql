-- An item's payload is stored once, on its head row (the original's average row), instead of
-- on every part row and on every user's improved copy: an item of 80 parts no longer stores
-- its payload 81 times. Searches and filters read the payload from the head.
--
-- Existing collections: empty the payload of every row that is not a head. The space comes
-- back to PostgreSQL as autovacuum reaches the tables.
DO $mig$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT table_name FROM collections WHERE delete_time IS NULL LOOP
        IF to_regclass(quote_ident(c.table_name)) IS NOT NULL THEN
            EXECUTE format(
                'UPDATE %I SET payload = ''{}'' WHERE NOT (is_average AND user_id IS NULL)'
                ' AND payload <> ''{}''',
                c.table_name);
        END IF;
    END LOOP;
END
$mig$;
