//! The admin web UI's pages over plain HTTP (the browser tests are in
//! `admin_ui_browser.rs`): who may open them, and what each page shows.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use rolegate::store::Outcome;

use reqwest::Method;
use serde_json::json;

use crate::admin_client::{Auth, person, send, session_of, with_admins};
use crate::both_backends;
use crate::helpers::{TestStore, app_state, assert_audited, spawn_state};

/// A page fetched with a session cookie (no redirects followed).
pub struct Page {
    pub status: StatusCode,
    pub location: String,
    pub body: String,
}

/// GETs `path` at `base` with the portal session `cookie` (or none).
pub async fn page(base: &str, cookie: Option<&str>, path: &str) -> Page {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.get(format!("{base}{path}"));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", format!("rg_session={cookie}"));
    }
    let response = request.send().await.unwrap();
    Page {
        status: response.status(),
        location: response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: response.text().await.unwrap(),
    }
}

/// Every `/admin...` page a page links to (`href="/admin..."`), API paths left out.
pub fn admin_links(html: &str) -> BTreeSet<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("/admin") && !href.starts_with("/admin/api/"))
        .map(|href| href.split('#').next().unwrap_or(href).replace("&amp;", "&"))
        .collect()
}

/// An admin and a non-admin signed in on a demo-seeded server.
pub struct Seeded {
    pub state: rolegate::web::AppState,
    pub base: String,
    pub admin: String,
    pub admin_csrf: String,
    pub member: String,
}

pub async fn seeded(db: &TestStore) -> Seeded {
    let state = with_admins(app_state(db.store.clone()).await);
    rolegate::seed::seed_demo(state.store.as_ref())
        .await
        .expect("seed demo");
    let (admin, admin_csrf) = session_of(&state, person("alice", &["admins", "developers"])).await;
    let (member, _) = session_of(&state, person("bob", &["developers"])).await;
    let base = spawn_state(state.clone());
    Seeded {
        state,
        base,
        admin,
        admin_csrf,
        member,
    }
}

/// Nobody signed in is sent to sign in and brought back; a signed-in non-admin gets
/// a 403 page on every admin page (every one an admin can reach by following links,
/// found by crawling), each refusal audited; the admin gets each page.
async fn only_admins_open_admin_pages(db: TestStore) {
    let s = seeded(&db).await;
    let anonymous = page(&s.base, None, "/admin/rules?x=1").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.location,
        "/signin?return_to=%2Fadmin%2Frules%3Fx%3D1"
    );

    // Crawl what the admin can reach, two links deep.
    let mut seen = BTreeSet::new();
    let mut frontier: BTreeSet<String> = ["/admin".to_owned()].into();
    for _ in 0..2 {
        let mut next = BTreeSet::new();
        for path in frontier {
            if !seen.insert(path.clone()) {
                continue;
            }
            let answer = page(&s.base, Some(&s.admin), &path).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
            next.extend(admin_links(&answer.body));
        }
        frontier = next;
    }
    assert!(
        seen.len() >= 8,
        "the navigation links every section: {seen:?}"
    );

    let before = s.state.store.list_audit(1000, None).await.unwrap().len();
    for path in &seen {
        let answer = page(&s.base, Some(&s.member), path).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert!(answer.body.contains("Not an administrator"), "{path}");
    }
    assert_audited(
        s.state.store.as_ref(),
        &[("admin:Authenticate", Outcome::Denied)],
        &[&s.member],
    )
    .await;
    let after = s.state.store.list_audit(1000, None).await.unwrap().len();
    assert_eq!(after - before, seen.len(), "one audit event per refusal");
}

/// The overview counts what the demo seeds, names rules whose role was deleted, and
/// lists recent denials.
async fn the_overview_shows_counts_broken_rules_and_denials(db: TestStore) {
    let s = seeded(&db).await;
    // A denial to show: bob on an admin page.
    page(&s.base, Some(&s.member), "/admin").await;
    let overview = page(&s.base, Some(&s.admin), "/admin").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(
        overview
            .body
            .contains("Every account and role the rules name exists.")
    );
    assert!(
        overview.body.contains("directory:bob"),
        "the denial is listed"
    );
    assert!(overview.body.contains("admin:Authenticate"));

    // Delete a role a demo rule grants: the overview names the rule.
    let account = rolegate::iam::AccountId::parse("123456789012").unwrap();
    let role = rolegate::iam::RoleName::parse("ReadOnly").unwrap();
    s.state
        .store
        .delete_role_with_policies(&account, &role)
        .await
        .unwrap();
    let overview = page(&s.base, Some(&s.admin), "/admin").await;
    let broken = overview
        .body
        .split("id=\"broken-rules\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap()
        .to_owned();
    assert!(
        broken.contains("account 123456789012 has no role named ReadOnly"),
        "{broken}"
    );
}

/// The rule list counts the sign-ins each rule matched; a publish with a reason
/// shows it in the versions; a write without the session's CSRF token is refused
/// and changes nothing.
async fn rule_hits_reasons_and_csrf(db: TestStore) {
    let s = seeded(&db).await;
    // carol (auditors) signs in twice: the demo rule for auditors matched twice.
    for _ in 0..2 {
        s.state
            .entitlements
            .record_sign_in(&person("carol", &["auditors"]))
            .await
            .unwrap();
    }
    let list = page(&s.base, Some(&s.admin), "/admin/rules").await;
    let row = list
        .body
        .split("data-rule=\"demo-readonly\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap()
        .to_owned();
    assert!(row.contains("<td class=\"hits\">2</td>"), "{row}");
    let quiet = page(&s.base, Some(&s.admin), "/admin").await.body;
    let quiet = quiet.split("id=\"quiet-rules\"").nth(1).unwrap();
    assert!(
        !quiet.contains("/admin/rules/demo-readonly\""),
        "readonly matched"
    );
    assert!(
        quiet.contains("/admin/rules/demo-admin\""),
        "admin never matched"
    );

    let current = s.state.rulesets.current().await.unwrap();
    let rules = serde_json::to_value(&current.rules).unwrap();
    let body = json!({ "rules": rules, "reason": "Quarterly review" });
    let tag = format!("\"v{}\"", current.version);
    let refused = send(
        &s.base,
        Auth::cookie(&s.admin),
        Method::PUT,
        "/ruleset",
        Some(&tag),
        Some(body.clone()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "CSRF_TOKEN_INVALID");
    assert_eq!(
        s.state.rulesets.current().await.unwrap().version,
        current.version
    );
    let published = send(
        &s.base,
        Auth::session(&s.admin, &s.admin_csrf),
        Method::PUT,
        "/ruleset",
        Some(&tag),
        Some(body),
    )
    .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
    let versions = page(&s.base, Some(&s.admin), "/admin/rules/versions").await;
    assert!(versions.body.contains("Quarterly review"));
    assert!(versions.body.contains("demo rules seeded by rolegate dev"));
}

/// Fetches `path` as the admin `times` times one after another; returns the sorted
/// times to the full answer (for the load runs of the note).
pub async fn time_page(s: &Seeded, path: &str, times: usize) -> Vec<std::time::Duration> {
    let mut taken = Vec::with_capacity(times);
    for _ in 0..times {
        let started = std::time::Instant::now();
        let answer = page(&s.base, Some(&s.admin), path).await;
        taken.push(started.elapsed());
        assert_eq!(answer.status, StatusCode::OK);
    }
    taken.sort();
    taken
}

/// A short load run for the note (not part of the suite: `--run-ignored only`): the
/// rule list with 200 published rules, all with hits, fetched 200 times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load run for the note, not a check"]
async fn rule_list_load_with_200_rules() {
    let db = crate::helpers::sqlite_store().await;
    let s = seeded(&db).await;
    let current = s.state.rulesets.current().await.unwrap();
    let rules: Vec<rolegate::mapping::Rule> = (0..200)
        .map(|n| {
            serde_json::from_value(json!({
                "id": format!("rule-{n:03}"), "name": format!("Team {n}"), "effect": "grant",
                "source": ["directory"], "priority": n,
                "when": {"claim": "groups", "op": "contains_any", "values": [format!("team-{n}"), "developers"]},
                "grant": [{"account": "123456789012", "role": "Developer"}]
            }))
            .unwrap()
        })
        .collect();
    s.state
        .rulesets
        .publish(current.version, &rules, "test", None, None)
        .await
        .unwrap();
    for n in 0..50 {
        s.state
            .entitlements
            .record_sign_in(&person(&format!("user{n:02}"), &["developers"]))
            .await
            .unwrap();
    }
    let first = page(&s.base, Some(&s.admin), "/admin/rules").await;
    assert_eq!(
        first.body.matches("<td class=\"hits\">50</td>").count(),
        200
    );
    let times = time_page(&s, "/admin/rules", 200).await;
    println!(
        "rule list, 200 rules, 200 requests: p50 {:?}, p99 {:?}, max {:?}",
        times[100], times[197], times[199]
    );
}

both_backends!(
    only_admins_open_admin_pages,
    the_overview_shows_counts_broken_rules_and_denials,
    rule_hits_reasons_and_csrf,
);
