-- STS: IAM users with long-term access keys (secrets sealed under the master key),
-- the session-token key ring (keys sealed under the master key), and IAM OIDC
-- identity providers for AssumeRoleWithWebIdentity.
-- Keep in step with the other backend's migration of the same name.

CREATE TABLE iam_users (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    path        TEXT NOT NULL,
    name        TEXT NOT NULL,
    tags        JSONB NOT NULL DEFAULT '[]',
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX iam_users_name_unique ON iam_users (account_id, lower(name));

CREATE TABLE iam_user_inline_policies (
    user_id   TEXT NOT NULL REFERENCES iam_users (id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    document  TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);

CREATE TABLE iam_user_policy_attachments (
    user_id    TEXT NOT NULL REFERENCES iam_users (id) ON DELETE CASCADE,
    policy_id  TEXT NOT NULL REFERENCES managed_policies (id) ON DELETE RESTRICT,
    PRIMARY KEY (user_id, policy_id)
);

CREATE TABLE access_keys (
    access_key_id  TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES iam_users (id) ON DELETE CASCADE,
    sealed_secret  TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('Active', 'Inactive')),
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX access_keys_user ON access_keys (user_id);

CREATE TABLE token_keys (
    id          BIGINT PRIMARY KEY,
    sealed_key  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE oidc_providers (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    -- The issuer URL without its scheme, as IAM names providers (host[/path]).
    url         TEXT NOT NULL,
    client_ids  JSONB NOT NULL DEFAULT '[]',
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX oidc_providers_url_unique ON oidc_providers (account_id, url);
