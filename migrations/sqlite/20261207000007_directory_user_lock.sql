-- An admin's lock on a directory user: persistent (unlike the temporary lock-out
-- after failed passwords, which lives in the cache) until an admin unlocks.
-- Keep in step with migrations/postgres (same tables, columns and constraints).

-- When an admin locked the user; NULL while the user is not locked. A locked user's
-- sign-in fails exactly like a wrong password.
ALTER TABLE users ADD COLUMN locked_at TEXT;
