-- Catalogue of models and collections, the blue alias, tasks and leases.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE models (
    model_id        text PRIMARY KEY,
    name            text NOT NULL,
    version         text NOT NULL,
    dimensions      integer NOT NULL CHECK (dimensions BETWEEN 1 AND 2000),
    metric          text NOT NULL CHECK (metric IN ('cosine', 'dot', 'euclidean')),
    aggregation     text NOT NULL CHECK (aggregation IN ('min', 'avg')),
    source          text NOT NULL,
    parent_model_id text REFERENCES models (model_id),
    deployed        boolean NOT NULL DEFAULT false,
    create_time     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE collections (
    collection_id        text PRIMARY KEY,
    model_id             text NOT NULL REFERENCES models (model_id),
    table_name           text NOT NULL UNIQUE,
    state                text NOT NULL CHECK (state IN ('green', 'blue', 'retired')),
    hnsw_m               integer NOT NULL,
    hnsw_ef_construction integer NOT NULL,
    create_time          timestamptz NOT NULL DEFAULT now(),
    update_time          timestamptz NOT NULL DEFAULT now()
);

-- The one row that names the collection searches use by default.
CREATE TABLE blue_collection (
    singleton              boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    collection_id          text NOT NULL REFERENCES collections (collection_id),
    previous_collection_id text REFERENCES collections (collection_id),
    switch_time            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    task_id          uuid PRIMARY KEY,
    kind             text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('pending', 'processing', 'done', 'failed', 'canceled')),
    params           jsonb NOT NULL DEFAULT '{}',
    params_digest    text NOT NULL DEFAULT '',
    result           jsonb NOT NULL DEFAULT '{}',
    progress         double precision NOT NULL DEFAULT 0,
    progress_message text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT '',
    attempts         integer NOT NULL DEFAULT 0,
    idempotency_key  text,
    lease_owner      text,
    lease_expires_at timestamptz,
    sent_time        timestamptz,
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now(),
    start_time       timestamptz,
    finish_time      timestamptz,
    UNIQUE (kind, idempotency_key)
);
CREATE INDEX tasks_status_idx ON tasks (status, update_time);
CREATE INDEX tasks_listing_idx ON tasks (create_time DESC, task_id DESC);

-- Leases: a holder that stops renewing loses the lock when expires_at passes.
CREATE TABLE locks (
    name       text PRIMARY KEY,
    owner      text NOT NULL,
    expires_at timestamptz NOT NULL
);
