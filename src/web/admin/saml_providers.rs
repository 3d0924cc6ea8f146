//! IAM SAML providers: the SAML IdPs an account trusts for AssumeRoleWithSAML, each
//! holding the IdP's metadata document, as IAM's CreateSAMLProvider, GetSAMLProvider,
//! UpdateSAMLProvider, ListSAMLProviders and DeleteSAMLProvider manage them. Named in
//! paths by account and name (`/saml-providers/123456789012/Corp`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::accounts::{account_in_path, existing_account};
use super::auth::{AdminRead, AdminWrite};
use super::common::{audit_change, created, listed};
use super::error::AdminError;
use crate::iam::AccountId;
use crate::idp::saml::{IdpMetadata, parse_idp_metadata};
use crate::store::{NewSamlProvider, SamlProvider, StoreError, check_saml_provider_name};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/saml-providers", web::get().to(list))
        .route("/saml-providers", web::post().to(create))
        .route("/saml-providers/{account}/{name}", web::get().to(get))
        .route("/saml-providers/{account}/{name}", web::put().to(update))
        .route("/saml-providers/{account}/{name}", web::delete().to(delete));
}

/// What the metadata says, for people checking they uploaded the right document.
fn metadata_view(metadata: Option<&IdpMetadata>) -> Value {
    match metadata {
        Some(metadata) => json!({
            "entity_id": metadata.entity_id,
            "signing_certificates": metadata.signing_certs.len(),
        }),
        None => Value::Null,
    }
}

fn view(provider: &SamlProvider) -> Value {
    let metadata = parse_idp_metadata(&provider.metadata_document).ok();
    json!({
        "arn": provider.arn,
        "account_id": provider.account_id,
        "name": provider.name,
        "idp": metadata_view(metadata.as_ref()),
        "metadata_document": provider.metadata_document,
        "created_at": provider.created_at,
        "updated_at": provider.updated_at,
    })
}

/// The list leaves the (large) documents out.
fn summary(provider: &SamlProvider) -> Value {
    let mut view = view(provider);
    if let Some(object) = view.as_object_mut() {
        object.remove("metadata_document");
    }
    view
}

fn target(provider: &SamlProvider) -> String {
    format!("saml-provider/{}", provider.arn)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    account_id: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    _admin: AdminRead,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AdminError> {
    let mut providers = state.store.list_saml_providers().await?;
    if let Some(account) = &query.account_id {
        let account = existing_account(&state, account).await?;
        providers.retain(|p| p.account_id == account);
    }
    Ok(HttpResponse::Ok().json(listed("saml_providers", &providers, summary)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProvider {
    account_id: String,
    name: String,
    metadata_document: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateProvider {
    metadata_document: String,
}

/// The metadata must parse with an entity ID and a signing certificate (IAM's
/// "Could not parse metadata").
fn checked_metadata(document: &str) -> Result<(), AdminError> {
    parse_idp_metadata(document).map(drop).map_err(|error| {
        AdminError::invalid(
            "INVALID_SAML_METADATA",
            format!("Could not parse metadata: {error}"),
            Some("/metadata_document".into()),
        )
    })
}

/// Store validation errors located at the body's fields.
fn store_error(error: StoreError) -> AdminError {
    match error {
        StoreError::Invalid(invalid) => {
            let pointer = if invalid.field == "Name" {
                "/name"
            } else {
                "/metadata_document"
            };
            AdminError::invalid("VALIDATION_ERROR", invalid.message, Some(pointer.into()))
        }
        other => other.into(),
    }
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    body: web::Json<CreateProvider>,
) -> Result<HttpResponse, AdminError> {
    let body = body.into_inner();
    let account = AccountId::parse(body.account_id.clone()).map_err(|e| {
        AdminError::invalid("VALIDATION_ERROR", e.message, Some("/account_id".into()))
    })?;
    state
        .store
        .get_account(&account)
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => AdminError::invalid(
                "VALIDATION_ERROR",
                format!("account {account} does not exist"),
                Some("/account_id".into()),
            ),
            other => other.into(),
        })?;
    check_saml_provider_name(&body.name)
        .map_err(|e| AdminError::invalid("VALIDATION_ERROR", e.message, Some("/name".into())))?;
    checked_metadata(&body.metadata_document)?;
    let provider = state
        .store
        .create_saml_provider(&NewSamlProvider {
            account_id: account.clone(),
            name: body.name,
            metadata_document: body.metadata_document,
        })
        .await
        .map_err(store_error)?;
    let after = summary(&provider);
    let location = format!("/saml-providers/{account}/{}", provider.name);
    let response = created(
        &state,
        &request,
        &admin,
        "admin:CreateSamlProvider",
        &target(&provider),
        &location,
        after,
    )
    .await;
    Ok(response)
}

async fn provider_in_path(
    state: &AppState,
    path: (String, String),
) -> Result<(AccountId, SamlProvider), AdminError> {
    let account = account_in_path(&path.0)?;
    let provider = state.store.get_saml_provider(&account, &path.1).await?;
    Ok((account, provider))
}

async fn get(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (_, provider) = provider_in_path(&state, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view(&provider)))
}

async fn update(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
    body: web::Json<UpdateProvider>,
) -> Result<HttpResponse, AdminError> {
    let (account, before) = provider_in_path(&state, path.into_inner()).await?;
    checked_metadata(&body.metadata_document)?;
    let after = state
        .store
        .update_saml_provider_metadata(&account, &before.name, &body.metadata_document)
        .await
        .map_err(store_error)?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:UpdateSamlProvider",
        &target(&after),
        json!({ "before": summary(&before), "after": summary(&after) }),
    )
    .await;
    Ok(HttpResponse::Ok().json(view(&after)))
}

async fn delete(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, provider) = provider_in_path(&state, path.into_inner()).await?;
    state
        .store
        .delete_saml_provider(&account, &provider.name)
        .await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:DeleteSamlProvider",
        &target(&provider),
        json!({ "before": summary(&provider) }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}
