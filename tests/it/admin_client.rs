//! What the admin API tests share: a server whose admin group is
//! `directory:admins`, API tokens issued as alice, portal sessions, people, and
//! calls over real HTTP (bearer token or session with CSRF, optional `If-Match`)
//! answered as status, headers, ETag, text and JSON.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use rolegate::iam::{AccountId, RoleName};
use rolegate::idp::identity::Identity;
use rolegate::service::admin_access::{AdminGroup, IssuedToken};
use rolegate::store::{AdminScope, NewRole};
use rolegate::web::AppState;
use serde_json::{Value, json};

use crate::helpers::spawn_state;

pub const API: &str = "/admin/api/v1";

/// The account the mapping-rule tests grant roles in.
pub const RULES_ACCOUNT: &str = "111122223333";

/// `state` with `directory:admins` as the admin group.
pub fn with_admins(state: AppState) -> AppState {
    state.with_admin_groups(vec![AdminGroup::parse("directory:admins").unwrap()])
}

/// A directory person in `groups`.
pub fn person(user: &str, groups: &[&str]) -> Identity {
    Identity {
        source_id: "directory".into(),
        subject: format!("id-{user}"),
        user_name: user.into(),
        display_name: user.into(),
        email: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        attributes: Default::default(),
        claims: Default::default(),
    }
}

/// An admin API token created by alice.
pub async fn issue_token(state: &AppState, name: &str, scope: AdminScope) -> IssuedToken {
    state
        .admin
        .issue(name, scope, None, "directory:alice")
        .await
        .unwrap()
}

/// A signed-in portal session: (cookie value, CSRF token).
pub async fn session_of(state: &AppState, identity: Identity) -> (String, String) {
    let started = state.sessions.start(identity, None, None).await.unwrap();
    (started.id, started.session.csrf)
}

/// A trust policy letting account `account` assume the role.
pub fn trust(account: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": "sts:AssumeRole"}]})
}

/// Account [`RULES_ACCOUNT`] ("engineering") with roles Developer and Auditor.
pub async fn with_rule_roles(state: &AppState) {
    let account = AccountId::parse(RULES_ACCOUNT).unwrap();
    state
        .store
        .create_account(&account, "engineering")
        .await
        .unwrap();
    for name in ["Developer", "Auditor"] {
        let role = NewRole::new(
            account.clone(),
            RoleName::parse(name).unwrap(),
            trust(RULES_ACCOUNT).to_string(),
        );
        state.store.create_role(&role).await.unwrap();
    }
}

/// A mapping rule granting `role` in [`RULES_ACCOUNT`] to members of `group`.
pub fn grant_rule(id: &str, group: &str, role: &str) -> Value {
    json!({
        "id": id, "name": format!("{role} for {group}"), "effect": "grant",
        "source": ["directory"],
        "when": {"claim": "groups", "op": "contains_any", "values": [group]},
        "grant": [{"account": RULES_ACCOUNT, "role": role}],
    })
}

/// How a call authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    /// A portal session's cookie, and its CSRF token if sent.
    Session {
        id: &'a str,
        csrf: Option<&'a str>,
    },
    Token(&'a str),
}

impl<'a> Auth<'a> {
    /// A portal session's cookie without its CSRF token.
    pub fn cookie(id: &'a str) -> Self {
        Auth::Session { id, csrf: None }
    }

    /// A portal session's cookie with its CSRF token.
    pub fn session(id: &'a str, csrf: &'a str) -> Self {
        Auth::Session {
            id,
            csrf: Some(csrf),
        }
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub etag: Option<String>,
    pub text: String,
    /// The JSON answer; `null` when empty or not JSON.
    pub body: Value,
}

impl Answer {
    /// The answer as JSON, which it must be.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn error_field(&self, field: &str) -> &str {
        self.body["error"][field].as_str().unwrap_or("")
    }

    pub fn code(&self) -> &str {
        self.error_field("code")
    }

    pub fn pointer(&self) -> &str {
        self.error_field("pointer")
    }

    pub fn message(&self) -> &str {
        self.error_field("message")
    }
}

/// Calls the admin API at `base`.
pub async fn call(
    base: &str,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> Answer {
    send(base, auth, method, path, None, body).await
}

/// Calls the admin API at `base`, with `If-Match` when given.
pub async fn send(
    base: &str,
    auth: Auth<'_>,
    method: Method,
    path: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, format!("{base}{API}{path}"));
    match auth {
        Auth::None => {}
        Auth::Session { id, csrf } => {
            request = request.header("cookie", format!("rg_session={id}"));
            if let Some(csrf) = csrf {
                request = request.header("x-csrf-token", csrf);
            }
        }
        Auth::Token(token) => request = request.bearer_auth(token),
    }
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let etag = headers.get("etag").map(|v| v.to_str().unwrap().to_owned());
    let is_json = headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/json"));
    let text = response.text().await.unwrap();
    // A JSON answer must parse; others (NDJSON exports, empty answers) read as null.
    let body = if is_json && !text.is_empty() {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    } else {
        Value::Null
    };
    Answer {
        status,
        headers,
        etag,
        text,
        body,
    }
}

/// A running server with a write and a read token created by alice.
pub struct Api {
    pub state: AppState,
    pub base: String,
    pub write: String,
    pub write_id: String,
    pub read: String,
}

impl Api {
    /// Issues the tokens ("tests", "viewer") and serves `state`.
    pub async fn serve(state: AppState) -> Self {
        let write = issue_token(&state, "tests", AdminScope::Write).await;
        let read = issue_token(&state, "viewer", AdminScope::Read).await.secret;
        let base = spawn_state(state.clone());
        Self {
            state,
            base,
            write: write.secret,
            write_id: write.token.id,
            read,
        }
    }

    /// The actor the write token's events carry.
    pub fn actor(&self) -> String {
        format!("token:{} (directory:alice)", self.write_id)
    }

    pub async fn call_as(
        &self,
        auth: Auth<'_>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        send(&self.base, auth, method, path, None, body).await
    }

    /// A call with the write token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(Auth::Token(&self.write), method, path, body)
            .await
    }

    /// A call with the write token and `If-Match` when given.
    pub async fn call_if_match(
        &self,
        method: Method,
        path: &str,
        if_match: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        send(
            &self.base,
            Auth::Token(&self.write),
            method,
            path,
            if_match,
            body,
        )
        .await
    }
}
