-- Optional TOTP second factor (RFC 6238) for users of the built-in directory.
-- Keep in step with migrations/sqlite (same tables, columns and constraints).

-- The base32 TOTP secret sealed with the master key (never in plain text); NULL
-- while the user has no second factor. Set together with totp_enabled_at.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
-- When the user confirmed the second factor; NULL while it is off.
ALTER TABLE users ADD COLUMN totp_enabled_at TIMESTAMPTZ;
