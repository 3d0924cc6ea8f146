-- IAM SAML identity providers for AssumeRoleWithSAML: an account's trusted IdPs, each
-- named in its ARN (arn:aws:iam::<account>:saml-provider/<name>) and holding the IdP's
-- metadata document (its entityID and signing certificates), as IAM's
-- CreateSAMLProvider stores it.
-- Keep in step with the other backend's migration of the same name.

CREATE TABLE saml_providers (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    name               TEXT NOT NULL,
    metadata_document  TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX saml_providers_name_unique ON saml_providers (account_id, name);
