-- The SQL of one `POST /api/v1/cases/{id}/actions/assign` with If-Match and an Idempotency-Key,
-- as the service runs it on PostgreSQL (src/routes/idempotent.rs, src/service/cases.rs::act,
-- src/db/stats.rs::add_at_commit): one transaction that claims the key, locks the case, checks
-- the department and its jurisdiction, writes the version-checked update and the event, re-reads
-- the case, looks for webhook subscribers, records the answer and, last, applies the kept-sums
-- delta (30 rows). Cases to assign come from the table `bench_act (n, case_id, dept_id)` that the
-- harness fills with received cases, each taken once: client c takes rows c + 1, c + 1 + N, …
-- (N = -D nclients). That lookup, folded into the locking read, is the only work the service does
-- not do.
-- (pgbench reads `:name` as a variable even inside string literals, hence `": null"` in the JSON.)
\set seq :seq + 1
\set n 1 + :client_id + :nclients * (:seq - 1)
\set r random(1, 9223372036854775806)
BEGIN;
INSERT INTO idempotency_keys (principal_id, key, request_hash, claimed_at, created_at, expires_at)
  VALUES (:user, 'pgba-' || :client_id::text || '-' || :r::text, md5(:r::text || 'a') || md5(:r::text || 'b'),
          now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', (now() AT TIME ZONE 'UTC') + interval '24 hours')
  ON CONFLICT DO NOTHING;
SELECT id, ref, kind, title, description, category_code, jurisdiction_code, jurisdiction_path, programme_id,
    channel, priority, complainant_name, complainant_phone, location_address, location_lat, location_lon, status, outcome,
    department_id, assignee_id, due_at, acknowledged_at, resolved_at, resolved_by, resolution, verified_at, closed_at,
    satisfaction, rework_count, duplicate_of, external_source, external_id, created_by, created_at, updated_at, version,
    first_assigned_at, first_acknowledged_at, responded, resolved_on_time, resolution_secs, overdue_notified_at,
    complainant_email, media_url, address_id, attributes,
    (SELECT dept_id FROM bench_act WHERE n = :n) AS dept,
    to_char(created_at + interval '8 hours', 'YYYY-MM') AS cmonth,
    to_char(due_at + interval '8 hours', 'YYYY-MM') AS dmonth,
    (now() AT TIME ZONE 'UTC') AS t
  FROM cases WHERE id = (SELECT case_id FROM bench_act WHERE n = :n) LIMIT 1 FOR UPDATE
\gset a_
SELECT id, name, jurisdiction_code, active, created_at, updated_at FROM departments WHERE id = :a_dept LIMIT 1
\gset d_
SELECT code, name, parent_code, path, depth, created_at, updated_at FROM jurisdictions WHERE code = :d_jurisdiction_code LIMIT 1;
UPDATE cases SET status = 'assigned', outcome = NULL, department_id = :a_dept, assignee_id = NULL, due_at = :a_due_at,
    acknowledged_at = NULL, resolved_at = NULL, resolved_by = NULL, resolution = NULL, verified_at = NULL, closed_at = NULL,
    satisfaction = NULL, rework_count = 0, duplicate_of = NULL, updated_at = :a_t, version = 2,
    first_assigned_at = :a_t, first_acknowledged_at = NULL, responded = false, resolved_on_time = NULL,
    resolution_secs = NULL, overdue_notified_at = NULL
  WHERE id = :a_id AND version = 1;
INSERT INTO case_events (case_id, seq, action, from_status, to_status, actor_id, actor_name, at, note, data)
  VALUES (:a_id, 2, 'assign', 'received', 'assigned', :user, :username, :a_t, '请三日内处理',
          '{"assignee_id": null,"department_id":"' || :a_dept::text || '","previous_department_id": null}');
SELECT id, ref, kind, title, description, category_code, jurisdiction_code, jurisdiction_path, programme_id,
    channel, priority, complainant_name, complainant_phone, location_address, location_lat, location_lon, status, outcome,
    department_id, assignee_id, due_at, acknowledged_at, resolved_at, resolved_by, resolution, verified_at, closed_at,
    satisfaction, rework_count, duplicate_of, external_source, external_id, created_by, created_at, updated_at, version,
    first_assigned_at, first_acknowledged_at, responded, resolved_on_time, resolution_secs, overdue_notified_at,
    complainant_email, media_url, address_id, attributes
  FROM cases WHERE id = :a_id LIMIT 1;
SELECT id, owner_id, owner_kind, owner_role, scope_path, url, events, secret, active, disabled_reason, failing_since,
       created_at, updated_at FROM webhooks WHERE active = true ORDER BY id;
UPDATE idempotency_keys SET status = 200, response_body = repeat('x', 1400), response_headers = '[["ETag","\"2\""]]'
  WHERE principal_id = :user AND key = 'pgba-' || :client_id::text || '-' || :r::text;
INSERT INTO case_stats (node, dim, dim_value, basis, month, total, dismissed, resolved, completed, on_time, assigned,
    responded, rated, satisfied, resolution_secs)
  SELECT node, dim, dim_value, basis, month, total, 0, 0, 0, 0, 1, 0, 0, 0, 0
  FROM (VALUES
    (split_part(:a_jurisdiction_path, '/', 2), '', '', 'c', :a_cmonth, 0, 1), (split_part(:a_jurisdiction_path, '/', 2), '', '', 'd', :a_dmonth, 0, 2),
    (split_part(:a_jurisdiction_path, '/', 2), 'category', :a_category_code, 'c', :a_cmonth, 0, 3), (split_part(:a_jurisdiction_path, '/', 2), 'category', :a_category_code, 'd', :a_dmonth, 0, 4),
    (split_part(:a_jurisdiction_path, '/', 2), 'department', :a_dept, 'a', '', 1, 5), (split_part(:a_jurisdiction_path, '/', 2), 'kind', :a_kind, 'c', :a_cmonth, 0, 6),
    (split_part(:a_jurisdiction_path, '/', 2), 'kind', :a_kind, 'd', :a_dmonth, 0, 7), (split_part(:a_jurisdiction_path, '/', 3), '', '', 'c', :a_cmonth, 0, 8),
    (split_part(:a_jurisdiction_path, '/', 3), '', '', 'd', :a_dmonth, 0, 9), (split_part(:a_jurisdiction_path, '/', 3), 'category', :a_category_code, 'c', :a_cmonth, 0, 10),
    (split_part(:a_jurisdiction_path, '/', 3), 'category', :a_category_code, 'd', :a_dmonth, 0, 11), (split_part(:a_jurisdiction_path, '/', 3), 'department', :a_dept, 'a', '', 1, 12),
    (split_part(:a_jurisdiction_path, '/', 3), 'kind', :a_kind, 'c', :a_cmonth, 0, 13), (split_part(:a_jurisdiction_path, '/', 3), 'kind', :a_kind, 'd', :a_dmonth, 0, 14),
    (split_part(:a_jurisdiction_path, '/', 4), '', '', 'c', :a_cmonth, 0, 15), (split_part(:a_jurisdiction_path, '/', 4), '', '', 'd', :a_dmonth, 0, 16),
    (split_part(:a_jurisdiction_path, '/', 4), 'category', :a_category_code, 'c', :a_cmonth, 0, 17), (split_part(:a_jurisdiction_path, '/', 4), 'category', :a_category_code, 'd', :a_dmonth, 0, 18),
    (split_part(:a_jurisdiction_path, '/', 4), 'department', :a_dept, 'a', '', 1, 19), (split_part(:a_jurisdiction_path, '/', 4), 'kind', :a_kind, 'c', :a_cmonth, 0, 20),
    (split_part(:a_jurisdiction_path, '/', 4), 'kind', :a_kind, 'd', :a_dmonth, 0, 21), (split_part(:a_jurisdiction_path, '/', 5), '', '', 'c', :a_cmonth, 0, 22),
    (split_part(:a_jurisdiction_path, '/', 5), '', '', 'd', :a_dmonth, 0, 23), (split_part(:a_jurisdiction_path, '/', 5), 'category', :a_category_code, 'c', :a_cmonth, 0, 24),
    (split_part(:a_jurisdiction_path, '/', 5), 'category', :a_category_code, 'd', :a_dmonth, 0, 25), (split_part(:a_jurisdiction_path, '/', 5), 'department', :a_dept, 'c', :a_cmonth, 1, 26),
    (split_part(:a_jurisdiction_path, '/', 5), 'department', :a_dept, 'd', :a_dmonth, 1, 27), (split_part(:a_jurisdiction_path, '/', 5), 'department', :a_dept, 'a', '', 1, 28),
    (split_part(:a_jurisdiction_path, '/', 5), 'kind', :a_kind, 'c', :a_cmonth, 0, 29), (split_part(:a_jurisdiction_path, '/', 5), 'kind', :a_kind, 'd', :a_dmonth, 0, 30)
  ) AS v(node, dim, dim_value, basis, month, total, ord) ORDER BY ord
  ON CONFLICT (node, dim, dim_value, basis, month) DO UPDATE SET total = case_stats.total + excluded.total,
    dismissed = case_stats.dismissed + excluded.dismissed, resolved = case_stats.resolved + excluded.resolved,
    completed = case_stats.completed + excluded.completed, on_time = case_stats.on_time + excluded.on_time,
    assigned = case_stats.assigned + excluded.assigned, responded = case_stats.responded + excluded.responded,
    rated = case_stats.rated + excluded.rated, satisfied = case_stats.satisfied + excluded.satisfied,
    resolution_secs = case_stats.resolution_secs + excluded.resolution_secs;
COMMIT;
