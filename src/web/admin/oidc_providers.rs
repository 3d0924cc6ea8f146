//! An account's IAM OIDC providers: the issuers (and audiences) whose tokens
//! AssumeRoleWithWebIdentity trusts. Named in paths by their id (`AOPA...`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::accounts::{account_in_path, existing_account};
use super::auth::{AdminRead, AdminWrite};
use super::common::{audit_change, created, listed_in_account};
use super::error::AdminError;
use crate::iam::{AccountId, ProviderUrlKind, check_provider_url};
use crate::store::{NewOidcProvider, OidcProvider};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts/{account}/oidc-providers", web::get().to(list))
        .route("/accounts/{account}/oidc-providers", web::post().to(create))
        .route(
            "/accounts/{account}/oidc-providers/{provider_id}",
            web::get().to(get),
        )
        .route(
            "/accounts/{account}/oidc-providers/{provider_id}",
            web::delete().to(delete),
        );
}

/// IAM's limits on a provider's client ids (audiences).
const MAX_CLIENT_IDS: usize = 100;
const MAX_CLIENT_ID_CHARS: usize = 255;

fn view(provider: &OidcProvider) -> Value {
    json!({
        "id": provider.id,
        "arn": provider.arn,
        "account": provider.account_id,
        "url": provider.url,
        "client_ids": provider.client_ids,
        "created_at": provider.created_at,
    })
}

fn target(provider: &OidcProvider) -> String {
    format!("oidc-provider/{}", provider.arn)
}

async fn list(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let account = existing_account(&state, &path).await?;
    let mut providers = state.store.list_oidc_providers().await?;
    providers.retain(|p| p.account_id == account);
    let body = listed_in_account(&account, "oidc_providers", &providers, view);
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProvider {
    url: String,
    #[serde(default)]
    client_ids: Vec<String>,
}

fn check_client_ids(client_ids: &[String]) -> Result<(), AdminError> {
    if client_ids.len() > MAX_CLIENT_IDS {
        return Err(AdminError::invalid(
            "VALIDATION_ERROR",
            format!("at most {MAX_CLIENT_IDS} client ids are allowed"),
            Some("/client_ids".into()),
        ));
    }
    for (index, id) in client_ids.iter().enumerate() {
        let chars = id.chars().count();
        if chars == 0 || chars > MAX_CLIENT_ID_CHARS || id.chars().any(char::is_control) {
            return Err(AdminError::invalid(
                "VALIDATION_ERROR",
                format!("a client id must be 1 to {MAX_CLIENT_ID_CHARS} printable characters"),
                Some(format!("/client_ids/{index}")),
            ));
        }
    }
    Ok(())
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<CreateProvider>,
) -> Result<HttpResponse, AdminError> {
    let account = existing_account(&state, &path).await?;
    let body = body.into_inner();
    check_provider_url(&body.url, ProviderUrlKind::Issuer).map_err(|error| {
        AdminError::invalid(
            "VALIDATION_ERROR",
            format!("the issuer {:?} {error}", body.url),
            Some("/url".into()),
        )
    })?;
    check_client_ids(&body.client_ids)?;
    let provider = state
        .store
        .create_oidc_provider(&NewOidcProvider {
            account_id: account.clone(),
            url: body.url,
            client_ids: body.client_ids,
        })
        .await?;
    let after = view(&provider);
    Ok(created(
        &state,
        &request,
        &admin,
        "admin:CreateOidcProvider",
        &target(&provider),
        &format!("/accounts/{account}/oidc-providers/{}", provider.id),
        after,
    )
    .await)
}

async fn provider_in_path(
    state: &AppState,
    path: (String, String),
) -> Result<(AccountId, OidcProvider), AdminError> {
    let account = account_in_path(&path.0)?;
    let provider = state.store.get_oidc_provider(&account, &path.1).await?;
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

async fn delete(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, provider) = provider_in_path(&state, path.into_inner()).await?;
    state
        .store
        .delete_oidc_provider(&account, &provider.id)
        .await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:DeleteOidcProvider",
        &target(&provider),
        json!({ "before": view(&provider) }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}
