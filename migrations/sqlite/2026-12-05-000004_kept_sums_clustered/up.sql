-- The kept sums stored in their key's order (`WITHOUT ROWID`). Every create upserts some two dozen
-- of these rows and every action up to thirty; as a rowid table each upsert found the row's key in
-- the primary-key index and then the row itself in the table, two B-trees. Clustered on the key,
-- it is one: 0–8 % more creates per second at 100k cases (docs/BENCHMARKS.md, change 26). A row is
-- some hundred bytes, well under the size at which SQLite advises against `WITHOUT ROWID`.
-- SQLite cannot change a table's storage in place: the table is rebuilt under its own name.
ALTER TABLE case_stats RENAME TO case_stats_rowid;

CREATE TABLE case_stats (
    node             TEXT NOT NULL,   -- a jurisdiction code: the case's own or an ancestor
    dim              TEXT NOT NULL,   -- '' (all), category, kind, department, programme
    dim_value        TEXT NOT NULL,
    basis            TEXT NOT NULL,   -- 'c': month of creation, 'd': month of the deadline, 'a': all time
    month            TEXT NOT NULL,   -- YYYY-MM in China Standard Time ('' for all time)
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
) WITHOUT ROWID;

INSERT INTO case_stats (node, dim, dim_value, basis, month, total, dismissed, resolved, completed, on_time, assigned,
                        responded, rated, satisfied, resolution_secs)
SELECT node, dim, dim_value, basis, month, total, dismissed, resolved, completed, on_time, assigned,
       responded, rated, satisfied, resolution_secs
FROM case_stats_rowid;

DROP TABLE case_stats_rowid;
