-- Lexical relevance (BM25 from term statistics kept here) and versioned ranking specs.
--
-- Each collection table gets two companions:
--   <table>_postings  one row per (term, item): the term's frequency in the item and the item's
--                     length in terms; the lexical document of an item is its original parts'
--                     texts in stored order, analysed by the collection's text search config.
--   <table>_termstats append-only deltas of document frequency (df) and total length per term;
--                     the row with term '' counts documents and their total length. A term's
--                     statistics are the sum of its rows; the sweeper folds rows together.
-- Writers insert deltas (never update a shared row), so concurrent upserts do not queue on
-- the counters of common words, and a reader sees the postings and the statistics of the same
-- committed writes.

ALTER TABLE collections
    ADD COLUMN text_search_config text NOT NULL DEFAULT 'english',
    -- Payload fields ranking may boost on: [{"field": "stats.sales", "kind": "number"}, ...].
    ADD COLUMN signal_fields jsonb NOT NULL DEFAULT '[]',
    -- The ranking spec searches use by default (NULL: vector ranking), and the one before it.
    ADD COLUMN ranking_version integer,
    ADD COLUMN previous_ranking_version integer;

CREATE TABLE ranking_specs (
    collection_id text NOT NULL REFERENCES collections (collection_id),
    version       integer NOT NULL,
    spec          jsonb NOT NULL,
    -- 'manual' (SetRankingSpec), 'learned' (a ranking fit task), 'inherited' (a reindex).
    origin        text NOT NULL CHECK (origin IN ('manual', 'learned', 'inherited')),
    -- A learned spec goes live only when the gate passed it.
    deployable    boolean NOT NULL DEFAULT true,
    metrics       jsonb NOT NULL DEFAULT '{}',
    task_id       uuid,
    note          text NOT NULL DEFAULT '',
    create_time   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, version)
);

-- Create the lexical companions of one collection table (idempotent).
CREATE FUNCTION es_lexical_create(items_table text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I (term text NOT NULL, object_id text NOT NULL,'
        ' tf integer NOT NULL, dl integer NOT NULL, PRIMARY KEY (term, object_id) INCLUDE (tf, dl))',
        items_table || '_postings');
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (object_id)',
        items_table || '_postings_object_idx', items_table || '_postings');
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I (term text NOT NULL, df bigint NOT NULL,'
        ' length bigint NOT NULL)',
        items_table || '_termstats');
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (term)',
        items_table || '_termstats_term_idx', items_table || '_termstats');
END
$fn$;

-- Bring the postings and statistics of the named items in line with their original parts'
-- texts, in the caller's transaction: take out what was counted for them, count them again.
-- Called after every write or deletion of items; an item without text has no postings.
CREATE FUNCTION es_lexical_refresh(items_table text, config regconfig, object_ids text[])
RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    postings text := quote_ident(items_table || '_postings');
    stats text := quote_ident(items_table || '_termstats');
BEGIN
    EXECUTE format(
        'INSERT INTO %1$s (term, df, length)'
        ' SELECT term, -count(*), -sum(tf) FROM %2$s WHERE object_id = ANY($1) GROUP BY term'
        ' UNION ALL SELECT '''', -count(DISTINCT object_id), -coalesce(sum(tf), 0)'
        ' FROM %2$s WHERE object_id = ANY($1) HAVING count(*) > 0',
        stats, postings) USING object_ids;
    EXECUTE format('DELETE FROM %s WHERE object_id = ANY($1)', postings) USING object_ids;
    EXECUTE format(
        'INSERT INTO %1$s (term, object_id, tf, dl)'
        ' SELECT lexeme, object_id, tf, sum(tf) OVER (PARTITION BY object_id)'
        ' FROM (SELECT d.object_id, u.lexeme, cardinality(u.positions) AS tf'
        '       FROM (SELECT object_id, to_tsvector($2, string_agg(text, '' '' ORDER BY row_id))'
        '             AS document FROM %2$I WHERE object_id = ANY($1) AND user_id IS NULL'
        '             AND NOT is_average AND text IS NOT NULL GROUP BY object_id) d,'
        '            unnest(d.document) u) t',
        postings, items_table) USING object_ids, config;
    EXECUTE format(
        'INSERT INTO %1$s (term, df, length)'
        ' SELECT term, count(*), sum(tf) FROM %2$s WHERE object_id = ANY($1) GROUP BY term'
        ' UNION ALL SELECT '''', count(DISTINCT object_id), coalesce(sum(tf), 0)'
        ' FROM %2$s WHERE object_id = ANY($1) HAVING count(*) > 0',
        stats, postings) USING object_ids;
END
$fn$;

-- Fold each term's delta rows into one (terms whose df reached 0 disappear); one statement,
-- so a reader sees the rows before or after, never half. Safe beside writers and other folds.
CREATE FUNCTION es_lexical_compact(items_table text) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    stats text := quote_ident(items_table || '_termstats');
    folded bigint;
BEGIN
    EXECUTE format(
        'WITH gone AS (DELETE FROM %1$s RETURNING term, df, length),'
        ' kept AS (INSERT INTO %1$s (term, df, length)'
        '  SELECT term, sum(df), sum(length) FROM gone GROUP BY term'
        '  HAVING sum(df) <> 0 OR sum(length) <> 0 RETURNING 1)'
        ' SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM kept)',
        stats) INTO folded;
    RETURN folded;
END
$fn$;

-- Existing collections: companions, filled from what they hold.
DO $mig$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT table_name FROM collections WHERE delete_time IS NULL LOOP
        IF to_regclass(quote_ident(c.table_name)) IS NOT NULL THEN
            PERFORM es_lexical_create(c.table_name);
            EXECUTE format(
                'SELECT es_lexical_refresh(%L, %L::regconfig, array_agg(DISTINCT object_id))'
                ' FROM %I WHERE user_id IS NULL',
                c.table_name, 'english', c.table_name);
        END IF;
    END LOOP;
END
$mig$;
