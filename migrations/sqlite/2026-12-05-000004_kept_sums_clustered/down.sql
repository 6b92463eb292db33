-- Back to a rowid table with the same columns and key.
ALTER TABLE case_stats RENAME TO case_stats_clustered;

CREATE TABLE case_stats (
    node             TEXT NOT NULL,
    dim              TEXT NOT NULL,
    dim_value        TEXT NOT NULL,
    basis            TEXT NOT NULL,
    month            TEXT NOT NULL,
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

INSERT INTO case_stats (node, dim, dim_value, basis, month, total, dismissed, resolved, completed, on_time, assigned,
                        responded, rated, satisfied, resolution_secs)
SELECT node, dim, dim_value, basis, month, total, dismissed, resolved, completed, on_time, assigned,
       responded, rated, satisfied, resolution_secs
FROM case_stats_clustered;

DROP TABLE case_stats_clustered;
