-- Statistics. Each case carries the facts its figures are made of (kept by the lifecycle), and
-- `case_stats` holds their sums per (jurisdiction node, dimension, period month), maintained in
-- the same transaction as every change, so a summary reads a handful of rows instead of the cases.

ALTER TABLE cases ADD COLUMN first_assigned_at TIMESTAMP;
ALTER TABLE cases ADD COLUMN first_acknowledged_at TIMESTAMP;
-- the first acknowledgement came within the response window of the first assignment
ALTER TABLE cases ADD COLUMN responded BOOLEAN NOT NULL DEFAULT 0;
-- the last resolution was on or before the deadline then in force
ALTER TABLE cases ADD COLUMN resolved_on_time BOOLEAN;
-- seconds from creation to the last resolution
ALTER TABLE cases ADD COLUMN resolution_secs BIGINT;

-- Open cases by deadline, for the exact overdue count and the 督办 list.
CREATE INDEX cases_open_due_path ON cases (due_at, jurisdiction_path) WHERE status IN ('received', 'assigned');

CREATE TABLE case_stats (
    node             TEXT NOT NULL,   -- a jurisdiction code: the case's own or an ancestor
    dim              TEXT NOT NULL,   -- '' (all), category, kind, department, programme
    dim_value        TEXT NOT NULL,
    basis            TEXT NOT NULL,   -- 'c': month of creation, 'd': month of the deadline
    month            TEXT NOT NULL,   -- YYYY-MM in China Standard Time
    total            BIGINT NOT NULL,
    dismissed        BIGINT NOT NULL,
    resolved         BIGINT NOT NULL,
    completed        BIGINT NOT NULL,
    on_time          BIGINT NOT NULL,
    assigned         BIGINT NOT NULL,
    responded        BIGINT NOT NULL,
    rated            BIGINT NOT NULL,
    satisfied        BIGINT NOT NULL,
    resolution_secs  BIGINT NOT NULL,
    PRIMARY KEY (node, dim, dim_value, basis, month)
);

-- Resolved cases by whole hours from creation to resolution, for an exact median.
CREATE TABLE case_stats_hours (
    node      TEXT NOT NULL,
    dim       TEXT NOT NULL,
    dim_value TEXT NOT NULL,
    basis     TEXT NOT NULL,
    month     TEXT NOT NULL,
    hours     BIGINT NOT NULL,
    cases     BIGINT NOT NULL,
    PRIMARY KEY (node, dim, dim_value, basis, month, hours)
);
