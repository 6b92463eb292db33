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
INSERT INTO case_stats_hours (node, dim, dim_value, basis, month, hours, cases)
SELECT node, dim, dim_value, basis, month, split_part(entry, ':', 1)::bigint, SUM(split_part(entry, ':', 2)::bigint)
FROM case_stats_histogram, unnest(string_to_array(counts, ',')) AS entry
WHERE entry <> ''
GROUP BY 1, 2, 3, 4, 5, 6;

DROP TABLE case_stats_histogram;
