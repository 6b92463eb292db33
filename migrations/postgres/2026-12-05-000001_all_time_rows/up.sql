-- All-time kept rows (basis 'a', month ''), for questions without a period:
-- - counters per department and per programme at every ancestor of the case's jurisdiction (by
--   month they stay at its own jurisdiction), so a province-wide breakdown by department reads one
--   row per department instead of one per department, township and month;
-- - resolution-hour histograms for every dimension at every node on the path, so a median without
--   a period reads one histogram per group instead of one per group and month.
-- The rows are summed here from the monthly rows by creation month (each case counts in exactly
-- one of those); from now on the service keeps them in the same transaction as every change.

-- Every jurisdiction with itself and each of its ancestors.
CREATE TEMPORARY TABLE lineage AS
SELECT j.code AS own, a.code AS node
FROM jurisdictions j, unnest(string_to_array(btrim(j.path, '/'), '/')) AS a(code);

INSERT INTO case_stats (node, dim, dim_value, basis, month, total, dismissed, resolved, completed, on_time, assigned,
                        responded, rated, satisfied, resolution_secs)
SELECT l.node, s.dim, s.dim_value, 'a', '', SUM(s.total), SUM(s.dismissed), SUM(s.resolved), SUM(s.completed),
       SUM(s.on_time), SUM(s.assigned), SUM(s.responded), SUM(s.rated), SUM(s.satisfied), SUM(s.resolution_secs)
FROM case_stats s JOIN lineage l ON l.own = s.node
WHERE s.basis = 'c' AND s.dim IN ('department', 'programme')
GROUP BY l.node, s.dim, s.dim_value;

INSERT INTO case_stats_histogram (node, dim, dim_value, basis, month, counts)
SELECT node, dim, dim_value, 'a', '', string_agg(hours::text || ':' || cases::text, ',' ORDER BY hours)
FROM (
    SELECT l.node, h.dim, h.dim_value, split_part(e.entry, ':', 1)::bigint AS hours,
           SUM(split_part(e.entry, ':', 2)::bigint) AS cases
    FROM case_stats_histogram h
    JOIN lineage l ON l.own = h.node AND (l.node = l.own OR h.dim IN ('department', 'programme'))
    CROSS JOIN LATERAL unnest(string_to_array(h.counts, ',')) AS e(entry)
    WHERE h.basis = 'c' AND h.counts <> ''
    GROUP BY 1, 2, 3, 4
) AS per_hour
WHERE cases <> 0
GROUP BY node, dim, dim_value;

DROP TABLE lineage;
