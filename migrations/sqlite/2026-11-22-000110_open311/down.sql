ALTER TABLE cases DROP COLUMN attributes;
ALTER TABLE cases DROP COLUMN address_id;
ALTER TABLE cases DROP COLUMN media_url;
ALTER TABLE cases DROP COLUMN complainant_email;
ALTER TABLE categories DROP COLUMN attributes;
ALTER TABLE categories DROP COLUMN keywords;
ALTER TABLE categories DROP COLUMN service_group;
ALTER TABLE categories DROP COLUMN description;
