ALTER TABLE cases DROP COLUMN overdue_notified_at;
DROP TABLE import_jobs;
DROP TABLE webhook_attempts;
DROP TABLE webhook_outbox;
DROP TABLE webhooks;
DROP TABLE idempotency_keys;
