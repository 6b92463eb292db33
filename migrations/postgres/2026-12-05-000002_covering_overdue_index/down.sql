DROP INDEX cases_open_due_path;
CREATE INDEX cases_open_due_path ON cases (due_at, jurisdiction_path) WHERE status IN ('received', 'assigned');
CREATE INDEX cases_open_due ON cases (due_at) WHERE status IN ('received', 'assigned');
