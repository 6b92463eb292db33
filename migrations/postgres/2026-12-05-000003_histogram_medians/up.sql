-- Each resolution-hours histogram row also keeps its own median (whole hours; the mean of the two
-- middle values for an even count; NULL when it holds no case), written with the row. A question
-- whose every group is one row — a breakdown without a period, by child jurisdiction, category,
-- department or programme — reads the medians alone instead of every row's hour list (3.5 MB of
-- text for the 1,024 departments of a province at a million cases). Groups of several rows (a
-- period of months) still add up the hour lists.
ALTER TABLE case_stats_histogram ADD COLUMN median DOUBLE PRECISION;

-- The medians of the rows there are, from their hour lists (sums cast back to bigint: the
-- middle positions are whole-number divisions).
WITH entries AS (
    SELECT h.node, h.dim, h.dim_value, h.basis, h.month,
           split_part(e.entry, ':', 1)::bigint AS hours, split_part(e.entry, ':', 2)::bigint AS cases
    FROM case_stats_histogram h CROSS JOIN LATERAL unnest(string_to_array(h.counts, ',')) AS e(entry)
    WHERE h.counts <> ''
), running AS (
    SELECT node, dim, dim_value, basis, month, hours,
           (SUM(cases) OVER (PARTITION BY node, dim, dim_value, basis, month ORDER BY hours))::bigint AS upto,
           (SUM(cases) OVER (PARTITION BY node, dim, dim_value, basis, month))::bigint AS n
    FROM entries WHERE cases > 0
), medians AS (
    SELECT node, dim, dim_value, basis, month,
           (MIN(hours) FILTER (WHERE upto >= (n + 1) / 2) + MIN(hours) FILTER (WHERE upto >= n / 2 + 1)) / 2.0 AS median
    FROM running GROUP BY node, dim, dim_value, basis, month
)
UPDATE case_stats_histogram h SET median = m.median
FROM medians m
WHERE h.node = m.node AND h.dim = m.dim AND h.dim_value = m.dim_value AND h.basis = m.basis AND h.month = m.month;
