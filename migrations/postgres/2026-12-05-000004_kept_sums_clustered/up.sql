-- SQLite only: there the kept sums become a `WITHOUT ROWID` table (one B-tree per upsert instead
-- of two; see migrations/sqlite). PostgreSQL's heap and primary-key index have no such choice,
-- and its upserts are batched per statement already. Kept so both backends list the same
-- migrations.
SELECT 1;
