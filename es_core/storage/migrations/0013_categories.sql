-- Categories collections: per model, a collection of category vectors kept apart from its
-- items. It is an ordinary collection (same table layout, same ordered writes, same tasks),
-- marked by its kind, and is never the items' blue collection, a write target of items, a
-- reindex source or destination, or listed by ListCollections.
ALTER TABLE collections
    ADD COLUMN kind text NOT NULL DEFAULT 'items' CHECK (kind IN ('items', 'categories'));

-- Each model's blue categories collection: the one PredictCategories reads for queries
-- encoded by that model. Kept apart from the items' blue_collection alias.
CREATE TABLE categories_blue (
    model_id               text PRIMARY KEY REFERENCES models (model_id),
    collection_id          text NOT NULL REFERENCES collections (collection_id),
    previous_collection_id text REFERENCES collections (collection_id),
    switch_time            timestamptz NOT NULL DEFAULT now()
);
