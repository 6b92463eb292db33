-- Integrations: idempotent retries, webhook subscriptions with a transactional outbox and a
-- delivery log, bulk-import jobs, and the once-only overdue notification.

CREATE TABLE idempotency_keys (
    principal_id     TEXT NOT NULL,
    key              TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    claimed_at       TIMESTAMP NOT NULL,
    status           INTEGER,           -- NULL while the first request is being answered
    response_body    TEXT,
    response_headers TEXT,
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (principal_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY,
    owner_id          TEXT NOT NULL,
    owner_kind        TEXT NOT NULL,   -- user | api_client
    owner_role        TEXT NOT NULL,
    scope_path        TEXT COLLATE "C",  -- NULL: the whole tree
    url               TEXT NOT NULL,
    events            TEXT NOT NULL,   -- space-separated event types
    secret            TEXT NOT NULL,
    active            BOOLEAN NOT NULL,
    disabled_reason   TEXT,
    failing_since     TIMESTAMP,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

CREATE TABLE webhook_outbox (
    id              TEXT PRIMARY KEY,   -- the event id (UUID v7: ordered by creation)
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id),
    case_id         TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    state           TEXT NOT NULL,      -- pending | delivered | failed
    attempts        INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until    TIMESTAMP,
    delivered_at    TIMESTAMP,
    last_error      TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at);
CREATE INDEX webhook_outbox_order ON webhook_outbox (webhook_id, case_id, id);

CREATE TABLE webhook_attempts (
    id            TEXT PRIMARY KEY,
    outbox_id     TEXT NOT NULL REFERENCES webhook_outbox (id),
    attempted_at  TIMESTAMP NOT NULL,
    status_code   INTEGER,
    error         TEXT,
    duration_ms   BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_outbox ON webhook_attempts (outbox_id, attempted_at);

CREATE TABLE import_jobs (
    id           TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL,
    format       TEXT NOT NULL,
    state        TEXT NOT NULL,   -- running | done | failed
    total_rows   BIGINT NOT NULL,
    processed    BIGINT NOT NULL,
    created      BIGINT NOT NULL,
    existing     BIGINT NOT NULL,
    rejected     BIGINT NOT NULL,
    results      TEXT NOT NULL,   -- JSON lines, one result per row
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

ALTER TABLE cases ADD COLUMN overdue_notified_at TIMESTAMP;
