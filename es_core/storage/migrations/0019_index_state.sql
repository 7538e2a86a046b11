-- Bulk loads: a collection filled in bulk (a reindex's green destination, a large import into
-- a collection nobody reads) gets its rows first and its HNSW vector index once, at the end.
-- index_state says whether the index is there: 'ready' (every collection so far: their tables
-- were created with it), 'building' (rows are being loaded, the index comes once they are),
-- 'failed' (the fill failed before the index was built; never switched to).
ALTER TABLE collections
    ADD COLUMN index_state text NOT NULL DEFAULT 'ready'
        CHECK (index_state IN ('building', 'ready', 'failed'));
