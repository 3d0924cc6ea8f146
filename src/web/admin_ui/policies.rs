//! `/admin/policies`: managed policies with their versions (make one the default,
//! delete another, compare two side by side), where each is attached (attach to a
//! role, detach), a new version or a new policy in the policy editor; and the
//! inline policies roles hold.
//!
//! The policy editor (`templates/admin/policy_editor.html`, driven by
//! `static/admin-policies.js`) is a textarea validated as you type by the server's
//! validator (`POST /admin/api/v1/policies/validate`), which marks the error's line
//! and column and keeps Save disabled while the document is invalid. Another page
//! uses it by giving its template a [`PolicyEditor`] named `editor`, including
//! `admin/policy_editor.html` inside a `data-api` form, and loading
//! `/static/admin-policies.js` in its `scripts` block.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::line_diff::{Row, side_by_side};
use super::{AdminPage, Layout, Section, render, unavailable};
use crate::store::{ManagedPolicy, PolicyScope, PolicyUse, StoreError};
use crate::web::AppState;
use crate::web::page::PageError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/policies", web::get().to(list))
        .route("/policies/new", web::get().to(new_policy))
        .route("/policies/{policy_id}", web::get().to(detail));
}

/// A policy editor on a page: a textarea named `name` (a JSON pointer `/name` for
/// the API's errors) holding `document`, validated as a `kind` policy (`identity`,
/// `trust`, ...), as a customer managed one when `customer`, or as one when the
/// form's field `customer_field` is not empty.
pub struct PolicyEditor {
    /// The textarea's id (unique on the page).
    pub id: String,
    pub name: String,
    pub label: String,
    pub document: String,
    pub kind: &'static str,
    pub customer: bool,
    pub customer_field: String,
}

impl PolicyEditor {
    /// An identity policy editor for the field `document`.
    pub fn identity(id: &str, label: &str, document: String, customer: bool) -> Self {
        Self {
            id: id.to_owned(),
            name: "document".to_owned(),
            label: label.to_owned(),
            document,
            kind: "identity",
            customer,
            customer_field: String::new(),
        }
    }
}

/// The form that edits one inline policy of a role (`admin/inline_policy_form.html`,
/// which expects it as `inline`): its document in a [`PolicyEditor`], saved with
/// `PUT .../inline-policies/{name}`, and a delete button. A new one (no name yet)
/// asks for the name and sends to the path with it.
// For the role page (the accounts and roles pages), which shows inline policies.
pub struct InlinePolicyForm {
    /// The role's API path (`/admin/api/v1/accounts/{account}/roles/{role}`).
    pub role_api: String,
    /// Empty for a new inline policy.
    pub name: String,
    pub editor: PolicyEditor,
}

impl InlinePolicyForm {
    /// The form of the inline policy `name` of a role, holding `document` as stored.
    pub fn existing(account: &str, role: &str, name: &str, document: &str) -> Self {
        Self {
            role_api: format!("/admin/api/v1/accounts/{account}/roles/{role}"),
            name: name.to_owned(),
            editor: PolicyEditor::identity(
                &format!("inline-{name}"),
                &format!("Inline policy {name}"),
                shown_document(document),
                true,
            ),
        }
    }

    /// The form that adds an inline policy to a role.
    pub fn new_for(account: &str, role: &str) -> Self {
        Self {
            role_api: format!("/admin/api/v1/accounts/{account}/roles/{role}"),
            name: String::new(),
            editor: PolicyEditor::identity("inline-new", "Document", STARTER.to_owned(), true),
        }
    }

    /// Where the form sends (for an existing policy).
    pub fn api(&self) -> String {
        format!("{}/inline-policies/{}", self.role_api, self.name)
    }
}

/// A stored document as shown and edited: as written when it spans lines, else
/// pretty-printed.
pub fn shown_document(text: &str) -> String {
    if text.contains('\n') {
        return text.to_owned();
    }
    serde_json::from_str::<serde_json::Value>(text)
        .map(|value| super::pretty(&value))
        .unwrap_or_else(|_| text.to_owned())
}

/// What a new policy starts from.
const STARTER: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": [\"s3:GetObject\"],\n      \"Resource\": \"*\"\n    }\n  ]\n}";

struct PolicyRow {
    id: String,
    name: String,
    arn: String,
    scope: String,
    description: String,
    default_version: String,
    used_by: usize,
}

struct InlineRow {
    account: String,
    role: String,
    name: String,
}

#[derive(Template)]
#[template(path = "admin/policies.html")]
struct ListPage {
    layout: Layout,
    policies: Vec<PolicyRow>,
    inline: Vec<InlineRow>,
}

fn scope_of(policy: &ManagedPolicy) -> String {
    policy.account_id.as_ref().map_or_else(
        || "Global".to_owned(),
        |account| format!("Account {account}"),
    )
}

/// Every managed policy: global ones, then each account's.
async fn all_policies(state: &AppState) -> Result<Vec<ManagedPolicy>, PageError> {
    let store = state.store.as_ref();
    let mut all = store
        .list_policies(PolicyScope::Global)
        .await
        .map_err(unavailable)?;
    for account in store.list_accounts().await.map_err(unavailable)? {
        all.extend(
            store
                .list_policies(PolicyScope::Account(&account.id))
                .await
                .map_err(unavailable)?,
        );
    }
    Ok(all)
}

/// `?arn=`: a link that knows a policy by its ARN (the role page's) goes to it.
#[derive(Deserialize)]
struct ByArn {
    arn: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    admin: AdminPage,
    query: web::Query<ByArn>,
) -> Result<HttpResponse, PageError> {
    let store = state.store.as_ref();
    if let Some(arn) = &query.arn {
        return match store.get_policy(arn).await {
            Ok(policy) => Ok(crate::web::page::redirect(&format!(
                "/admin/policies/{}",
                policy.id
            ))),
            Err(StoreError::NotFound { .. }) => Err(PageError::new(
                StatusCode::NOT_FOUND,
                "No such policy",
                format!("There is no managed policy {arn}."),
            )
            .next("/admin/policies", "Policies")),
            Err(error) => Err(unavailable(error)),
        };
    }
    let mut policies = Vec::new();
    for policy in all_policies(&state).await? {
        let used_by = store
            .policy_uses(&policy.arn)
            .await
            .map_err(unavailable)?
            .len();
        policies.push(PolicyRow {
            scope: scope_of(&policy),
            id: policy.id,
            name: policy.name.to_string(),
            arn: policy.arn,
            description: policy.description,
            default_version: policy.default_version_id,
            used_by,
        });
    }
    let mut inline = Vec::new();
    for role in store.list_all_roles().await.map_err(unavailable)? {
        for policy in store
            .list_role_policies(&role.account_id, &role.name)
            .await
            .map_err(unavailable)?
        {
            inline.push(InlineRow {
                account: role.account_id.to_string(),
                role: role.name.to_string(),
                name: policy.name.to_string(),
            });
        }
    }
    render(&ListPage {
        layout: admin.layout(Section::Policies, "Policies"),
        policies,
        inline,
    })
}

#[derive(Template)]
#[template(path = "admin/policy_new.html")]
struct NewPage {
    layout: Layout,
    accounts: Vec<String>,
    editor: PolicyEditor,
}

async fn new_policy(
    state: web::Data<AppState>,
    admin: AdminPage,
) -> Result<HttpResponse, PageError> {
    let accounts = state
        .store
        .list_accounts()
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|account| account.id.to_string())
        .collect();
    let mut editor = PolicyEditor::identity(
        "policy-document",
        "Policy document",
        STARTER.to_owned(),
        false,
    );
    editor.customer_field = "account".to_owned();
    render(&NewPage {
        layout: admin.layout(Section::Policies, "New policy"),
        accounts,
        editor,
    })
}

struct VersionRow {
    id: String,
    created: String,
    is_default: bool,
    document: String,
}

struct UseRow {
    holder: String,
    account: String,
    name: String,
    usage: String,
    /// The page of the role (IAM users have none).
    href: Option<String>,
    /// The admin API path that detaches it (attached roles only).
    detach: Option<String>,
}

impl UseRow {
    fn of(policy_id: &str, used: PolicyUse) -> Self {
        let role = used.holder == "role";
        Self {
            href: role.then(|| format!("/admin/accounts/{}/roles/{}", used.account_id, used.name)),
            detach: (role && used.usage == "attached").then(|| {
                format!(
                    "/admin/api/v1/accounts/{}/roles/{}/attached-policies/{policy_id}",
                    used.account_id, used.name
                )
            }),
            holder: if role { "Role" } else { "IAM user" }.to_owned(),
            account: used.account_id,
            name: used.name,
            usage: if used.usage == "boundary" {
                "permissions boundary"
            } else {
                "attached"
            }
            .to_owned(),
        }
    }
}

/// A role the policy can be attached to.
struct RoleOption {
    /// The admin API path that attaches the policy to it.
    api: String,
    label: String,
}

struct Comparison {
    left: String,
    right: String,
    rows: Vec<Row>,
    identical: bool,
}

#[derive(Template)]
#[template(path = "admin/policy.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    name: String,
    arn: String,
    scope: String,
    description: String,
    default_version: String,
    versions: Vec<VersionRow>,
    /// IAM keeps at most five versions.
    at_version_limit: bool,
    uses: Vec<UseRow>,
    attachable: Vec<RoleOption>,
    compare_left: String,
    compare_right: String,
    comparison: Option<Comparison>,
    editor: PolicyEditor,
}

#[derive(Deserialize)]
struct CompareQuery {
    /// The version on the left.
    a: Option<String>,
    /// The version on the right.
    b: Option<String>,
}

fn no_such_policy() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "No such policy",
        "There is no managed policy with this id.",
    )
    .next("/admin/policies", "Policies")
}

async fn detail(
    state: web::Data<AppState>,
    admin: AdminPage,
    path: web::Path<String>,
    query: web::Query<CompareQuery>,
) -> Result<HttpResponse, PageError> {
    let store = state.store.as_ref();
    let policy = match store.get_policy_by_id(&path).await {
        Ok(policy) => policy,
        Err(StoreError::NotFound { .. } | StoreError::Invalid(_)) => return Err(no_such_policy()),
        Err(other) => return Err(unavailable(other)),
    };
    let versions: Vec<VersionRow> = store
        .list_policy_versions(&policy.arn)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|version| VersionRow {
            id: version.version_id,
            created: version.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            is_default: version.is_default,
            document: shown_document(&version.document),
        })
        .collect();
    let uses: Vec<UseRow> = store
        .policy_uses(&policy.arn)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|used| UseRow::of(&policy.id, used))
        .collect();
    // A customer managed policy attaches to its own account's roles only.
    let accounts = match &policy.account_id {
        Some(account) => vec![account.clone()],
        None => store
            .list_accounts()
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|account| account.id)
            .collect(),
    };
    let mut attachable = Vec::new();
    for account in accounts {
        for role in store.list_roles(&account).await.map_err(unavailable)? {
            let attached = uses.iter().any(|u| {
                u.holder == "Role"
                    && u.usage == "attached"
                    && u.account == account.as_str()
                    && u.name.eq_ignore_ascii_case(role.name.as_str())
            });
            if !attached {
                attachable.push(RoleOption {
                    api: format!(
                        "/admin/api/v1/accounts/{account}/roles/{}/attached-policies/{}",
                        role.name, policy.id
                    ),
                    label: format!("{} (account {account})", role.name),
                });
            }
        }
    }
    let query = query.into_inner();
    let default_index = versions.iter().position(|v| v.is_default).unwrap_or(0);
    // By default the version before the default against the default.
    let compare_right = query
        .b
        .clone()
        .unwrap_or_else(|| policy.default_version_id.clone());
    let compare_left = query.a.clone().unwrap_or_else(|| {
        versions
            .get(default_index.saturating_sub(1))
            .map(|v| v.id.clone())
            .unwrap_or_default()
    });
    let comparison = match (&query.a, &query.b) {
        (Some(a), Some(b)) => {
            let find = |id: &str| versions.iter().find(|v| v.id == *id);
            match (find(a), find(b)) {
                (Some(left), Some(right)) => Some(Comparison {
                    left: left.id.clone(),
                    right: right.id.clone(),
                    identical: left.document == right.document,
                    rows: side_by_side(&left.document, &right.document),
                }),
                _ => None,
            }
        }
        _ => None,
    };
    let default_document = versions
        .get(default_index)
        .map(|v| v.document.clone())
        .unwrap_or_default();
    let editor = PolicyEditor::identity(
        "version-document",
        "Document of the new version",
        default_document,
        policy.account_id.is_some(),
    );
    render(&DetailPage {
        layout: admin.layout(Section::Policies, format!("Policy {}", policy.name)),
        scope: scope_of(&policy),
        id: policy.id,
        name: policy.name.to_string(),
        arn: policy.arn,
        description: policy.description,
        default_version: policy.default_version_id,
        at_version_limit: versions.len() >= 5,
        versions,
        uses,
        attachable,
        compare_left,
        compare_right,
        comparison,
        editor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Template)]
    #[template(
        source = "{% include \"admin/inline_policy_form.html\" %}",
        ext = "html"
    )]
    struct InlinePreview {
        inline: InlinePolicyForm,
    }

    #[test]
    fn the_inline_policy_form_sends_to_the_role_s_inline_policy() {
        let existing = InlinePreview {
            inline: InlinePolicyForm::existing("123456789012", "Dev", "Logs", "{\"Statement\":[]}"),
        }
        .render()
        .unwrap();
        let api = "/admin/api/v1/accounts/123456789012/roles/Dev/inline-policies/Logs";
        assert!(existing.contains(&format!("data-api=\"{api}\" data-method=\"PUT\"")));
        assert!(existing.contains(&format!("data-api=\"{api}\" data-method=\"DELETE\"")));
        assert!(existing.contains("id=\"inline-Logs\""));
        assert!(existing.contains("class=\"policy-editor\""));
        let new = InlinePreview {
            inline: InlinePolicyForm::new_for("123456789012", "Dev"),
        }
        .render()
        .unwrap();
        assert!(new.contains("data-api-name"));
        assert!(new.contains("data-customer=\"true\""));
    }
}
