//! Accounts: list, create, read, delete (refused while the account still has
//! roles, policies, IAM users or OIDC providers), and each account's
//! console-destination allow-list. Also the path and field helpers the other IAM
//! modules share.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{AdminRead, AdminWrite};
use super::common::{audit_change, created, listed, named_in_path, when_conflict};
use super::error::AdminError;
use crate::iam::{AccountId, ConsoleDestination, ValidationError};
use crate::store::{Account, StoreError};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts", web::get().to(list))
        .route("/accounts", web::post().to(create))
        .route("/accounts/{account}", web::get().to(get))
        .route("/accounts/{account}", web::delete().to(delete))
        .route(
            "/accounts/{account}/console-destinations",
            web::get().to(get_destinations),
        )
        .route(
            "/accounts/{account}/console-destinations",
            web::put().to(put_destinations),
        );
}

/// The account a path names: an id that is not 12 digits names no account (404).
pub(super) fn account_in_path(raw: &str) -> Result<AccountId, AdminError> {
    named_in_path(AccountId::parse(raw), || {
        format!("account {raw} does not exist")
    })
}

/// An account and what `name_in_path` reads in it, from a two-part path.
pub(super) fn in_account<T>(
    (account, name): (String, String),
    name_in_path: impl FnOnce(&str) -> Result<T, AdminError>,
) -> Result<(AccountId, T), AdminError> {
    Ok((account_in_path(&account)?, name_in_path(&name)?))
}

/// The account a path names, which must exist.
pub(super) async fn existing_account(state: &AppState, raw: &str) -> Result<AccountId, AdminError> {
    let id = account_in_path(raw)?;
    state.store.get_account(&id).await?;
    Ok(id)
}

/// A value of the body that breaks a rule: 422 `VALIDATION_ERROR` at `pointer`.
pub(super) fn invalid_at(pointer: impl Into<String>, error: ValidationError) -> AdminError {
    AdminError::invalid("VALIDATION_ERROR", error.message, Some(pointer.into()))
}

/// Store errors where a rule the store checks is broken by the value at `pointer`.
fn invalid_in_store(pointer: &'static str) -> impl Fn(StoreError) -> AdminError {
    move |error| match error {
        StoreError::Invalid(invalid) => invalid_at(pointer, invalid),
        other => other.into(),
    }
}

fn view(account: &Account) -> Value {
    json!({ "id": account.id, "name": account.name, "created_at": account.created_at })
}

fn target(id: &AccountId) -> String {
    format!("account/{id}")
}

async fn list(state: web::Data<AppState>, _admin: AdminRead) -> Result<HttpResponse, AdminError> {
    let accounts = state.store.list_accounts().await?;
    Ok(HttpResponse::Ok().json(listed("accounts", &accounts, view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccount {
    id: String,
    name: String,
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    body: web::Json<CreateAccount>,
) -> Result<HttpResponse, AdminError> {
    let body = body.into_inner();
    let id = AccountId::parse(body.id).map_err(|e| invalid_at("/id", e))?;
    let account = state
        .store
        .create_account(&id, &body.name)
        .await
        .map_err(invalid_in_store("/name"))?;
    let after = view(&account);
    Ok(created(
        &state,
        &request,
        &admin,
        "admin:CreateAccount",
        &target(&id),
        &format!("/accounts/{id}"),
        after,
    )
    .await)
}

async fn get(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = account_in_path(&path)?;
    let account = state.store.get_account(&id).await?;
    Ok(HttpResponse::Ok().json(view(&account)))
}

async fn delete(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = account_in_path(&path)?;
    let before = view(&state.store.get_account(&id).await?);
    state
        .store
        .delete_account(&id)
        .await
        .map_err(when_conflict(|_| {
            format!(
                "account {id} still has roles, managed policies, IAM users or OIDC providers; delete them first"
            )
        }))?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:DeleteAccount",
        &target(&id),
        json!({ "before": before }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

fn destinations_view(destinations: &[ConsoleDestination]) -> Value {
    json!({
        "destinations": destinations.iter().map(ConsoleDestination::as_str).collect::<Vec<_>>(),
    })
}

async fn get_destinations(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = account_in_path(&path)?;
    let destinations = state.store.console_destinations(&id).await?;
    Ok(HttpResponse::Ok().json(destinations_view(&destinations)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Destinations {
    destinations: Vec<String>,
}

async fn put_destinations(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<Destinations>,
) -> Result<HttpResponse, AdminError> {
    let id = account_in_path(&path)?;
    let mut parsed = Vec::new();
    let mut faults = Vec::new();
    for (index, entry) in body.into_inner().destinations.iter().enumerate() {
        match ConsoleDestination::parse(entry) {
            Ok(destination) => parsed.push(destination),
            Err(error) => faults.push((
                "VALIDATION_ERROR",
                error.message,
                Some(format!("/destinations/{index}")),
            )),
        }
    }
    if !faults.is_empty() {
        return Err(AdminError::invalid_all(faults));
    }
    let before = state.store.console_destinations(&id).await?;
    let after = state
        .store
        .set_console_destinations(&id, &parsed)
        .await
        .map_err(invalid_in_store("/destinations"))?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:SetConsoleDestinations",
        &target(&id),
        json!({
            "before": destinations_view(&before)["destinations"],
            "after": destinations_view(&after)["destinations"],
        }),
    )
    .await;
    Ok(HttpResponse::Ok().json(destinations_view(&after)))
}
