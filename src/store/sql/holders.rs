//! What roles and IAM users share: both hold inline and attached identity policies,
//! in their own tables under the same rules.

use sqlx::{Database, Postgres, Sqlite};

use super::{SqlStore, check_document};
use crate::iam::{AccountId, IamPath, PolicyName};
use crate::policy::PolicyKind;
use crate::store::{NamedDocument, StoreResult};

/// Who holds inline and attached policies: roles and IAM users keep them in their
/// own tables, under the same rules.
#[derive(Debug, Clone, Copy)]
pub(super) enum PolicyHolder {
    Role,
    IamUser,
}

impl PolicyHolder {
    fn inline_table(self) -> &'static str {
        match self {
            PolicyHolder::Role => "role_inline_policies",
            PolicyHolder::IamUser => "iam_user_inline_policies",
        }
    }

    fn attachment_table(self) -> &'static str {
        match self {
            PolicyHolder::Role => "role_policy_attachments",
            PolicyHolder::IamUser => "iam_user_policy_attachments",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            PolicyHolder::Role => "role_id",
            PolicyHolder::IamUser => "user_id",
        }
    }
}

macro_rules! impl_policy_holders {
    ($db:ty) => {
        impl SqlStore<$db> {
            /// Inline documents of a holder, then the default versions of its attached
            /// managed policies.
            pub(super) async fn identity_documents(
                &self,
                conn: &mut <$db as Database>::Connection,
                holder: (PolicyHolder, &str),
            ) -> StoreResult<Vec<NamedDocument>> {
                let (kind, holder_id) = holder;
                let mut documents: Vec<NamedDocument> = sqlx::query_as::<_, (String, String)>(
                    &format!(
                        "SELECT name, document FROM {table} WHERE {id} = $1 ORDER BY name",
                        table = kind.inline_table(),
                        id = kind.id_column(),
                    ),
                )
                .bind(holder_id)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(source, document)| NamedDocument { source, document })
                .collect();
                let attached = sqlx::query_as::<_, (Option<String>, String, String, String)>(&format!(
                    "SELECT p.account_id, p.path, p.name, v.document FROM {table} a \
                     JOIN managed_policies p ON p.id = a.policy_id \
                     JOIN policy_versions v ON v.policy_id = p.id AND v.version_id = p.default_version_id \
                     WHERE a.{id} = $1 ORDER BY lower(p.name)",
                    table = kind.attachment_table(),
                    id = kind.id_column(),
                ))
                .bind(holder_id)
                .fetch_all(&mut *conn)
                .await?;
                for (owner, path, name, document) in attached {
                    let owner = owner.map(AccountId::parse).transpose()?;
                    let path = IamPath::parse(path)?;
                    documents.push(NamedDocument {
                        source: self.partition.policy_arn(owner.as_ref(), &path, &name).to_string(),
                        document,
                    });
                }
                Ok(documents)
            }

            /// Gives a new holder its inline policies, then its attachments.
            pub(super) async fn hold_policies(
                &self,
                conn: &mut <$db as Database>::Connection,
                holder: (PolicyHolder, &str),
                inline: &[(PolicyName, String)],
                attached: &[String],
            ) -> StoreResult<()> {
                for (name, document) in inline {
                    self.upsert_inline(&mut *conn, holder, name, document).await?;
                }
                for arn in attached {
                    self.attach(&mut *conn, holder, arn).await?;
                }
                Ok(())
            }

            pub(super) async fn attach(
                &self,
                conn: &mut <$db as Database>::Connection,
                holder: (PolicyHolder, &str),
                policy_arn: &str,
            ) -> StoreResult<()> {
                let (kind, holder_id) = holder;
                let policy = self.policy_row(&mut *conn, policy_arn).await?;
                sqlx::query(&format!(
                    "INSERT INTO {table} ({id}, policy_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    table = kind.attachment_table(),
                    id = kind.id_column(),
                ))
                .bind(holder_id)
                .bind(&policy.id)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            pub(super) async fn upsert_inline(
                &self,
                conn: &mut <$db as Database>::Connection,
                holder: (PolicyHolder, &str),
                name: &PolicyName,
                document: &str,
            ) -> StoreResult<()> {
                let (kind, holder_id) = holder;
                check_document(
                    document,
                    PolicyKind::Identity,
                    true,
                    &format!("inline policy {name}"),
                )?;
                sqlx::query(&format!(
                    "INSERT INTO {table} ({id}, name, document) VALUES ($1, $2, $3) \
                     ON CONFLICT ({id}, name) DO UPDATE SET document = excluded.document",
                    table = kind.inline_table(),
                    id = kind.id_column(),
                ))
                .bind(holder_id)
                .bind(name.as_str())
                .bind(document)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }
    };
}

impl_policy_holders!(Sqlite);
impl_policy_holders!(Postgres);
