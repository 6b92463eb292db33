DELETE FROM case_stats WHERE basis = 'a';
DELETE FROM case_stats_histogram WHERE basis = 'a';
