-- Admin API tokens: a secret shown once, stored as the hex SHA-256 of the secret.
-- created_by is the admin who made the token (the token acts as them until it
-- expires or is revoked). Times as the store writes them (RFC 3339 text in SQLite).
CREATE TABLE admin_tokens (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    secret_sha256  TEXT NOT NULL,
    scope          TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    last_used_at   TEXT,
    revoked_at     TEXT
);
CREATE INDEX admin_tokens_created_at ON admin_tokens (created_at);
