-- The IAM generation: a store-wide counter that every change to what SigV4
-- verification and issuance read (accounts, IAM users and their access keys and
-- policies, roles and their policies, managed policies, OIDC providers) increments
-- in the same transaction, by trigger, so no write path can miss it: the admin API
-- and UI, the CLI, the seed, and SQL typed by hand. Each replica keeps short-lived
-- copies of those rows and drops them all when it sees a new generation (it looks
-- at most every `database.iam_cache_check_ms`), so a deactivated key or a changed
-- trust policy stops working on every replica within that bound.
-- Keep in step with migrations/postgres (same table, same tables triggered).

CREATE TABLE iam_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO iam_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER accounts_iam_generation_insert AFTER INSERT ON accounts
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_iam_generation_update AFTER UPDATE ON accounts
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_iam_generation_delete AFTER DELETE ON accounts
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER managed_policies_iam_generation_insert AFTER INSERT ON managed_policies
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER managed_policies_iam_generation_update AFTER UPDATE ON managed_policies
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER managed_policies_iam_generation_delete AFTER DELETE ON managed_policies
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policy_versions_iam_generation_insert AFTER INSERT ON policy_versions
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policy_versions_iam_generation_update AFTER UPDATE ON policy_versions
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policy_versions_iam_generation_delete AFTER DELETE ON policy_versions
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER roles_iam_generation_insert AFTER INSERT ON roles
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER roles_iam_generation_update AFTER UPDATE ON roles
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER roles_iam_generation_delete AFTER DELETE ON roles
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER role_inline_policies_iam_generation_insert AFTER INSERT ON role_inline_policies
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER role_inline_policies_iam_generation_update AFTER UPDATE ON role_inline_policies
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER role_inline_policies_iam_generation_delete AFTER DELETE ON role_inline_policies
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER role_policy_attachments_iam_generation_insert AFTER INSERT ON role_policy_attachments
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER role_policy_attachments_iam_generation_update AFTER UPDATE ON role_policy_attachments
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER role_policy_attachments_iam_generation_delete AFTER DELETE ON role_policy_attachments
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER iam_users_iam_generation_insert AFTER INSERT ON iam_users
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER iam_users_iam_generation_update AFTER UPDATE ON iam_users
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER iam_users_iam_generation_delete AFTER DELETE ON iam_users
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER iam_user_inline_policies_iam_generation_insert AFTER INSERT ON iam_user_inline_policies
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER iam_user_inline_policies_iam_generation_update AFTER UPDATE ON iam_user_inline_policies
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER iam_user_inline_policies_iam_generation_delete AFTER DELETE ON iam_user_inline_policies
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER iam_user_policy_attachments_iam_generation_insert AFTER INSERT ON iam_user_policy_attachments
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER iam_user_policy_attachments_iam_generation_update AFTER UPDATE ON iam_user_policy_attachments
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER iam_user_policy_attachments_iam_generation_delete AFTER DELETE ON iam_user_policy_attachments
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER access_keys_iam_generation_insert AFTER INSERT ON access_keys
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER access_keys_iam_generation_update AFTER UPDATE ON access_keys
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER access_keys_iam_generation_delete AFTER DELETE ON access_keys
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER oidc_providers_iam_generation_insert AFTER INSERT ON oidc_providers
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER oidc_providers_iam_generation_update AFTER UPDATE ON oidc_providers
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER oidc_providers_iam_generation_delete AFTER DELETE ON oidc_providers
    BEGIN UPDATE iam_generation SET generation = generation + 1 WHERE id = 1; END;
