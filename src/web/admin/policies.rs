//! Managed policies, global or customer managed in an account, and their versions
//! (at most five, one the default). A policy is named in paths by its unique id
//! (`ANPA...`, the `id` field): it never changes and needs no escaping, unlike the
//! ARN. Also the policy-document helpers the role and IAM-user modules share:
//! documents are taken as JSON objects (or their text) and validated by the policy
//! engine before anything is stored.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::accounts::{account_in_path, invalid_at};
use super::auth::{AdminRead, AdminWrite};
use super::common::{audit_change, created, listed, when_conflict, when_not_found};
use super::error::AdminError;
use crate::iam::{AccountId, Description, IamPath, PolicyName};
use crate::policy::{LIMIT_EXCEEDED, ParseOptions, Policy, PolicyKind, warnings};
use crate::store::{
    ManagedPolicy, NamedDocument, NewManagedPolicy, PolicyScope, PolicyVersion, StoreError,
};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Before `/policies/{policy_id}`, which would take `validate` for an id.
    cfg.route("/policies/validate", web::post().to(validate))
        .route("/policies", web::get().to(list))
        .route("/policies", web::post().to(create))
        .route("/policies/{policy_id}", web::get().to(get))
        .route("/policies/{policy_id}", web::delete().to(delete))
        .route(
            "/policies/{policy_id}/attachments",
            web::get().to(attachments),
        )
        .route(
            "/policies/{policy_id}/versions",
            web::get().to(list_versions),
        )
        .route(
            "/policies/{policy_id}/versions",
            web::post().to(create_version),
        )
        .route(
            "/policies/{policy_id}/default-version",
            web::put().to(set_default_version),
        )
        .route(
            "/policies/{policy_id}/versions/{version_id}",
            web::delete().to(delete_version),
        );
}

/// A policy document as the API takes it: a JSON object, or its text in a string
/// (kept as written, so what IAM tools print round-trips).
pub(super) fn document_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A stored document as the API shows it: as JSON (stored documents are valid).
pub(crate) fn document_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Validates a document with the policy engine: the policy, or 422
/// `MALFORMED_POLICY_DOCUMENT` (or `POLICY_TOO_LARGE`) naming `what` and the
/// engine's detail, with `pointer` at the field (`None`: the document's own pointer,
/// for a body that is the document) and the `location` in the document.
fn parse_document(
    text: &str,
    kind: PolicyKind,
    customer: bool,
    what: &str,
    pointer: Option<&str>,
) -> Result<Policy, AdminError> {
    let options = ParseOptions {
        kind,
        enforce_customer_size_limit: customer,
    };
    Policy::parse(text, options).map_err(|error| {
        let code = if error.code() == LIMIT_EXCEEDED {
            "POLICY_TOO_LARGE"
        } else {
            "MALFORMED_POLICY_DOCUMENT"
        };
        let location = error.location().clone();
        let pointer = pointer
            .map(str::to_owned)
            .or_else(|| location.pointer.clone());
        AdminError::invalid(code, format!("{what}: {error:#}"), pointer).with_location(location)
    })
}

/// Validates a document with the policy engine before anything is stored (see
/// [`parse_document`]), with `pointer` at the field.
pub(super) fn check_document(
    text: &str,
    kind: PolicyKind,
    customer: bool,
    what: &str,
    pointer: &str,
) -> Result<(), AdminError> {
    parse_document(text, kind, customer, what, Some(pointer)).map(|_| ())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateQuery {
    /// `identity` (default), `trust`, `resource` or `session`.
    #[serde(default)]
    kind: Option<String>,
    /// Validate as a customer managed policy (size quota, Version required).
    #[serde(default)]
    customer: bool,
}

/// `POST /policies/validate`: the body is a policy document (a JSON object, or its
/// text in a string); 200 `{"valid": true, "warnings": [...]}`, or 422 with the
/// fault's `location`. Stores nothing, so it is open to readers.
async fn validate(
    _admin: AdminRead,
    query: web::Query<ValidateQuery>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AdminError> {
    let query = query.into_inner();
    let kind = match query.kind.as_deref() {
        None => PolicyKind::Identity,
        Some(raw) => raw
            .parse()
            .map_err(|error: crate::policy::UnknownPolicyKind| {
                AdminError::invalid("VALIDATION_ERROR", error.to_string(), None)
            })?,
    };
    let text = document_text(&body);
    let policy = parse_document(&text, kind, query.customer, "policy document", None)?;
    Ok(HttpResponse::Ok().json(json!({
        "valid": true,
        "kind": kind.as_str(),
        "warnings": warnings(&policy),
    })))
}

/// Managed policies an entity refers to by ARN must exist: 422 `UNKNOWN_POLICY` at
/// `pointer` otherwise (before anything is written).
pub(super) async fn check_policy_exists(
    state: &AppState,
    arn: &str,
    pointer: &str,
) -> Result<(), AdminError> {
    match state.store.get_policy(arn).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound { .. } | StoreError::Invalid(_)) => Err(AdminError::invalid(
            "UNKNOWN_POLICY",
            format!("there is no managed policy {arn}"),
            Some(pointer.to_owned()),
        )),
        Err(other) => Err(other.into()),
    }
}

/// A role's or IAM user's inline policies, checked in full: (name, text) each, with
/// errors pointing at the policy by name. `owner` names the entity ("role Admin").
pub(super) fn check_inline_policies(
    policies: &Map<String, Value>,
    owner: &str,
) -> Result<Vec<(PolicyName, String)>, AdminError> {
    let mut checked = Vec::with_capacity(policies.len());
    for (name, document) in policies {
        // JSON pointer escaping of the key (RFC 6901); IAM names hold neither.
        let pointer = format!(
            "/inline_policies/{}",
            name.replace('~', "~0").replace('/', "~1")
        );
        let policy_name = PolicyName::parse(name.as_str()).map_err(|e| invalid_at(&pointer, e))?;
        let text = document_text(document);
        check_document(
            &text,
            PolicyKind::Identity,
            true,
            &format!("inline policy {name} of {owner}"),
            &pointer,
        )?;
        checked.push((policy_name, text));
    }
    Ok(checked)
}

/// Managed policies attached by ARN, each of which must exist.
pub(super) async fn check_attached_policies(
    state: &AppState,
    arns: &[String],
) -> Result<(), AdminError> {
    for (index, arn) in arns.iter().enumerate() {
        check_policy_exists(state, arn, &format!("/attached_policies/{index}")).await?;
    }
    Ok(())
}

/// A role's or IAM user's identity policies as shown: inline ones by name with
/// their documents, attached ones by ARN.
pub(super) fn identity_policies_view(
    documents: &[NamedDocument],
) -> (Map<String, Value>, Vec<Value>) {
    let mut inline = Map::new();
    let mut attached = Vec::new();
    for document in documents {
        // Attached policies are named by ARN; inline names cannot hold a colon.
        if document.source.starts_with("arn:") {
            attached.push(json!(document.source));
        } else {
            inline.insert(document.source.clone(), document_json(&document.document));
        }
    }
    (inline, attached)
}

/// An optional IAM path from the body (`/path`); absent: `/`.
pub(super) fn optional_iam_path(raw: Option<String>) -> Result<IamPath, AdminError> {
    raw.map(IamPath::parse)
        .transpose()
        .map_err(|e| invalid_at("/path", e))
        .map(Option::unwrap_or_default)
}

fn view(policy: &ManagedPolicy) -> Value {
    json!({
        "id": policy.id,
        "arn": policy.arn,
        "account": policy.account_id,
        "path": policy.path,
        "name": policy.name,
        "description": policy.description,
        "default_version_id": policy.default_version_id,
        "created_at": policy.created_at,
        "updated_at": policy.updated_at,
    })
}

fn version_view(version: &PolicyVersion) -> Value {
    json!({
        "version_id": version.version_id,
        "is_default": version.is_default,
        "created_at": version.created_at,
        "document": document_json(&version.document),
    })
}

fn target(policy: &ManagedPolicy) -> String {
    format!("policy/{}", policy.arn)
}

/// The policy a path names by id.
async fn policy_in_path(state: &AppState, id: &str) -> Result<ManagedPolicy, AdminError> {
    Ok(state.store.get_policy_by_id(id).await?)
}

/// The policy and its default document, as shown and audited.
async fn full_view(state: &AppState, policy: &ManagedPolicy) -> Result<Value, AdminError> {
    let document = state.store.policy_document(&policy.arn).await?;
    let mut body = view(policy);
    body["document"] = document_json(&document);
    Ok(body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// An account id, or `global`; absent: every policy.
    account: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    _admin: AdminRead,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AdminError> {
    let policies = match query.into_inner().account.as_deref() {
        Some("global") => state.store.list_policies(PolicyScope::Global).await?,
        Some(raw) => {
            let account = account_in_path(raw)?;
            state.store.get_account(&account).await?;
            state
                .store
                .list_policies(PolicyScope::Account(&account))
                .await?
        }
        None => {
            let mut all = state.store.list_policies(PolicyScope::Global).await?;
            for account in state.store.list_accounts().await? {
                all.extend(
                    state
                        .store
                        .list_policies(PolicyScope::Account(&account.id))
                        .await?,
                );
            }
            all
        }
    };
    Ok(HttpResponse::Ok().json(listed("policies", &policies, view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePolicy {
    /// The owning account (customer managed); absent or null: a global policy.
    #[serde(default)]
    account: Option<String>,
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    description: Option<String>,
    document: Value,
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    body: web::Json<CreatePolicy>,
) -> Result<HttpResponse, AdminError> {
    let body = body.into_inner();
    let account_id = body
        .account
        .map(AccountId::parse)
        .transpose()
        .map_err(|e| invalid_at("/account", e))?;
    let name = PolicyName::parse(body.name).map_err(|e| invalid_at("/name", e))?;
    let path = optional_iam_path(body.path)?;
    let description = Description::parse(body.description.unwrap_or_default())
        .map_err(|e| invalid_at("/description", e))?;
    let document = document_text(&body.document);
    let customer = account_id.is_some();
    check_document(
        &document,
        PolicyKind::Identity,
        customer,
        &format!("policy {name}"),
        "/document",
    )?;
    if let Some(account) = &account_id {
        state
            .store
            .get_account(account)
            .await
            .map_err(when_not_found(|| {
                AdminError::invalid(
                    "UNKNOWN_ACCOUNT",
                    format!("account {account} does not exist"),
                    Some("/account".into()),
                )
            }))?;
    }
    let policy = state
        .store
        .create_policy(&NewManagedPolicy {
            account_id,
            path,
            name,
            description,
            document,
        })
        .await?;
    let after = full_view(&state, &policy).await?;
    Ok(created(
        &state,
        &request,
        &admin,
        "admin:CreatePolicy",
        &target(&policy),
        &format!("/policies/{}", policy.id),
        after,
    )
    .await)
}

async fn get(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let policy = policy_in_path(&state, &path).await?;
    Ok(HttpResponse::Ok().json(full_view(&state, &policy).await?))
}

async fn delete(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let policy = policy_in_path(&state, &path).await?;
    let before = full_view(&state, &policy).await?;
    state.store.delete_policy(&policy.arn).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:DeletePolicy",
        &target(&policy),
        json!({ "before": before }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /policies/{policy_id}/attachments`: the roles and IAM users that hold it.
async fn attachments(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let policy = policy_in_path(&state, &path).await?;
    let uses = state.store.policy_uses(&policy.arn).await?;
    let mut body = listed("attachments", &uses, |u| u.clone());
    body["policy_id"] = json!(policy.id);
    Ok(HttpResponse::Ok().json(body))
}

async fn list_versions(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let policy = policy_in_path(&state, &path).await?;
    let versions = state.store.list_policy_versions(&policy.arn).await?;
    let mut body = listed("versions", &versions, version_view);
    body["policy_id"] = json!(policy.id);
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateVersion {
    document: Value,
    #[serde(default)]
    set_as_default: bool,
}

async fn create_version(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<CreateVersion>,
) -> Result<HttpResponse, AdminError> {
    let policy = policy_in_path(&state, &path).await?;
    let body = body.into_inner();
    let document = document_text(&body.document);
    check_document(
        &document,
        PolicyKind::Identity,
        policy.account_id.is_some(),
        &format!("policy {}", policy.name),
        "/document",
    )?;
    let version = state
        .store
        .create_policy_version(&policy.arn, &document, body.set_as_default)
        .await?;
    let after = version_view(&version);
    audit_change(&state, &request, &admin, "admin:CreatePolicyVersion", &target(&policy), json!({ "policy_id": policy.id, "before_default": policy.default_version_id, "after": after })).await;
    Ok(HttpResponse::Created().json(after))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultVersion {
    version_id: String,
}

async fn set_default_version(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<DefaultVersion>,
) -> Result<HttpResponse, AdminError> {
    let policy = policy_in_path(&state, &path).await?;
    let version_id = body.into_inner().version_id;
    state
        .store
        .set_default_policy_version(&policy.arn, &version_id)
        .await
        .map_err(when_not_found(|| {
            AdminError::invalid(
                "UNKNOWN_VERSION",
                format!("policy {} has no version {version_id:?}", policy.arn),
                Some("/version_id".into()),
            )
        }))?;
    let after = policy_in_path(&state, &policy.id).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:SetDefaultPolicyVersion",
        &target(&policy),
        json!({
            "policy_id": policy.id,
            "before": { "default_version_id": policy.default_version_id },
            "after": { "default_version_id": after.default_version_id },
        }),
    )
    .await;
    Ok(HttpResponse::Ok().json(view(&after)))
}

async fn delete_version(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (policy_id, version_id) = path.into_inner();
    let policy = policy_in_path(&state, &policy_id).await?;
    let before = state
        .store
        .get_policy_version(&policy.arn, &version_id)
        .await?;
    state
        .store
        .delete_policy_version(&policy.arn, &version_id)
        .await
        .map_err(when_conflict(|message| {
            format!("{message} Make another version the default first (PUT .../default-version).")
        }))?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:DeletePolicyVersion",
        &target(&policy),
        json!({ "policy_id": policy.id, "before": version_view(&before) }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}
