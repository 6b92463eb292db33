-- Each resolution-hours histogram row also keeps its own median (whole hours; the mean of the two
-- middle values for an even count; NULL when it holds no case), written with the row. A question
-- whose every group is one row — a breakdown without a period, by child jurisdiction, category,
-- department or programme — reads the medians alone instead of every row's hour list (3.5 MB of
-- text for the 1,024 departments of a province at a million cases). Groups of several rows (a
-- period of months) still add up the hour lists.
ALTER TABLE case_stats_histogram ADD COLUMN median REAL;

-- The medians of the rows there are, from their hour lists (`0:3,5:1` read as the JSON array
-- `[[0,3],[5,1]]`).
WITH entries AS (
    SELECT h.node, h.dim, h.dim_value, h.basis, h.month,
           CAST(json_extract(e.value, '$[0]') AS INTEGER) AS hours, CAST(json_extract(e.value, '$[1]') AS INTEGER) AS cases
    FROM case_stats_histogram h
    JOIN json_each('[[' || replace(replace(h.counts, ',', '],['), ':', ',') || ']]') e
    WHERE h.counts <> ''
), running AS (
    SELECT node, dim, dim_value, basis, month, hours,
           SUM(cases) OVER (PARTITION BY node, dim, dim_value, basis, month ORDER BY hours) AS upto,
           SUM(cases) OVER (PARTITION BY node, dim, dim_value, basis, month) AS n
    FROM entries WHERE cases > 0
), medians AS (
    SELECT node, dim, dim_value, basis, month,
           (MIN(hours) FILTER (WHERE upto >= (n + 1) / 2) + MIN(hours) FILTER (WHERE upto >= n / 2 + 1)) / 2.0 AS median
    FROM running GROUP BY node, dim, dim_value, basis, month
)
UPDATE case_stats_histogram SET median = m.median
FROM medians m
WHERE case_stats_histogram.node = m.node AND case_stats_histogram.dim = m.dim
  AND case_stats_histogram.dim_value = m.dim_value AND case_stats_histogram.basis = m.basis
  AND case_stats_histogram.month = m.month;
