-- Mapping rules: every published ruleset is an immutable, numbered version; the
-- highest version is the one in force. Keep in step with the other backend's tree.
CREATE TABLE ruleset_versions (
    version       BIGINT PRIMARY KEY CHECK (version >= 1),
    -- Hex SHA-256 of the rules' canonical JSON (the ETag of GET /ruleset).
    content_hash  TEXT NOT NULL,
    -- The rules, as the admin API's JSON array.
    rules         JSONB NOT NULL,
    -- Who published it (an admin actor) and, for a restore, which version it copied.
    published_by  TEXT NOT NULL,
    restored_from BIGINT,
    published_at  TIMESTAMPTZ NOT NULL
);

-- The latest sign-in of each person, per identity source: the claims the mapping
-- rules saw (never secrets or tokens), for dry runs, impact and the access views.
-- Rows older than the retention limit are deleted as new sign-ins are recorded.
CREATE TABLE recent_sign_ins (
    source_id    TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_name    TEXT NOT NULL,
    -- The identity as the portal session holds it (JSON).
    identity     JSONB NOT NULL,
    signed_in_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_id, subject)
);
CREATE INDEX recent_sign_ins_by_time ON recent_sign_ins (signed_in_at);
