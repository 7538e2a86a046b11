-- Search sessions, their events, the batches fine-tuning consumes, and the improvement queue.

CREATE TABLE session_batches (
    batch_id     text PRIMARY KEY,
    state        text NOT NULL CHECK (state IN ('collecting', 'released')),
    create_time  timestamptz NOT NULL DEFAULT now(),
    release_time timestamptz
);
-- At most one batch collects new sessions at any time.
CREATE UNIQUE INDEX session_batches_one_collecting ON session_batches ((true))
    WHERE state = 'collecting';

CREATE TABLE sessions (
    session_id     text PRIMARY KEY,
    user_id        text NOT NULL DEFAULT '',
    query_text     text NOT NULL DEFAULT '',
    results        jsonb NOT NULL,
    filter         jsonb,
    sort           jsonb,
    meta           jsonb NOT NULL DEFAULT '{}',
    collection_id  text NOT NULL REFERENCES collections (collection_id),
    query_vector   vector,
    irrelevant     boolean NOT NULL DEFAULT false,
    batch_id       text NOT NULL REFERENCES session_batches (batch_id),
    create_time    timestamptz NOT NULL,
    register_time  timestamptz NOT NULL DEFAULT now(),
    content_digest text NOT NULL
);
CREATE INDEX sessions_listing_idx ON sessions (create_time DESC, session_id DESC);
CREATE INDEX sessions_user_idx ON sessions (user_id, create_time DESC);
CREATE INDEX sessions_batch_idx ON sessions (batch_id);

CREATE TABLE session_events (
    event_id         text PRIMARY KEY,
    session_id       text NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    object_id        text NOT NULL,
    event_type       text NOT NULL,
    event_time       timestamptz NOT NULL,
    meta             jsonb NOT NULL DEFAULT '{}',
    object_not_shown boolean NOT NULL,
    record_time      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_events_session_idx ON session_events (session_id, event_time);

-- Sessions waiting for (or done with) per-user vector adjustment.
CREATE TABLE improvement_queue (
    session_id    text PRIMARY KEY REFERENCES sessions (session_id) ON DELETE CASCADE,
    state         text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'skipped')),
    queue_time    timestamptz NOT NULL DEFAULT now(),
    process_time  timestamptz,
    process_count integer NOT NULL DEFAULT 0,
    note          text NOT NULL DEFAULT ''
);
CREATE INDEX improvement_queue_waiting_idx ON improvement_queue (queue_time)
    WHERE state = 'queued';
