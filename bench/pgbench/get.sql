-- The SQL of one `GET /api/v1/cases/{id}` on PostgreSQL (src/db/cases.rs::get): a primary-key
-- read of every column. The seeded ids are random UUIDs; a random 8-hex-digit prefix picks a
-- random case with one descent of the primary-key index, as `WHERE id = $1` does, so no list of
-- ids is needed (pgbench has none).
\set r random(0, 4294967295)
SELECT id, ref, kind, title, description, category_code, jurisdiction_code, jurisdiction_path, programme_id,
    channel, priority, complainant_name, complainant_phone, location_address, location_lat, location_lon, status, outcome,
    department_id, assignee_id, due_at, acknowledged_at, resolved_at, resolved_by, resolution, verified_at, closed_at,
    satisfaction, rework_count, duplicate_of, external_source, external_id, created_by, created_at, updated_at, version,
    first_assigned_at, first_acknowledged_at, responded, resolved_on_time, resolution_secs, overdue_notified_at,
    complainant_email, media_url, address_id, attributes
  FROM cases WHERE id >= lpad(to_hex(:r::bigint), 8, '0') ORDER BY id LIMIT 1;
