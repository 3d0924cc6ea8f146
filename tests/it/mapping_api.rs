//! The mapping-rule endpoints of the admin API over real HTTP on both backends: the
//! ruleset and its versions under `If-Match`, single-rule edits, validation errors
//! with pointers and nothing half-saved, restore, the dry run, impact over recent
//! sign-ins, the access views, token scopes and the audit trail; and that a change
//! applies to the next issuance.

use reqwest::{Method, StatusCode};
use rolegate::idp::identity::Identity;
use rolegate::store::Outcome;
use serde_json::{Value, json};

use crate::admin_client::{
    self, Answer, Api, Auth, RULES_ACCOUNT, grant_rule, send, with_admins, with_rule_roles,
};
use crate::both_backends;
use crate::helpers::{TestStore, app_state};

const ACCOUNT: &str = RULES_ACCOUNT;

/// A directory person with an email address.
fn person(user: &str, groups: &[&str]) -> Identity {
    Identity {
        email: Some(format!("{user}@example.com")),
        ..admin_client::person(user, groups)
    }
}

/// The admin server, account [`ACCOUNT`] with roles Developer and Auditor.
async fn start(db: &TestStore) -> Api {
    let state = with_admins(app_state(db.store.clone()).await);
    with_rule_roles(&state).await;
    Api::serve(state).await
}

/// `POST /mapping-rules` made against version `if_match`.
async fn create_rule(api: &Api, if_match: &str, rule: Value) -> Answer {
    api.call_if_match(Method::POST, "/mapping-rules", Some(if_match), Some(rule))
        .await
}

async fn ruleset_versions_under_if_match(db: TestStore) {
    let api = start(&db).await;
    let empty = api.call_if_match(Method::GET, "/ruleset", None, None).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["version"], 0);
    assert_eq!(empty.body["rules"], json!([]));
    assert_eq!(empty.etag.as_deref(), Some("\"v0\""));

    let rules = json!({ "rules": [grant_rule("r-devs", "developers", "Developer")] });
    let missing = api
        .call_if_match(Method::PUT, "/ruleset", None, Some(rules.clone()))
        .await;
    assert_eq!(missing.status, StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(missing.code(), "PRECONDITION_REQUIRED");

    let first = api
        .call_if_match(Method::PUT, "/ruleset", Some("\"v0\""), Some(rules.clone()))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["version"], 1);
    assert_eq!(first.etag.as_deref(), Some("\"v1\""));
    assert_eq!(first.body["rules"][0]["id"], "r-devs");

    // Made against version 0, which is no longer in force.
    let stale = api
        .call_if_match(Method::PUT, "/ruleset", Some("\"v0\""), Some(rules.clone()))
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.code(), "PRECONDITION_FAILED");

    // A read token cannot write.
    let read_only = send(
        &api.base,
        Auth::Token(&api.read),
        Method::PUT,
        "/ruleset",
        Some("\"v1\""),
        Some(rules.clone()),
    )
    .await;
    assert_eq!(read_only.status, StatusCode::FORBIDDEN);
    assert_eq!(read_only.code(), "INSUFFICIENT_SCOPE");

    // Invalid rules: every fault named with a pointer into the body, nothing saved.
    let lookaround = json!({"rules": [
        grant_rule("r-devs", "developers", "Developer"),
        {"id": "r-bad", "name": "bad", "effect": "grant", "source": ["directory"],
         "when": {"claim": "groups", "op": "regex", "value": "(?=admin)x"},
         "grant": [{"account": ACCOUNT, "role": "Developer"}]},
    ]});
    let refused = api
        .call_if_match(Method::PUT, "/ruleset", Some("\"v1\""), Some(lookaround))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "REGEX_UNSUPPORTED_SYNTAX");
    let pointer = refused.body["error"]["pointer"].as_str().unwrap();
    assert!(pointer.starts_with("/rules/1/when"), "{pointer}");

    let no_source = json!({"rules": [{"id": "r-x", "name": "x", "effect": "grant",
        "grant": [{"account": ACCOUNT, "role": "Developer"}]}]});
    let refused = api
        .call_if_match(Method::PUT, "/ruleset", Some("\"v1\""), Some(no_source))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "SOURCE_REQUIRED");

    let unknown_role = json!({"rules": [grant_rule("r-x", "developers", "Nonexistent")]});
    let refused = api
        .call_if_match(Method::PUT, "/ruleset", Some("\"v1\""), Some(unknown_role))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "UNKNOWN_ROLE");
    assert_eq!(refused.body["error"]["pointer"], "/rules/0/grant/0/role");

    let still = api.call_if_match(Method::GET, "/ruleset", None, None).await;
    assert_eq!(still.body["version"], 1, "nothing was half-saved");

    // Single-rule edits publish versions too.
    let created = create_rule(&api, "\"v1\"", grant_rule("r-audit", "auditors", "Auditor")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.etag.as_deref(), Some("\"v2\""));
    let duplicate = create_rule(&api, "\"v2\"", grant_rule("r-audit", "x", "Auditor")).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let bad_single = create_rule(&api, "\"v2\"", grant_rule("r-new", "x", "Ghost")).await;
    assert_eq!(bad_single.code(), "UNKNOWN_ROLE");
    assert_eq!(
        bad_single.body["error"]["pointer"], "/grant/0/role",
        "points into the rule sent"
    );

    let fetched = api
        .call_if_match(Method::GET, "/mapping-rules/r-audit", None, None)
        .await;
    assert_eq!(fetched.body["grant"][0]["role"], "Auditor");
    let mut changed = grant_rule("r-audit", "auditors", "Auditor");
    changed["name"] = json!("Auditors, renamed");
    let updated = api
        .call_if_match(
            Method::PUT,
            "/mapping-rules/r-audit",
            Some("\"v2\""),
            Some(changed),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.etag.as_deref(), Some("\"v3\""));
    assert_eq!(updated.body["name"], "Auditors, renamed");
    let deleted = api
        .call_if_match(
            Method::DELETE,
            "/mapping-rules/r-audit",
            Some("\"v3\""),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = api
        .call_if_match(Method::GET, "/mapping-rules/r-audit", None, None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let versions = api
        .call_if_match(Method::GET, "/ruleset/versions", None, None)
        .await;
    let numbers: Vec<i64> = versions.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 3, 2, 1]);

    // Restoring version 2 publishes its content as version 5.
    let restored = api
        .call_if_match(
            Method::POST,
            "/ruleset/versions/2/restore",
            Some("\"v4\""),
            None,
        )
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert_eq!(restored.body["version"], 5);
    let v2 = api
        .call_if_match(Method::GET, "/ruleset/versions/2", None, None)
        .await;
    assert_eq!(restored.body["rules"], v2.body["rules"]);
    assert_eq!(restored.body["content_hash"], v2.body["content_hash"]);

    // Every change is audited with the actor, the version, the before and after.
    let events = db.store.list_audit(200, None).await.unwrap();
    let find = |action: &str, outcome: Outcome| {
        events
            .iter()
            .find(|e| e.action == action && e.outcome == outcome)
            .unwrap_or_else(|| panic!("no {action} {outcome:?} event"))
    };
    let created = find("admin:CreateMappingRule", Outcome::Success);
    assert!(
        created.actor.contains("directory:alice"),
        "{}",
        created.actor
    );
    assert_eq!(created.details["version"], 2);
    assert_eq!(created.details["rule"], "r-audit");
    assert_eq!(created.details["before"].as_array().unwrap().len(), 1);
    assert_eq!(created.details["after"].as_array().unwrap().len(), 2);
    assert_eq!(
        find("admin:RestoreRuleset", Outcome::Success).details["restored_from"],
        2
    );
    let refused = find("admin:PublishRuleset", Outcome::Failure);
    assert!(refused.details["errors"].is_array(), "{}", refused.details);
}

async fn dry_run_impact_access_views_and_next_request(db: TestStore) {
    let api = start(&db).await;
    let rules = json!({ "rules": [grant_rule("r-devs", "developers", "Developer")] });
    let first = api
        .call_if_match(Method::PUT, "/ruleset", Some("\"v0\""), Some(rules))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);

    let alice = person("alice", &["developers", "admins"]);
    let bob = person("bob", &["auditors"]);
    for who in [&alice, &bob] {
        api.state.entitlements.record_sign_in(who).await.unwrap();
    }

    // The dry run: the published ruleset, or candidate rules, over given claims.
    let tested = api
        .call_if_match(
            Method::POST,
            "/mapping-rules/test",
            None,
            Some(json!({"source": "directory", "claims": {"groups": ["developers"]}})),
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert_eq!(tested.body["entitlements"][0]["role"], "Developer");
    assert_eq!(
        tested.body["entitlements"][0]["granted_by"][0]["rule"],
        "r-devs"
    );
    let near = api
        .call_if_match(
            Method::POST,
            "/mapping-rules/test",
            None,
            Some(json!({"source": "directory", "claims": {"groups": ["Developers"]}})),
        )
        .await;
    assert_eq!(near.body["entitlements"], json!([]));
    let miss = &near.body["not_applied"][0];
    assert_eq!(miss["rule"], "r-devs");
    assert!(
        miss["near_miss"].as_str().unwrap().contains("case"),
        "{miss}"
    );
    // More groups than the source allows: what a sign-in would meet, explained.
    let many: Vec<String> = (0..5_001).map(|i| format!("g{i}")).collect();
    let capped = api
        .call_if_match(
            Method::POST,
            "/mapping-rules/test",
            None,
            Some(json!({"source": "directory", "claims": {"groups": many}})),
        )
        .await;
    assert_eq!(capped.status, StatusCode::OK, "{}", capped.body);
    assert_eq!(capped.body["entitlements"], json!([]));
    assert_eq!(capped.body["warnings"][0]["code"], "GROUPS_LIMIT_EXCEEDED");
    let candidate = api
        .call_if_match(
            Method::POST,
            "/mapping-rules/test",
            None,
            Some(
                json!({"source": "directory", "claims": {"groups": ["auditors"]},
                        "rules": [grant_rule("r-audit", "auditors", "Auditor")]}),
            ),
        )
        .await;
    assert_eq!(candidate.body["entitlements"][0]["role"], "Auditor");

    // Impact: who gains and who loses, before anything is published.
    let impact = api
        .call_if_match(
            Method::POST,
            "/ruleset/impact",
            None,
            Some(json!({"rules": [grant_rule("r-audit", "auditors", "Auditor")]})),
        )
        .await;
    assert_eq!(impact.status, StatusCode::OK, "{}", impact.body);
    let people = impact.body["people"].as_array().unwrap();
    let of = |name: &str| {
        people
            .iter()
            .find(|p| p["user_name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        of("alice")["loses"],
        json!([{"account": ACCOUNT, "role": "Developer"}])
    );
    assert_eq!(
        of("bob")["gains"],
        json!([{"account": ACCOUNT, "role": "Auditor"}])
    );
    assert_eq!(
        api.call_if_match(Method::GET, "/ruleset", None, None)
            .await
            .body["version"],
        1
    );

    // Who holds a role, and everything one person reaches, with why.
    let holders = api
        .call_if_match(
            Method::GET,
            &format!("/access/roles/{ACCOUNT}/Developer"),
            None,
            None,
        )
        .await;
    assert_eq!(holders.status, StatusCode::OK, "{}", holders.body);
    let listed = holders.body["people"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["user_name"], "alice");
    assert_eq!(listed[0]["granted_by"][0]["rule"], "r-devs");
    let reach = api
        .call_if_match(Method::GET, "/access/people/directory/id-alice", None, None)
        .await;
    assert_eq!(
        reach.body["evaluation"]["entitlements"][0]["role"],
        "Developer"
    );
    let nobody = api
        .call_if_match(
            Method::GET,
            "/access/people/directory/id-nobody",
            None,
            None,
        )
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);

    // A change applies at the next request: no restart, no stale copy.
    let roles = |grants: Vec<rolegate::service::entitlements::Grant>| {
        grants
            .iter()
            .map(|g| g.role_name().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        roles(api.state.sts.entitlements(&bob).await.unwrap()),
        Vec::<String>::new()
    );
    let published = create_rule(&api, "\"v1\"", grant_rule("r-audit", "auditors", "Auditor")).await;
    assert_eq!(published.status, StatusCode::CREATED);
    assert_eq!(
        roles(api.state.sts.entitlements(&bob).await.unwrap()),
        ["Auditor"]
    );
    let restored = api
        .call_if_match(
            Method::POST,
            "/ruleset/versions/1/restore",
            Some("\"v2\""),
            None,
        )
        .await;
    assert_eq!(restored.status, StatusCode::OK);
    assert_eq!(
        roles(api.state.sts.entitlements(&bob).await.unwrap()),
        Vec::<String>::new()
    );
}

both_backends!(
    ruleset_versions_under_if_match,
    dry_run_impact_access_views_and_next_request,
);
