//! `/admin/api/v1/identity-sources`: list, read, create, replace (which also enables
//! and disables) and delete identity sources of kind `oidc`, `saml` and `directory`.
//! A SAML source's IdP metadata is imported from a URL or pasted XML (refused without
//! a signing certificate) and its SP key pair generated unless given (the key sealed,
//! shown as `"set"`). OIDC settings are validated as the configuration file's are
//! ([`OidcConfig::validate_fields`]); a client secret in a request is sealed with the
//! master key before it is stored and never shown again (`"client_secret": "set"`).
//! The built-in directory cannot be deleted. Deleting or disabling the source the
//! acting admin signs in through is guarded like the directory's changes
//! ([`super::directory::lockout_guard`]). Every change is audited with the before and
//! after (secrets never included).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::{AdminRead, AdminWrite};
use super::common::{audit_change, content_etag, if_match, listed, when_not_found, with_etag};
use super::directory::{Confirm, lockout_guard};
use super::error::AdminError;
use crate::idp::directory::DIRECTORY_SOURCE_ID;
use crate::idp::oidc::{OidcConfig, seal_client_secret};
use crate::service::admin_access::AccessChange;
use crate::store::{IdentitySource, IdentitySourceKind, NewIdentitySource, StoreError};
use crate::sts::portal::{DIRECTORY_ATTRIBUTES, DirectorySettings, check_session_tags};
use crate::web::AppState;

/// What a client secret reads as in every answer and audit event.
const SECRET_SHOWN_AS: &str = "set";
/// The longest display name (as in the configuration file).
const MAX_DISPLAY_NAME_CHARS: usize = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/identity-sources", web::get().to(list))
        .route("/identity-sources", web::post().to(create))
        .route("/identity-sources/{source}", web::get().to(get))
        .route("/identity-sources/{source}", web::put().to(replace))
        .route("/identity-sources/{source}", web::delete().to(delete));
}

/// A source as the API shows it: the client secret and a SAML source's SP private
/// key only as `"set"`.
fn view(source: &IdentitySource) -> Value {
    let mut config = source.config.clone();
    if let Some(settings) = config.as_object_mut() {
        for secret in ["client_secret", "sp_private_key"] {
            if settings.contains_key(secret) {
                settings.insert(secret.into(), json!(SECRET_SHOWN_AS));
            }
        }
    }
    json!({
        "id": source.id,
        "kind": source.kind,
        "display_name": source.display_name,
        "enabled": source.enabled,
        "created_at": source.created_at,
        "config": config,
    })
}

fn no_source(id: &str) -> AdminError {
    AdminError::not_found("NOT_FOUND", format!("There is no identity source {id:?}."))
}

fn source_error(id: &str) -> impl Fn(StoreError) -> AdminError + '_ {
    when_not_found(move || no_source(id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceBody {
    /// Required to create; when replacing, the path's (a different one is refused).
    #[serde(default)]
    id: Option<String>,
    kind: IdentitySourceKind,
    display_name: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default)]
    config: Map<String, Value>,
}

fn enabled_by_default() -> bool {
    true
}

/// What a request says about the client secret.
enum SecretChange {
    /// Absent, or `"set"` (what GET shows): keep the stored one.
    Keep,
    /// `null`: a public client from now on.
    Remove,
    New(String),
}

fn secret_change(config: &mut Map<String, Value>) -> Result<SecretChange, AdminError> {
    match config.remove("client_secret") {
        None => Ok(SecretChange::Keep),
        Some(Value::Null) => Ok(SecretChange::Remove),
        Some(Value::String(s)) if s == SECRET_SHOWN_AS => Ok(SecretChange::Keep),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(SecretChange::New(s)),
        Some(_) => Err(AdminError::invalid(
            "INVALID_CLIENT_SECRET",
            "client_secret must be a non-empty string (null makes a public client)",
            Some("/config/client_secret".into()),
        )),
    }
}

/// The setting a serde error names (`unknown field `x``, `missing field `x``).
fn serde_pointer(message: &str) -> String {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.split_once(prefix))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(field, _)| field);
    match named {
        Some(field) => format!("/config/{field}"),
        None => "/config".into(),
    }
}

/// The checked source a body describes, for id `id`, with the client secret sealed
/// (or kept from `stored`).
async fn checked_source(
    state: &AppState,
    id: &str,
    body: SourceBody,
    stored: Option<&IdentitySource>,
) -> Result<NewIdentitySource, AdminError> {
    let display_name = body.display_name.trim().to_owned();
    if display_name.is_empty()
        || display_name.chars().count() > MAX_DISPLAY_NAME_CHARS
        || display_name.chars().any(char::is_control)
    {
        return Err(AdminError::invalid(
            "INVALID_DISPLAY_NAME",
            format!("display_name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters"),
            Some("/display_name".into()),
        ));
    }
    if body.kind != IdentitySourceKind::Directory && id == DIRECTORY_SOURCE_ID {
        return Err(AdminError::invalid(
            "RESERVED_ID",
            format!("id {id:?} is the built-in directory's; choose another id"),
            Some("/id".into()),
        ));
    }
    let config = match body.kind {
        IdentitySourceKind::Oidc => oidc_config(state, id, body.config, stored)?,
        IdentitySourceKind::Directory => directory_config(id, body.config)?,
        IdentitySourceKind::Saml => saml_config(state, id, body.config, stored).await?,
    };
    Ok(NewIdentitySource {
        id: id.to_owned(),
        kind: body.kind,
        display_name,
        config,
        enabled: body.enabled,
    })
}

fn oidc_config(
    state: &AppState,
    id: &str,
    mut settings: Map<String, Value>,
    stored: Option<&IdentitySource>,
) -> Result<Value, AdminError> {
    let secret = secret_change(&mut settings)?;
    let mut config: OidcConfig = serde_json::from_value(Value::Object(settings)).map_err(|e| {
        let message = e.to_string();
        AdminError::invalid(
            "INVALID_OIDC_CONFIG",
            message.clone(),
            Some(serde_pointer(&message)),
        )
    })?;
    config.validate_fields().map_err(|(pointer, error)| {
        AdminError::invalid(
            "INVALID_OIDC_CONFIG",
            error.to_string(),
            Some(format!("/config{pointer}")),
        )
    })?;
    config.client_secret = match secret {
        SecretChange::Keep => stored
            .and_then(|s| s.config.get("client_secret"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        SecretChange::Remove => None,
        SecretChange::New(plain) => Some(seal_client_secret(&state.sealer, id, &plain)),
    };
    Ok(config.to_json())
}

/// A SAML source's settings: the IdP metadata imported from `idp_metadata` (pasted
/// XML) or fetched from `idp_metadata_url`, else the stored copy kept; refused
/// without a signing certificate. The SP key pair: `sp_private_key` absent or
/// `"set"` keeps the stored one, a PEM key with its `sp_certificate` replaces it,
/// `null` generates a new one (as does a new source without one).
async fn saml_config(
    state: &AppState,
    id: &str,
    mut settings: Map<String, Value>,
    stored: Option<&IdentitySource>,
) -> Result<Value, AdminError> {
    use crate::idp::saml::sp::SamlConfig;
    use crate::service::saml_login::{GivenKeys, MetadataFrom, prepare_source};
    let invalid = |pointer: &str, message: String| {
        AdminError::invalid(
            "INVALID_SAML_CONFIG",
            message,
            Some(format!("/config{pointer}")),
        )
    };
    let mut stored_config = match stored {
        Some(source) if source.kind == IdentitySourceKind::Saml => {
            SamlConfig::from_json(&source.config).ok()
        }
        Some(source) => {
            return Err(AdminError::invalid(
                "KIND_MISMATCH",
                format!(
                    "identity source {id:?} is of kind {}; a source's kind cannot change",
                    source.kind.as_str()
                ),
                Some("/kind".into()),
            ));
        }
        None => None,
    };
    let pasted = match settings.remove("idp_metadata") {
        None | Some(Value::Null) => None,
        Some(Value::String(xml)) if xml.trim().is_empty() => None,
        Some(Value::String(xml)) => Some(xml),
        Some(_) => {
            return Err(invalid(
                "/idp_metadata",
                "idp_metadata must be the metadata XML as a string".into(),
            ));
        }
    };
    let certificate = settings.remove("sp_certificate");
    let given = match settings.remove("sp_private_key") {
        None => None,
        Some(Value::String(s)) if s == SECRET_SHOWN_AS => None,
        Some(Value::Null) => {
            // A new key pair: forget the stored one.
            if let Some(stored) = stored_config.as_mut() {
                stored.sp_certificate = None;
                stored.sp_private_key = None;
            }
            None
        }
        Some(Value::String(key)) => match certificate {
            Some(Value::String(certificate)) => Some(GivenKeys {
                certificate_pem: certificate,
                private_key_pem: crate::secrets::Secret::new(key),
            }),
            _ => {
                return Err(invalid(
                    "/sp_certificate",
                    "a new sp_private_key needs its sp_certificate (PEM)".into(),
                ));
            }
        },
        Some(_) => {
            return Err(invalid(
                "/sp_private_key",
                "sp_private_key must be a PEM private key, \"set\" (keep) or null (generate a new one)".into(),
            ));
        }
    };
    let config: SamlConfig = serde_json::from_value(Value::Object(settings)).map_err(|e| {
        let message = e.to_string();
        AdminError::invalid(
            "INVALID_SAML_CONFIG",
            message.clone(),
            Some(serde_pointer(&message)),
        )
    })?;
    let from = match (pasted, &config.idp_metadata_url) {
        (Some(xml), _) => MetadataFrom::Xml(xml),
        (None, Some(url)) => MetadataFrom::Url(url.clone()),
        (None, None) => MetadataFrom::Stored,
    };
    let (config, _) = prepare_source(
        &state.sealer,
        state.clock.now(),
        id,
        config,
        from,
        given,
        stored_config.as_ref(),
    )
    .await
    .map_err(|e| invalid(e.pointer, e.message))?;
    Ok(config.to_json())
}

/// The built-in directory's settings: its session tags name directory attributes.
fn directory_config(id: &str, settings: Map<String, Value>) -> Result<Value, AdminError> {
    if id != DIRECTORY_SOURCE_ID {
        return Err(AdminError::invalid(
            "UNSUPPORTED_KIND",
            format!("the only directory source is the built-in one, {DIRECTORY_SOURCE_ID:?}"),
            Some("/kind".into()),
        ));
    }
    let value = Value::Object(settings);
    let parsed: DirectorySettings = serde_json::from_value(value.clone()).map_err(|e| {
        AdminError::invalid(
            "INVALID_DIRECTORY_CONFIG",
            e.to_string(),
            Some("/config".into()),
        )
    })?;
    let invalid_tags = |message: String| {
        AdminError::invalid(
            "INVALID_DIRECTORY_CONFIG",
            message,
            Some("/config/session_tags".into()),
        )
    };
    check_session_tags(&parsed.session_tags).map_err(invalid_tags)?;
    if let Some((key, attribute)) = parsed
        .session_tags
        .iter()
        .find(|(_, attribute)| !DIRECTORY_ATTRIBUTES.contains(&attribute.as_str()))
    {
        return Err(invalid_tags(format!(
            "session tag {key:?} names {attribute:?}; a directory user has {}",
            DIRECTORY_ATTRIBUTES.join(", ")
        )));
    }
    // The mapping rules' view of the directory's claims, checked as an OIDC
    // source's is (`OidcConfig::validate`).
    if let Some(mapping) = value.get("mapping") {
        serde_json::from_value::<crate::mapping::ClaimsHygiene>(mapping.clone())
            .map_err(|e| e.to_string())
            .and_then(|hygiene| hygiene.check())
            .map_err(|message| {
                AdminError::invalid(
                    "INVALID_DIRECTORY_CONFIG",
                    format!("mapping: {message}"),
                    Some("/config/mapping".into()),
                )
            })?;
    }
    Ok(value)
}

async fn list(
    state: web::Data<AppState>,
    AdminRead(_): AdminRead,
) -> Result<HttpResponse, AdminError> {
    let sources = state.store.list_identity_sources().await?;
    Ok(HttpResponse::Ok().json(listed("identity_sources", &sources, view)))
}

async fn get(
    state: web::Data<AppState>,
    AdminRead(_): AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let source = state
        .store
        .get_identity_source(&id)
        .await
        .map_err(source_error(&id))?;
    Ok(with_etag(
        HttpResponse::Ok().json(view(&source)),
        &content_etag(&source),
    ))
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    body: web::Json<SourceBody>,
) -> Result<HttpResponse, AdminError> {
    let mut body = body.into_inner();
    let Some(id) = body.id.take() else {
        return Err(AdminError::invalid(
            "VALIDATION_ERROR",
            "id is required",
            Some("/id".into()),
        ));
    };
    if !crate::config::source_id_ok(&id) {
        return Err(AdminError::invalid(
            "VALIDATION_ERROR",
            crate::config::SOURCE_ID_RULE,
            Some("/id".into()),
        ));
    }
    let new = checked_source(&state, &id, body, None).await?;
    let created = state.store.create_identity_source(&new).await?;
    let after = view(&created);
    audit_change(
        &state,
        &request,
        &admin,
        "admin:CreateIdentitySource",
        &created.id,
        json!({ "before": null, "after": after }),
    )
    .await;
    Ok(HttpResponse::Created().json(after))
}

async fn replace(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<SourceBody>,
    confirm: web::Query<Confirm>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let mut body = body.into_inner();
    if body.id.take().is_some_and(|named| named != id) {
        return Err(AdminError::invalid(
            "ID_MISMATCH",
            "the id in the body differs from the path's; an identity source's id cannot change",
            Some("/id".into()),
        ));
    }
    let stored = state
        .store
        .get_identity_source(&id)
        .await
        .map_err(source_error(&id))?;
    // Optimistic concurrency: with `If-Match`, the change applies only to the
    // version it names, checked again inside the store's transaction.
    let expected = if_match(
        &request,
        &content_etag(&stored),
        &format!("identity source {id:?}"),
    )?
    .then_some(&stored);
    let new = checked_source(&state, &id, body, Some(&stored)).await?;
    let action = "admin:UpdateIdentitySource";
    if stored.enabled && !new.enabled {
        lockout_guard(
            &state,
            &request,
            &admin,
            &confirm,
            action,
            &id,
            AccessChange::RemoveSource { source: &id },
        )
        .await?;
    }
    let (before, after) = state
        .store
        .update_identity_source(&new, expected)
        .await
        .map_err(source_error(&id))?;
    let shown = view(&after);
    audit_change(&state, &request, &admin, action, &id, json!({
            "before": view(&before),
            "after": shown,
            "client_secret_changed": before.config.get("client_secret") != after.config.get("client_secret"),
        })).await;
    Ok(with_etag(
        HttpResponse::Ok().json(shown),
        &content_etag(&after),
    ))
}

async fn delete(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    confirm: web::Query<Confirm>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    if id == DIRECTORY_SOURCE_ID {
        return Err(AdminError::conflict(
            "BUILT_IN_SOURCE",
            "The built-in directory cannot be deleted; disable it with PUT and \"enabled\": false.",
        ));
    }
    state
        .store
        .get_identity_source(&id)
        .await
        .map_err(source_error(&id))?;
    let action = "admin:DeleteIdentitySource";
    lockout_guard(
        &state,
        &request,
        &admin,
        &confirm,
        action,
        &id,
        AccessChange::RemoveSource { source: &id },
    )
    .await?;
    let deleted = state
        .store
        .delete_identity_source(&id)
        .await
        .map_err(source_error(&id))?;
    audit_change(
        &state,
        &request,
        &admin,
        action,
        &id,
        json!({ "before": view(&deleted), "after": null }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}
