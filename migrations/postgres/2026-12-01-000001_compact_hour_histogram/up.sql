-- The resolution-hours histogram, one row per kept-sums key instead of one per (key, hour): a
-- summary reads as many rows as its period has months, whatever the number of cases.
-- `counts` lists the non-empty hours as `hours:cases` pairs joined by commas (`0:3,5:1,17:2`).
CREATE TABLE case_stats_histogram (
    node      TEXT NOT NULL,
    dim       TEXT NOT NULL,
    dim_value TEXT NOT NULL,
    basis     TEXT NOT NULL,
    month     TEXT NOT NULL,
    counts    TEXT NOT NULL,
    PRIMARY KEY (node, dim, dim_value, basis, month)
);

INSERT INTO case_stats_histogram (node, dim, dim_value, basis, month, counts)
SELECT node, dim, dim_value, basis, month, string_agg(hours::text || ':' || cases::text, ',' ORDER BY hours)
FROM case_stats_hours WHERE cases <> 0
GROUP BY node, dim, dim_value, basis, month;

DROP TABLE case_stats_hours;
