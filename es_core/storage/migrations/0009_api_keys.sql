-- API keys (only a SHA-256 of each secret is kept) and the app every session belongs to.

CREATE TABLE api_keys (
    key_id        text PRIMARY KEY,
    secret_sha256 bytea NOT NULL,
    role          text NOT NULL CHECK (role IN ('search', 'write', 'admin')),
    -- '' = a key of every app; else the one app whose sessions the key may read and write.
    app           text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    create_time   timestamptz NOT NULL DEFAULT now(),
    revoke_time   timestamptz
);

-- Sessions registered before keys existed belong to no app ('').
ALTER TABLE sessions ADD COLUMN app text NOT NULL DEFAULT '';
CREATE INDEX sessions_app_listing_idx ON sessions (app, create_time DESC, session_id DESC);
