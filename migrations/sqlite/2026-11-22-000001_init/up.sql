-- Minsheng initial schema (SQLite). Keep in step with migrations/postgres: same names, same tables.
-- Timestamps are UTC stored as `timestamp` (no zone); ids are UUID text so both backends share one schema.

CREATE TABLE server_keys (
    kid        TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE jurisdictions (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    parent_code TEXT REFERENCES jurisdictions (code),
    -- materialised path of codes, "/530000/530600/530602/"; SQLite compares text bytewise (BINARY) already
    path        TEXT NOT NULL UNIQUE,
    depth       INTEGER NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE INDEX jurisdictions_parent ON jurisdictions (parent_code, code);

CREATE TABLE departments (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    jurisdiction_code TEXT NOT NULL REFERENCES jurisdictions (code),
    active            BOOLEAN NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    UNIQUE (jurisdiction_code, name)
);

CREATE TABLE categories (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    deadline_days INTEGER NOT NULL,
    active        BOOLEAN NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

CREATE TABLE programmes (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    year              INTEGER NOT NULL,
    jurisdiction_code TEXT NOT NULL REFERENCES jurisdictions (code),
    description       TEXT,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    UNIQUE (jurisdiction_code, year, name)
);

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    username          TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    role              TEXT NOT NULL,
    jurisdiction_code TEXT REFERENCES jurisdictions (code),
    department_id     TEXT REFERENCES departments (id),
    display_name      TEXT,
    active            BOOLEAN NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

CREATE TABLE ref_counters (
    prefix TEXT PRIMARY KEY,
    last   BIGINT NOT NULL
);

CREATE TABLE cases (
    id                TEXT PRIMARY KEY,
    ref               TEXT NOT NULL UNIQUE,
    kind              TEXT NOT NULL,
    title             TEXT NOT NULL,
    description       TEXT NOT NULL,
    category_code     TEXT NOT NULL REFERENCES categories (code),
    jurisdiction_code TEXT NOT NULL REFERENCES jurisdictions (code),
    jurisdiction_path TEXT NOT NULL,
    programme_id      TEXT REFERENCES programmes (id),
    channel           TEXT NOT NULL,
    priority          TEXT NOT NULL,
    complainant_name  TEXT,
    complainant_phone TEXT,
    location_address  TEXT,
    location_lat      REAL,
    location_lon      REAL,
    status            TEXT NOT NULL,
    outcome           TEXT,
    department_id     TEXT REFERENCES departments (id),
    assignee_id       TEXT REFERENCES users (id),
    due_at            TIMESTAMP NOT NULL,
    acknowledged_at   TIMESTAMP,
    resolved_at       TIMESTAMP,
    resolved_by       TEXT,
    resolution        TEXT,
    verified_at       TIMESTAMP,
    closed_at         TIMESTAMP,
    satisfaction      TEXT,
    rework_count      INTEGER NOT NULL,
    duplicate_of      TEXT REFERENCES cases (id),
    external_source   TEXT,
    external_id       TEXT,
    created_by        TEXT NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    version           BIGINT NOT NULL,
    UNIQUE (external_source, external_id)
);
CREATE INDEX cases_created ON cases (created_at, id);
CREATE INDEX cases_status_created ON cases (status, created_at, id);
CREATE INDEX cases_path_created ON cases (jurisdiction_path, created_at, id);
CREATE INDEX cases_department_created ON cases (department_id, created_at, id);
CREATE INDEX cases_category_created ON cases (category_code, created_at, id);
CREATE INDEX cases_programme_created ON cases (programme_id, created_at, id);
CREATE INDEX cases_open_due ON cases (due_at) WHERE status IN ('received', 'assigned');
CREATE INDEX cases_created_by ON cases (created_by, created_at, id);

CREATE TABLE case_events (
    case_id     TEXT NOT NULL REFERENCES cases (id),
    seq         BIGINT NOT NULL,
    action      TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    at          TIMESTAMP NOT NULL,
    note        TEXT,
    data        TEXT NOT NULL,
    PRIMARY KEY (case_id, seq)
);
