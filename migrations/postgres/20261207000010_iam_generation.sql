-- The IAM generation: a store-wide counter that every change to what SigV4
-- verification and issuance read (accounts, IAM users and their access keys and
-- policies, roles and their policies, managed policies, OIDC providers) increments
-- in the same transaction, by trigger, so no write path can miss it: the admin API
-- and UI, the CLI, the seed, and SQL typed by hand. Each replica keeps short-lived
-- copies of those rows and drops them all when it sees a new generation (it looks
-- at most every `database.iam_cache_check_ms`), so a deactivated key or a changed
-- trust policy stops working on every replica within that bound.
-- Keep in step with migrations/sqlite (same table, same tables triggered).

CREATE TABLE iam_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO iam_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION iam_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE iam_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER accounts_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER managed_policies_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON managed_policies
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER policy_versions_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER roles_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER role_inline_policies_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON role_inline_policies
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER role_policy_attachments_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON role_policy_attachments
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER iam_users_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON iam_users
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER iam_user_inline_policies_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON iam_user_inline_policies
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER iam_user_policy_attachments_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON iam_user_policy_attachments
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER access_keys_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON access_keys
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
CREATE TRIGGER oidc_providers_iam_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON oidc_providers
    FOR EACH STATEMENT EXECUTE FUNCTION iam_generation_bump();
