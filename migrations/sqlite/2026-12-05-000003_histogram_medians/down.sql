ALTER TABLE case_stats_histogram DROP COLUMN median;
