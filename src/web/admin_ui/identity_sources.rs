//! `/admin/identity-sources`: the sources people sign in through. The list; a form
//! to create an OIDC or a SAML source (`new?kind=saml`: metadata from a URL or
//! pasted, attribute names, skew, IdP-initiated sign-in); the edit form of a source (OIDC settings, or the
//! built-in directory's) that `admin.js` sends to the admin API with the version it
//! was read at (`If-Match`), so a stale edit shows both versions; and the test
//! sign-in: the source's real sign-in flow in a new tab, whose result page shows the
//! claims received and what the published rules would grant them. The client
//! secret is never rendered: the form only sets a new one.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{AdminPage, Layout, Section, pretty, render, unavailable};
use crate::idp::directory::DIRECTORY_SOURCE_ID;
use crate::idp::identity::Identity;
use crate::idp::oidc::{ClaimNames, OidcConfig, TokenEndpointAuth};
use crate::idp::saml::sp::SamlConfig;
use crate::mapping::{ClaimsHygiene, Evaluation};
use crate::service::entitlements::{EntitlementError, Grant};
use crate::service::saml_login::SamlLogin;
use crate::service::sign_in_test::{self, TestResultError};
use crate::store::{IdentitySource, IdentitySourceKind, Outcome, StoreError};
use crate::web::AppState;
use crate::web::admin::content_etag;
use crate::web::audit::audit;
use crate::web::oidc_login::{TEST_ACTION, begin_test};
use crate::web::page::{PageError, path_segment};

const BASE: &str = "/admin/identity-sources";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/identity-sources", web::get().to(list))
        // Before `{id}`: "new" is the creation form, not a source.
        .route("/identity-sources/new", web::get().to(new))
        .route("/identity-sources/{id}", web::get().to(edit))
        .route(
            "/identity-sources/{id}/test-sign-in",
            web::get().to(test_sign_in),
        )
        .route(
            "/identity-sources/{id}/test-result",
            web::get().to(test_result),
        );
}

/// One row of the list.
struct Row {
    id: String,
    href: String,
    kind: &'static str,
    display_name: String,
    enabled: bool,
    /// What it signs in with (the issuer of an OIDC source).
    detail: String,
    /// The test sign-in link (OIDC only).
    test_href: Option<String>,
}

fn kind_name(kind: IdentitySourceKind) -> &'static str {
    match kind {
        IdentitySourceKind::Directory => "Built-in directory",
        IdentitySourceKind::Oidc => "OpenID Connect",
        IdentitySourceKind::Saml => "SAML 2.0",
    }
}

fn href_of(id: &str) -> String {
    format!("{BASE}/{}", path_segment(id))
}

fn row(source: &IdentitySource) -> Row {
    let federated = source.kind != IdentitySourceKind::Directory;
    let detail = match source.kind {
        IdentitySourceKind::Saml => SamlLogin::idp_entity_id(source).unwrap_or_default(),
        _ => source
            .config
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    };
    Row {
        id: source.id.clone(),
        href: href_of(&source.id),
        kind: kind_name(source.kind),
        display_name: source.display_name.clone(),
        enabled: source.enabled,
        detail,
        test_href: federated.then(|| format!("{}/test-sign-in", href_of(&source.id))),
    }
}

#[derive(Template)]
#[template(path = "admin/identity_sources.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
}

async fn list(state: web::Data<AppState>, admin: AdminPage) -> Result<HttpResponse, PageError> {
    let sources = state
        .store
        .list_identity_sources()
        .await
        .map_err(unavailable)?;
    render(&ListPage {
        layout: admin.layout(Section::Sources, "Identity sources"),
        rows: sources.iter().map(row).collect(),
    })
}

/// The settings an edit form shows. Every field of the stored settings is a field
/// of the form, since PUT replaces them all; the client secret is only "set or not".
struct SourceForm {
    /// None: a new OIDC source.
    id: Option<String>,
    kind: &'static str,
    display_name: String,
    enabled: bool,
    /// The API URL the form sends to, and its method.
    api: String,
    method: &'static str,
    /// `If-Match` (the version shown) and where the current version is read.
    etag: String,
    oidc: OidcFields,
    saml: SamlFields,
    mapping: ClaimsHygiene,
    /// The session tags as JSON (tag key → claim or attribute).
    session_tags: String,
}

struct OidcFields {
    issuer: String,
    client_id: String,
    secret_set: bool,
    scopes: String,
    userinfo: bool,
    claims: ClaimNames,
    token_endpoint_auth: &'static str,
    redirect_uri: String,
    post_logout_redirect_uri: String,
    trusted_audiences: String,
}

impl OidcFields {
    fn of(config: &OidcConfig) -> Self {
        Self {
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            secret_set: config.client_secret.is_some(),
            scopes: config.scopes.join(", "),
            userinfo: config.userinfo,
            claims: config.claims.clone(),
            token_endpoint_auth: match config.token_endpoint_auth {
                None => "",
                Some(TokenEndpointAuth::ClientSecretBasic) => "client_secret_basic",
                Some(TokenEndpointAuth::ClientSecretPost) => "client_secret_post",
            },
            redirect_uri: config.redirect_uri.clone().unwrap_or_default(),
            post_logout_redirect_uri: config.post_logout_redirect_uri.clone().unwrap_or_default(),
            trusted_audiences: config.trusted_audiences.join(", "),
        }
    }
}

/// A SAML source's settings as the form shows them; the IdP metadata XML is not put
/// back in the form (an empty paste box keeps it, or fetches the URL again).
struct SamlFields {
    idp_metadata_url: String,
    /// The imported IdP: its entityID and how many signing certificates it has.
    idp_entity_id: String,
    idp_signing_certs: usize,
    sp_entity_id: String,
    /// Where the SP metadata is served (a path on this server).
    sp_metadata_path: String,
    user_name_attribute: String,
    email_attribute: String,
    display_name_attribute: String,
    groups_attribute: String,
    clock_skew_seconds: u32,
    allow_idp_initiated: bool,
    sign_authn_requests: bool,
}

impl SamlFields {
    fn of(id: &str, config: &SamlConfig) -> Self {
        let idp = SamlLogin::idp_of(config).ok();
        Self {
            idp_metadata_url: config.idp_metadata_url.clone().unwrap_or_default(),
            idp_entity_id: idp
                .as_ref()
                .map(|i| i.entity_id.clone())
                .unwrap_or_default(),
            idp_signing_certs: idp.as_ref().map_or(0, |i| i.signing_certs.len()),
            sp_entity_id: config.sp_entity_id.clone().unwrap_or_default(),
            // Source ids are slugs (a-z, 0-9, '-'): nothing to encode.
            sp_metadata_path: format!("/saml/{id}/metadata"),
            user_name_attribute: config.user_name_attribute.clone(),
            email_attribute: config.email_attribute.clone(),
            display_name_attribute: config.display_name_attribute.clone(),
            groups_attribute: config.groups_attribute.clone(),
            clock_skew_seconds: config.clock_skew_seconds,
            allow_idp_initiated: config.allow_idp_initiated,
            sign_authn_requests: config.sign_authn_requests,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/identity_source.html")]
struct EditPage {
    layout: Layout,
    form: SourceForm,
    test_href: Option<String>,
    /// Whether the directory's source is shown (it cannot be deleted).
    built_in: bool,
}

#[derive(Deserialize)]
struct NewQuery {
    #[serde(default)]
    kind: String,
}

async fn new(admin: AdminPage, query: web::Query<NewQuery>) -> Result<HttpResponse, PageError> {
    let config = OidcConfig::new("https://", "");
    let (kind, title) = match query.kind.as_str() {
        "saml" => ("saml", "New SAML identity source"),
        _ => ("oidc", "New OIDC identity source"),
    };
    render(&EditPage {
        layout: admin.layout(Section::Sources, title),
        form: SourceForm {
            id: None,
            kind,
            display_name: String::new(),
            enabled: true,
            api: format!("{}/identity-sources", crate::web::admin::PREFIX),
            method: "POST",
            etag: String::new(),
            oidc: OidcFields::of(&config),
            saml: SamlFields::of("<id>", &SamlConfig::default()),
            mapping: ClaimsHygiene::default(),
            session_tags: "{}".into(),
        },
        test_href: None,
        built_in: false,
    })
}

fn no_source(id: &str) -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "No such identity source",
        format!("There is no identity source {id:?}."),
    )
    .next(BASE, "Identity sources")
}

async fn source_of(state: &AppState, id: &str) -> Result<IdentitySource, PageError> {
    match state.store.get_identity_source(id).await {
        Ok(source) => Ok(source),
        Err(StoreError::NotFound { .. }) => Err(no_source(id)),
        Err(error) => Err(unavailable(error)),
    }
}

async fn edit(
    state: web::Data<AppState>,
    admin: AdminPage,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let source = source_of(&state, &id).await?;
    let config = source.config.as_object().cloned().unwrap_or_default();
    let mapping = config
        .get("mapping")
        .and_then(|m| serde_json::from_value::<ClaimsHygiene>(m.clone()).ok())
        .unwrap_or_default();
    let session_tags = pretty(config.get("session_tags").unwrap_or(&json!({})));
    let oidc = match source.kind {
        IdentitySourceKind::Oidc => {
            let parsed: OidcConfig = serde_json::from_value(Value::Object(config))
                .map_err(|e| unavailable(format!("identity source {id} settings: {e}")))?;
            OidcFields::of(&parsed)
        }
        _ => OidcFields::of(&OidcConfig::new("", "")),
    };
    let saml = match source.kind {
        IdentitySourceKind::Saml => {
            let parsed = SamlConfig::from_json(&source.config)
                .map_err(|e| unavailable(format!("identity source {id} settings: {e}")))?;
            SamlFields::of(&id, &parsed)
        }
        _ => SamlFields::of(&id, &SamlConfig::default()),
    };
    let api = format!(
        "{}/identity-sources/{}",
        crate::web::admin::PREFIX,
        path_segment(&id)
    );
    let kind = match source.kind {
        IdentitySourceKind::Oidc => "oidc",
        IdentitySourceKind::Directory => "directory",
        IdentitySourceKind::Saml => "saml",
    };
    render(&EditPage {
        layout: admin.layout(Section::Sources, format!("Identity source {id}")),
        test_href: (source.kind != IdentitySourceKind::Directory)
            .then(|| format!("{}/test-sign-in", href_of(&id))),
        built_in: id == DIRECTORY_SOURCE_ID,
        form: SourceForm {
            id: Some(id),
            kind,
            display_name: source.display_name.clone(),
            enabled: source.enabled,
            api,
            method: "PUT",
            etag: content_etag(&source),
            oidc,
            saml,
            mapping,
            session_tags,
        },
    })
}

/// Starts the real sign-in flow of the source in this tab, as a test.
async fn test_sign_in(
    state: web::Data<AppState>,
    request: HttpRequest,
    admin: AdminPage,
    path: web::Path<String>,
) -> HttpResponse {
    let id = path.into_inner();
    let saml = matches!(
        state.store.get_identity_source(&id).await,
        Ok(source) if source.kind == IdentitySourceKind::Saml
    );
    if saml {
        crate::web::saml_login::begin_test(&state, &request, &id, &admin.actor).await
    } else {
        begin_test(&state, &request, &id, &admin.actor).await
    }
}

#[derive(Deserialize)]
struct ResultQuery {
    #[serde(default)]
    result: String,
}

/// One role the rules would grant.
struct Granted {
    account: String,
    role: String,
    arn: String,
    /// `rule-id: groups=developers, ...` per granting rule.
    because: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/identity_source_test.html")]
struct ResultPage {
    layout: Layout,
    source_id: String,
    source_href: String,
    test_href: String,
    identity: Identity,
    claims: String,
    /// Why the rules refused the claims (the sign-in would be refused), if so.
    refused: Option<String>,
    ruleset_version: i64,
    granted: Vec<Granted>,
    evaluation: Evaluation,
}

async fn test_result(
    state: web::Data<AppState>,
    request: HttpRequest,
    admin: AdminPage,
    path: web::Path<String>,
    query: web::Query<ResultQuery>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let again = || format!("{}/test-sign-in", href_of(&id));
    let result = match sign_in_test::take(state.cache.as_ref(), &query.result, &admin.actor, &id)
        .await
    {
        Ok(result) => result,
        Err(TestResultError::Gone) => {
            return Err(PageError::new(
                    StatusCode::NOT_FOUND,
                    "Test result gone",
                    "This test sign-in's result was already shown, or it expired (a result is kept for ten minutes). Run the test again.",
                )
                .next(again(), "Test sign-in again"));
        }
        Err(TestResultError::NotYours) => {
            audit(
                    &state,
                    &request,
                    &admin.actor,
                    TEST_ACTION,
                    &id,
                    Outcome::Denied,
                    json!({ "stage": "result", "reason": "another admin's or another source's test result" }),
                )
                .await;
            return Err(PageError::new(
                    StatusCode::FORBIDDEN,
                    "Not your test sign-in",
                    "This test result belongs to another administrator's test sign-in, or to another identity source.",
                )
                .next(href_of(&id), "Back to the identity source"));
        }
        Err(TestResultError::Cache(error)) => return Err(unavailable(error)),
    };
    let (refused, version, granted, evaluation) =
        match state.entitlements.decide(&result.identity).await {
            Ok(decision) => {
                let granted = decision.grants().iter().map(granted).collect();
                (None, decision.version, granted, decision.evaluation)
            }
            Err(EntitlementError::Claims { message, .. }) => {
                (Some(message), 0, Vec::new(), Evaluation::default())
            }
            Err(error) => return Err(unavailable(error)),
        };
    render(&ResultPage {
        layout: admin.layout(Section::Sources, format!("Test sign-in at {id}")),
        source_href: href_of(&id),
        test_href: again(),
        source_id: id,
        identity: result.identity,
        claims: pretty(&Value::Object(readable(result.claims))),
        refused,
        ruleset_version: version,
        granted,
        evaluation,
    })
}

/// The claims as received, without the protocol's own noise (`nonce`, `at_hash`).
fn readable(mut claims: Map<String, Value>) -> Map<String, Value> {
    for noise in ["nonce", "at_hash", "c_hash", "s_hash"] {
        claims.remove(noise);
    }
    claims
}

fn granted(grant: &Grant) -> Granted {
    Granted {
        account: grant.account().to_string(),
        role: grant.role_name().to_string(),
        arn: grant.role().to_string(),
        because: grant
            .granted_by()
            .iter()
            .map(|by| format!("{}: {}", by.rule, by.matched.join(", ")))
            .collect(),
    }
}
