-- API clients: other government systems that call the API with a key (PostgreSQL). Keep in step with
-- migrations/sqlite. The key itself is never stored: only its lookup prefix and SHA-256 hash.

CREATE TABLE api_clients (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    -- NULL: the whole tree (only a whole-tree admin creates such a client)
    jurisdiction_code    TEXT REFERENCES jurisdictions (code),
    -- space-separated, sorted: "cases:create cases:read_own"
    scopes               TEXT NOT NULL,
    -- "msk_<12 hex>": the public part of the current key, used to find the row
    key_prefix           TEXT NOT NULL UNIQUE,
    -- hex SHA-256 of the whole current key
    key_hash             TEXT NOT NULL,
    -- the key replaced by the last rotation, valid until previous_valid_until
    previous_key_prefix  TEXT,
    previous_key_hash    TEXT,
    previous_valid_until TIMESTAMP,
    active               BOOLEAN NOT NULL,
    revoked_at           TIMESTAMP,
    last_used_at         TIMESTAMP,
    created_by           TEXT NOT NULL REFERENCES users (id),
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL
);
CREATE INDEX api_clients_previous_key_prefix ON api_clients (previous_key_prefix);
CREATE INDEX api_clients_jurisdiction ON api_clients (jurisdiction_code);
