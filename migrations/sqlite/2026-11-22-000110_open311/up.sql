-- Open311 GeoReport v2 (SQLite). Keep in step with migrations/postgres.
-- Categories are Open311 services: a description, a group, keywords and, optionally, the
-- attributes (extra questions) of their service definition.
ALTER TABLE categories ADD COLUMN description TEXT;
ALTER TABLE categories ADD COLUMN service_group TEXT;
-- comma-separated, no spaces: "water,outage"
ALTER TABLE categories ADD COLUMN keywords TEXT;
-- JSON array of attribute definitions; NULL: none (the service has no metadata)
ALTER TABLE categories ADD COLUMN attributes TEXT;

-- What an Open311 request (or a v1 intake) brings besides the existing fields.
-- personal data like the name and phone: masked in every read, never published over Open311
ALTER TABLE cases ADD COLUMN complainant_email TEXT;
ALTER TABLE cases ADD COLUMN media_url TEXT;
-- the requester's address-system id for the location (Open311 address_id)
ALTER TABLE cases ADD COLUMN address_id TEXT;
-- JSON object of the answers to the category's attributes: {"CODE": "value" | ["v1", "v2"]}
ALTER TABLE cases ADD COLUMN attributes TEXT;
