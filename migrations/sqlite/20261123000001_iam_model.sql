-- IAM model: accounts, roles, managed and inline policies, attachments,
-- identity sources with their users and groups, and the append-only audit log.
-- Keep in step with migrations/postgres (same tables, columns and constraints).

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY CHECK (length(id) = 12 AND id NOT GLOB '*[^0-9]*'),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX accounts_name_unique ON accounts (lower(name));

CREATE TABLE managed_policies (
    id                  TEXT PRIMARY KEY,
    -- NULL: a global policy (ARN account "aws"), like AWS managed policies.
    account_id          TEXT REFERENCES accounts (id) ON DELETE RESTRICT,
    path                TEXT NOT NULL,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    default_version_id  TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX managed_policies_name_unique
    ON managed_policies (coalesce(account_id, 'aws'), lower(name));

CREATE TABLE policy_versions (
    policy_id   TEXT NOT NULL REFERENCES managed_policies (id) ON DELETE CASCADE,
    version_id  TEXT NOT NULL,
    document    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (policy_id, version_id)
);

CREATE TABLE roles (
    id                        TEXT PRIMARY KEY,
    account_id                TEXT NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    path                      TEXT NOT NULL,
    name                      TEXT NOT NULL,
    description               TEXT NOT NULL DEFAULT '',
    trust_policy              TEXT NOT NULL,
    max_session_duration      INTEGER NOT NULL CHECK (max_session_duration BETWEEN 3600 AND 43200),
    permissions_boundary_id   TEXT REFERENCES managed_policies (id) ON DELETE RESTRICT,
    tags                      TEXT NOT NULL DEFAULT '[]',
    revoke_sessions_before    TEXT,
    created_at                TEXT NOT NULL
);
CREATE UNIQUE INDEX roles_name_unique ON roles (account_id, lower(name));

CREATE TABLE role_inline_policies (
    role_id     TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    document    TEXT NOT NULL,
    PRIMARY KEY (role_id, name)
);

CREATE TABLE role_policy_attachments (
    role_id     TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    policy_id   TEXT NOT NULL REFERENCES managed_policies (id) ON DELETE RESTRICT,
    PRIMARY KEY (role_id, policy_id)
);

CREATE TABLE identity_sources (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('directory', 'oidc', 'saml')),
    display_name  TEXT NOT NULL,
    config        TEXT NOT NULL DEFAULT '{}',
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TEXT NOT NULL
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    identity_source_id  TEXT NOT NULL REFERENCES identity_sources (id) ON DELETE RESTRICT,
    user_name           TEXT NOT NULL,
    display_name        TEXT NOT NULL DEFAULT '',
    email               TEXT,
    -- argon2id PHC string; only for the built-in directory.
    password_hash       TEXT,
    disabled            BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX users_name_unique ON users (identity_source_id, lower(user_name));

CREATE TABLE user_groups (
    id                  TEXT PRIMARY KEY,
    identity_source_id  TEXT NOT NULL REFERENCES identity_sources (id) ON DELETE RESTRICT,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    created_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX user_groups_name_unique ON user_groups (identity_source_id, lower(name));

CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    source_ip   TEXT,
    user_agent  TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
