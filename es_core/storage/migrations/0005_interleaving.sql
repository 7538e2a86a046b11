-- Online interleaving of green and blue: which collection each interleaved session compared,
-- and which of them contributed each result it showed (team-draft credits).
CREATE TABLE interleaving_sessions (
    session_id          text PRIMARY KEY REFERENCES sessions (session_id) ON DELETE CASCADE,
    blue_collection_id  text NOT NULL REFERENCES collections (collection_id),
    green_collection_id text NOT NULL REFERENCES collections (collection_id),
    create_time         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX interleaving_sessions_pair_idx
    ON interleaving_sessions (green_collection_id, blue_collection_id, create_time);

CREATE TABLE interleaving_credits (
    session_id text NOT NULL REFERENCES interleaving_sessions (session_id) ON DELETE CASCADE,
    object_id  text NOT NULL,
    team       text NOT NULL CHECK (team IN ('blue', 'green')),
    PRIMARY KEY (session_id, object_id)
);
