-- How often each mapping rule fired at sign-in and when it last did (the admin UI's
-- hit counts, and "never matched in 30 days"), and why a ruleset was published.
-- Keep in step with migrations/sqlite (same tables, columns and constraints).

CREATE TABLE mapping_rule_hits (
    rule_id         TEXT PRIMARY KEY,
    hits            BIGINT NOT NULL,
    last_matched_at TIMESTAMPTZ NOT NULL
);

-- The publisher's reason (the admin UI asks for one); NULL for older versions.
ALTER TABLE ruleset_versions ADD COLUMN reason TEXT;
