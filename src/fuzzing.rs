//! Entry points for the fuzz targets in `fuzz/` whose parsing lives in private
//! web-layer code: each runs the real parsing and checking steps of a front door, in
//! the handler's order, up to the first lookup (store, cache, network). Front doors
//! whose parsing is already public (the policy parser, SigV4, the web identity token)
//! are fuzzed directly.
//!
//! Never called by the server; results are discarded (a fuzz target looks for
//! panics, hangs and runaway memory, not for particular answers).

use chrono::{DateTime, Utc};

use crate::iam::{AccountId, RoleName};
use crate::mapping::{Catalog, ClaimsHygiene, CompiledRuleset, SourceClaims, check_references};
use crate::sts::action::StsAction;
use crate::sts::assume::{self, Caller, CallerKind};
use crate::sts::web_identity;
use crate::web::admin::rules::{RulesBody, TestBody, in_rules_body, parse_rules};
use crate::web::sts_api::{Params, assume_role_params, resolve_action, web_identity_params};

/// The STS query API: a query string and an `application/x-www-form-urlencoded`
/// body → the action and its parameters, then every check AssumeRole and
/// AssumeRoleWithWebIdentity make before their first lookup (names, durations,
/// session tags and source identity against an IAM user caller, the session
/// policy parse).
pub fn sts_form(query: &str, body: &[u8]) {
    let Ok(params) = Params::parse(query, body) else {
        return;
    };
    let action = params.get("Action").unwrap_or_default();
    let Ok(action) = resolve_action(&params, action, StsAction::parse(action)) else {
        return;
    };
    match action {
        StsAction::AssumeRole => {
            let Ok(request) = assume_role_params(&params) else {
                return;
            };
            if assume::validate_assume_role(&request).is_err() {
                return;
            }
            let caller = iam_user_caller();
            let _ = assume::session_tags(&caller, &request.tags, &request.transitive_tag_keys);
            let _ = assume::source_identity(&caller, request.source_identity.as_deref());
            let _ = assume::role_session_duration(request.duration_seconds, 43_200, false);
            let _ = assume::parse_session_policy(request.policy.as_deref());
        }
        StsAction::AssumeRoleWithWebIdentity => {
            let Ok(request) = web_identity_params(&params) else {
                return;
            };
            let Ok((_, token, _)) = web_identity::validate(&request) else {
                return;
            };
            let _ = web_identity::jwt::UnverifiedToken::parse(token);
            let _ = assume::parse_session_policy(request.policy.as_deref());
        }
        StsAction::GetAccessKeyInfo => {
            if let Some(key) = params.get("AccessKeyId") {
                let _ = crate::sts::credentials::account_of_access_key_id(key);
            }
        }
        // The SAML assertion's front door has its own target (saml_response).
        StsAction::GetCallerIdentity
        | StsAction::GetSessionToken
        | StsAction::DecodeAuthorizationMessage
        | StsAction::AssumeRoleWithSaml => {}
    }
}

fn iam_user_caller() -> Caller {
    Caller {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        account: "111122223333".into(),
        arn: "arn:aws:iam::111122223333:user/alice".into(),
        user_id: "AIDAEXAMPLEALICE".into(),
        kind: CallerKind::IamUser {
            user_name: "alice".into(),
        },
        principal_tags: vec![("team".into(), "blue".into())],
        session: None,
    }
}

/// The admin API's mapping-rule documents: a `POST /mapping-rules/test` body
/// (`source`, `claims`, `rules`, `explain`) or a `PUT /mapping-rules` body
/// (`rules`, `reason`) → rules → compiled ruleset, its references checked against a
/// small catalog, then evaluated (and explained) for the body's claims under the
/// default claims hygiene and a stricter one.
pub fn mapping_rules(body: &[u8]) {
    let (source, claims, rules, explain) = match serde_json::from_slice::<TestBody>(body) {
        Ok(test) => (test.source, test.claims, test.rules, test.explain),
        Err(_) => match serde_json::from_slice::<RulesBody>(body) {
            Ok(put) => ("oidc".to_owned(), Default::default(), Some(put.rules), None),
            Err(_) => return,
        },
    };
    let Some(rules) = rules else {
        return;
    };
    let Ok(rules) = parse_rules(rules, in_rules_body) else {
        return;
    };
    let catalog = catalog();
    let _ = check_references(&rules, &catalog);
    let Ok(ruleset) = CompiledRuleset::compile(&rules) else {
        return;
    };
    let _ = ruleset.content_hash();
    let strict = ClaimsHygiene {
        split: Some(",".into()),
        prefix: Some("g-".into()),
        max_groups: 16,
        case_sensitive: false,
        ..ClaimsHygiene::default()
    };
    for hygiene in [ClaimsHygiene::default(), strict] {
        let Ok(claims) = SourceClaims::from_json(&source, &claims, &hygiene) else {
            continue;
        };
        let _ = ruleset.evaluate(&claims, &catalog, fixed_now());
        if let Some(id) = &explain {
            let _ = ruleset.explain(id, &claims);
        }
    }
}

fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    for (account, role, max) in [
        ("111122223333", "Developer", 3_600),
        ("111122223333", "Admin", 43_200),
        ("444455556666", "ReadOnly", 7_200),
    ] {
        if let (Ok(account), Ok(role)) = (AccountId::parse(account), RoleName::parse(role)) {
            catalog.add_role(account, role, max);
        }
    }
    catalog
}

fn fixed_now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}
