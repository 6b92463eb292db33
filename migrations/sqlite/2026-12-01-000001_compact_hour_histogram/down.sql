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

-- Split every `hours:cases` list back into rows.
WITH RECURSIVE split (node, dim, dim_value, basis, month, entry, rest) AS (
    SELECT node, dim, dim_value, basis, month, '', counts || ',' FROM case_stats_histogram WHERE counts <> ''
    UNION ALL
    SELECT node, dim, dim_value, basis, month, substr(rest, 1, instr(rest, ',') - 1), substr(rest, instr(rest, ',') + 1)
    FROM split WHERE rest <> ''
)
INSERT INTO case_stats_hours (node, dim, dim_value, basis, month, hours, cases)
SELECT node, dim, dim_value, basis, month,
       CAST(substr(entry, 1, instr(entry, ':') - 1) AS INTEGER), SUM(CAST(substr(entry, instr(entry, ':') + 1) AS INTEGER))
FROM split WHERE entry <> ''
GROUP BY 1, 2, 3, 4, 5, 6;

DROP TABLE case_stats_histogram;
