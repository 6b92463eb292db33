DROP TABLE case_stats_hours;
DROP TABLE case_stats;
DROP INDEX cases_open_due_path;
ALTER TABLE cases DROP COLUMN resolution_secs;
ALTER TABLE cases DROP COLUMN resolved_on_time;
ALTER TABLE cases DROP COLUMN responded;
ALTER TABLE cases DROP COLUMN first_acknowledged_at;
ALTER TABLE cases DROP COLUMN first_assigned_at;
