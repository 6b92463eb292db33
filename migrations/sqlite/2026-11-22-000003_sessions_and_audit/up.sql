-- Sessions (one per login; refresh tokens rotate within it), login throttling, and the two audit
-- logs: reads of citizens' personal data, and administrative changes.

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    revoked_at  TIMESTAMP,
    revoke_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start TIMESTAMP NOT NULL,
    locked_until TIMESTAMP
);

CREATE TABLE personal_data_access (
    id                TEXT PRIMARY KEY,
    case_id           TEXT NOT NULL REFERENCES cases (id),
    jurisdiction_path TEXT NOT NULL,
    actor_id          TEXT NOT NULL,
    actor_name        TEXT NOT NULL,
    at                TIMESTAMP NOT NULL,
    request_id        TEXT
);
CREATE INDEX personal_data_access_case ON personal_data_access (case_id, at);
CREATE INDEX personal_data_access_path ON personal_data_access (jurisdiction_path, at);

CREATE TABLE admin_audit (
    id                TEXT PRIMARY KEY,
    actor_id          TEXT NOT NULL,
    actor_name        TEXT NOT NULL,
    action            TEXT NOT NULL,
    target_type       TEXT NOT NULL,
    target_id         TEXT NOT NULL,
    -- the target's jurisdiction path; NULL for tree-wide data (categories, whole-tree users)
    jurisdiction_path TEXT,
    at                TIMESTAMP NOT NULL,
    details           TEXT NOT NULL
);
CREATE INDEX admin_audit_at ON admin_audit (at, id);
