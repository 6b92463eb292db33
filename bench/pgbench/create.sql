-- The SQL of one `POST /api/v1/cases` with an Idempotency-Key, as the service runs it on
-- PostgreSQL (src/routes/idempotent.rs, src/service/cases.rs::create,
-- src/db/stats.rs::add_at_commit): one transaction: the key's claim, the create, the recorded
-- answer and, last, the kept sums. Run with `pgbench -M prepared` (the service prepares every
-- statement of this path, see `db::Prepared`) and -D user=<bench user id> -D username=<its
-- name>. What the service computes in Rust (ids, times, the ref, months) is computed here inside
-- the statements it feeds, or gset from the first read of the transaction, so no statement is
-- added.
\set c random(1, 16)
\set k random(1, 8)
\set n random(1, 10)
\set cat random(1, 10)
\set r random(1, 9223372036854775806)
BEGIN;
INSERT INTO idempotency_keys (principal_id, key, request_hash, claimed_at, created_at, expires_at)
  VALUES (:user, 'pgb-' || :client_id::text || '-' || :r::text, md5(:r::text || 'a') || md5(:r::text || 'b'),
          now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', (now() AT TIME ZONE 'UTC') + interval '24 hours')
  ON CONFLICT DO NOTHING;
SELECT code, name, parent_code, path, depth, created_at, updated_at,
       (SELECT substr(x, 1, 8) || '-' || substr(x, 9, 4) || '-7' || substr(x, 14, 3) || '-8' || substr(x, 18, 3) || '-' || substr(x, 21, 12)
          FROM (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || md5(random()::text) AS x) s) AS id,
       (ARRAY['education','healthcare','elderly_childcare','drinking_water','transport','housing','employment','environment','petitions','other'])[:cat] AS cat,
       (now() AT TIME ZONE 'UTC') AS t
  FROM jurisdictions WHERE code = '53' || lpad(:c::text, 2, '0') || lpad(:k::text, 2, '0') || lpad(:n::text, 3, '0') LIMIT 1
\gset j_
SELECT code, name, deadline_days, active, created_at, updated_at, description, service_group, keywords, attributes,
       (:j_t::timestamp + make_interval(days => deadline_days)) AS due,
       to_char(:j_t::timestamp + interval '8 hours', 'YYYY-MM') AS cmonth,
       to_char(:j_t::timestamp + make_interval(days => deadline_days) + interval '8 hours', 'YYYY-MM') AS dmonth,
       to_char(:j_t::timestamp + interval '8 hours', 'YYYY') AS year
  FROM categories WHERE code = :j_cat LIMIT 1
\gset c_
INSERT INTO ref_counters (prefix, last) VALUES (:j_code::text || '-' || :c_year::text, 1)
  ON CONFLICT (prefix) DO UPDATE SET last = ref_counters.last + 1 RETURNING last
\gset r_
INSERT INTO cases (id, ref, kind, title, description, category_code, jurisdiction_code, jurisdiction_path, programme_id,
    channel, priority, complainant_name, complainant_phone, location_address, location_lat, location_lon, status, outcome,
    department_id, assignee_id, due_at, acknowledged_at, resolved_at, resolved_by, resolution, verified_at, closed_at,
    satisfaction, rework_count, duplicate_of, external_source, external_id, created_by, created_at, updated_at, version,
    first_assigned_at, first_acknowledged_at, responded, resolved_on_time, resolution_secs, overdue_notified_at,
    complainant_email, media_url, address_id, attributes)
  VALUES (:j_id, :j_code::text || '-' || :c_year::text || '-' || lpad(:r_last::text, 6, '0'), 'complaint', '村里自来水停水三天',
    '凤凰街道某村自来水停水三天，村民生活用水困难，请尽快处理。', :j_cat, :j_code, :j_path, NULL,
    'hotline', 'normal', '张三丰', '13812345678', NULL, NULL, NULL, 'received', NULL,
    NULL, NULL, :c_due, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, 0, NULL, NULL, NULL, :user, :j_t, :j_t, 1,
    NULL, NULL, false, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL);
INSERT INTO case_events (case_id, seq, action, from_status, to_status, actor_id, actor_name, at, note, data)
  VALUES (:j_id, 1, 'create', NULL, 'received', :user, :username, :j_t, NULL,
          '{"category_code":"' || :j_cat::text || '","channel":"hotline","due_at":"' || :c_due::text || 'Z","kind":"complaint"}');
SELECT id, owner_id, owner_kind, owner_role, scope_path, url, events, secret, active, disabled_reason, failing_since,
       created_at, updated_at FROM webhooks WHERE active = true ORDER BY id;
UPDATE idempotency_keys SET status = 201, response_body = repeat('x', 1400),
    response_headers = '[["Location","/api/v1/cases/' || :j_id::text || '"],["ETag","\"1\""]]'
  WHERE principal_id = :user AND key = 'pgb-' || :client_id::text || '-' || :r::text;
INSERT INTO case_stats (node, dim, dim_value, basis, month, total, dismissed, resolved, completed, on_time, assigned,
    responded, rated, satisfied, resolution_secs)
  SELECT node, dim, dim_value, basis, month, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0
  FROM (VALUES
    (split_part(:j_path, '/', 2), '', '', 'c', :c_cmonth, 1), (split_part(:j_path, '/', 2), '', '', 'd', :c_dmonth, 2),
    (split_part(:j_path, '/', 2), 'category', :j_cat, 'c', :c_cmonth, 3), (split_part(:j_path, '/', 2), 'category', :j_cat, 'd', :c_dmonth, 4),
    (split_part(:j_path, '/', 2), 'kind', 'complaint', 'c', :c_cmonth, 5), (split_part(:j_path, '/', 2), 'kind', 'complaint', 'd', :c_dmonth, 6),
    (split_part(:j_path, '/', 3), '', '', 'c', :c_cmonth, 7), (split_part(:j_path, '/', 3), '', '', 'd', :c_dmonth, 8),
    (split_part(:j_path, '/', 3), 'category', :j_cat, 'c', :c_cmonth, 9), (split_part(:j_path, '/', 3), 'category', :j_cat, 'd', :c_dmonth, 10),
    (split_part(:j_path, '/', 3), 'kind', 'complaint', 'c', :c_cmonth, 11), (split_part(:j_path, '/', 3), 'kind', 'complaint', 'd', :c_dmonth, 12),
    (split_part(:j_path, '/', 4), '', '', 'c', :c_cmonth, 13), (split_part(:j_path, '/', 4), '', '', 'd', :c_dmonth, 14),
    (split_part(:j_path, '/', 4), 'category', :j_cat, 'c', :c_cmonth, 15), (split_part(:j_path, '/', 4), 'category', :j_cat, 'd', :c_dmonth, 16),
    (split_part(:j_path, '/', 4), 'kind', 'complaint', 'c', :c_cmonth, 17), (split_part(:j_path, '/', 4), 'kind', 'complaint', 'd', :c_dmonth, 18),
    (split_part(:j_path, '/', 5), '', '', 'c', :c_cmonth, 19), (split_part(:j_path, '/', 5), '', '', 'd', :c_dmonth, 20),
    (split_part(:j_path, '/', 5), 'category', :j_cat, 'c', :c_cmonth, 21), (split_part(:j_path, '/', 5), 'category', :j_cat, 'd', :c_dmonth, 22),
    (split_part(:j_path, '/', 5), 'kind', 'complaint', 'c', :c_cmonth, 23), (split_part(:j_path, '/', 5), 'kind', 'complaint', 'd', :c_dmonth, 24)
  ) AS v(node, dim, dim_value, basis, month, ord) ORDER BY ord
  ON CONFLICT (node, dim, dim_value, basis, month) DO UPDATE SET total = case_stats.total + excluded.total,
    dismissed = case_stats.dismissed + excluded.dismissed, resolved = case_stats.resolved + excluded.resolved,
    completed = case_stats.completed + excluded.completed, on_time = case_stats.on_time + excluded.on_time,
    assigned = case_stats.assigned + excluded.assigned, responded = case_stats.responded + excluded.responded,
    rated = case_stats.rated + excluded.rated, satisfied = case_stats.satisfied + excluded.satisfied,
    resolution_secs = case_stats.resolution_secs + excluded.resolution_secs;
COMMIT;
