-- A key is proved either by a bearer token (secret_sha256) or by a client certificate
-- (cert_sha256: SHA-256 of the certificate's DER bytes), never both: one table of identities,
-- one way to list and revoke them.

ALTER TABLE api_keys ALTER COLUMN secret_sha256 DROP NOT NULL;
ALTER TABLE api_keys ADD COLUMN cert_sha256 bytea;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_one_proof
    CHECK (num_nonnulls(secret_sha256, cert_sha256) = 1);
-- A certificate names one live identity at a time; once revoked it may be registered again.
CREATE UNIQUE INDEX api_keys_live_cert_idx ON api_keys (cert_sha256)
    WHERE cert_sha256 IS NOT NULL AND revoke_time IS NULL;
