//! `/admin/accounts`: accounts and their roles, with a search box; an account's
//! page; and a role's page: its trust policy, permission policies (attached managed
//! and inline), boundary and maximum session duration, who can reach it (the access
//! view: each recently seen person with the rules and claim values that grant it),
//! "revoke active sessions", and an edit form for the description, maximum
//! duration and trust policy that `admin.js` sends to the API's PUT with the
//! version it was read at (`If-Match`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use super::policies::InlinePolicyForm;
use super::{AdminPage, Layout, Section, pretty, render, unavailable};
use crate::iam::{AccountId, RoleName};
use crate::service::rulesets::Holder;
use crate::store::{Account, Role, StoreError};
use crate::web::AppState;
use crate::web::admin::{PREFIX as API, content_etag, role_view};
use crate::web::page::{PageError, path_segment};

const BASE: &str = "/admin/accounts";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts", web::get().to(list))
        .route("/accounts/{account}", web::get().to(account))
        .route("/accounts/{account}/roles/{role}", web::get().to(role));
}

fn role_href(account: &AccountId, role: &RoleName) -> String {
    format!("{BASE}/{account}/roles/{}", path_segment(role.as_str()))
}

/// A duration in seconds as people say it (`1 h`, `1 h 30 min`).
fn duration(seconds: i64) -> String {
    let (hours, minutes) = (seconds / 3600, (seconds % 3600) / 60);
    match (hours, minutes) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

struct RoleRow {
    name: String,
    href: String,
    description: String,
    max_duration: String,
}

fn role_row(role: &Role) -> RoleRow {
    RoleRow {
        name: role.name.to_string(),
        href: role_href(&role.account_id, &role.name),
        description: role.description.clone(),
        max_duration: duration(role.max_session_duration.seconds()),
    }
}

struct AccountRows {
    id: String,
    name: String,
    href: String,
    roles: Vec<RoleRow>,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct ListPage {
    layout: Layout,
    query: String,
    accounts: Vec<AccountRows>,
    /// Roles listed (after the search).
    shown: usize,
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

/// Whether `needle` (lower-cased) is in any of `haystacks`, ignoring case.
fn found(needle: &str, haystacks: &[&str]) -> bool {
    needle.is_empty() || haystacks.iter().any(|h| h.to_lowercase().contains(needle))
}

async fn list(
    state: web::Data<AppState>,
    admin: AdminPage,
    search: web::Query<Search>,
) -> Result<HttpResponse, PageError> {
    let query = search.q.trim().to_owned();
    let needle = query.to_lowercase();
    let mut accounts = Vec::new();
    let mut shown = 0;
    // Every role in one query, by account.
    let mut by_account: std::collections::HashMap<String, Vec<Role>> = Default::default();
    for role in state.store.list_all_roles().await.map_err(unavailable)? {
        by_account
            .entry(role.account_id.to_string())
            .or_default()
            .push(role);
    }
    for account in state.store.list_accounts().await.map_err(unavailable)? {
        let roles = by_account.remove(account.id.as_str()).unwrap_or_default();
        let account_matches = found(&needle, &[account.id.as_str(), &account.name]);
        let roles: Vec<RoleRow> = roles
            .iter()
            .filter(|role| {
                account_matches
                    || found(
                        &needle,
                        &[role.name.as_str(), &role.description, &role.arn.to_string()],
                    )
            })
            .map(role_row)
            .collect();
        if !account_matches && roles.is_empty() {
            continue;
        }
        shown += roles.len();
        accounts.push(AccountRows {
            href: format!("{BASE}/{}", account.id),
            id: account.id.to_string(),
            name: account.name,
            roles,
        });
    }
    render(&ListPage {
        layout: admin.layout(Section::Accounts, "Accounts and roles"),
        query,
        accounts,
        shown,
    })
}

fn not_found(what: String) -> PageError {
    PageError::new(StatusCode::NOT_FOUND, "Not found", what).next(BASE, "Accounts and roles")
}

async fn account_of(state: &AppState, raw: &str) -> Result<Account, PageError> {
    let missing = || not_found(format!("There is no account {raw:?}."));
    let id = AccountId::parse(raw).map_err(|_| missing())?;
    match state.store.get_account(&id).await {
        Ok(account) => Ok(account),
        Err(StoreError::NotFound { .. }) => Err(missing()),
        Err(error) => Err(unavailable(error)),
    }
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    layout: Layout,
    account: Account,
    roles: Vec<RoleRow>,
}

async fn account(
    state: web::Data<AppState>,
    admin: AdminPage,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let account = account_of(&state, &path).await?;
    let roles = state
        .store
        .list_roles(&account.id)
        .await
        .map_err(unavailable)?;
    render(&AccountPage {
        layout: admin.layout(Section::Accounts, format!("Account {}", account.id)),
        roles: roles.iter().map(role_row).collect(),
        account,
    })
}

/// A policy document shown on the role page.
struct Document {
    name: String,
    /// The policy's admin page (managed policies).
    href: Option<String>,
    text: String,
}

/// One person who can reach the role, and why.
struct Reach {
    person: String,
    source: String,
    href: String,
    /// `rule-id` → the claim values that matched.
    because: Vec<(String, String)>,
}

fn reach(holder: &Holder) -> Reach {
    Reach {
        person: holder.user_name.clone(),
        source: holder.source.clone(),
        href: format!(
            "/admin/people/{}/{}",
            path_segment(&holder.source),
            path_segment(&holder.subject)
        ),
        because: holder
            .granted_by
            .iter()
            .map(|by| (by.rule.clone(), by.matched.join(", ")))
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "admin/role.html")]
struct RolePage {
    layout: Layout,
    account: Account,
    role: Role,
    max_duration: String,
    revoked_before: String,
    trust_policy: String,
    attached: Vec<Document>,
    /// Each inline policy in its editor, then the form for a new one.
    inline: Vec<InlinePolicyForm>,
    new_inline: Vec<InlinePolicyForm>,
    boundary: Option<Document>,
    holders: Vec<Reach>,
    /// The API path of the role, its ETag, and the settings the edit form sends
    /// unchanged (PUT replaces them all).
    api: String,
    etag: String,
    keep_boundary: String,
    keep_tags: String,
    keep_inline: String,
    keep_attached: String,
}

fn policy_href(arn: &str) -> String {
    format!("/admin/policies?arn={}", path_segment(arn))
}

async fn role(
    state: web::Data<AppState>,
    admin: AdminPage,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (raw_account, raw_role) = path.into_inner();
    let account = account_of(&state, &raw_account).await?;
    let missing = || not_found(format!("Account {} has no role {raw_role:?}.", account.id));
    let name = RoleName::parse(&raw_role).map_err(|_| missing())?;
    let permissions = match state.store.role_permissions(&account.id, &name).await {
        Ok(permissions) => permissions,
        Err(StoreError::NotFound { .. }) => return Err(missing()),
        Err(error) => return Err(unavailable(error)),
    };
    let view = role_view(&permissions);
    let role = permissions.role.clone();
    let holders = state
        .rulesets
        .holders(account.id.as_str(), role.name.as_str())
        .await
        .map_err(unavailable)?;
    let mut attached = Vec::new();
    let mut inline = Vec::new();
    for document in &permissions.identity_policies {
        let text = pretty(&crate::web::admin::document_json(&document.document));
        if document.source.starts_with("arn:") {
            attached.push(Document {
                href: Some(policy_href(&document.source)),
                name: document.source.clone(),
                text,
            });
        } else {
            inline.push(InlinePolicyForm::existing(
                account.id.as_str(),
                role.name.as_str(),
                &document.source,
                &text,
            ));
        }
    }
    let boundary = permissions.permissions_boundary.as_ref().map(|b| Document {
        href: Some(policy_href(&b.source)),
        name: b.source.clone(),
        text: pretty(&crate::web::admin::document_json(&b.document)),
    });
    let keep = |field: &str| pretty(view.get(field).unwrap_or(&Value::Null));
    render(&RolePage {
        layout: admin.layout(Section::Accounts, format!("Role {}", role.name)),
        max_duration: duration(role.max_session_duration.seconds()),
        revoked_before: role
            .revoke_sessions_before
            .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default(),
        trust_policy: keep("trust_policy"),
        attached,
        inline,
        new_inline: vec![InlinePolicyForm::new_for(
            account.id.as_str(),
            role.name.as_str(),
        )],
        boundary,
        holders: holders.iter().map(reach).collect(),
        api: format!(
            "{API}/accounts/{}/roles/{}",
            account.id,
            path_segment(role.name.as_str())
        ),
        etag: content_etag(&view),
        keep_boundary: keep("permissions_boundary"),
        keep_tags: keep("tags"),
        keep_inline: keep("inline_policies"),
        keep_attached: keep("attached_policies"),
        account,
        role,
    })
}
