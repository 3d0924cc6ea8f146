//! The admin web UI's pages over plain HTTP (the browser tests are in
//! `admin_ui_browser.rs`): who may open them, and what each page shows.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use rolegate::store::Outcome;

use crate::admin_client::{person, session_of, with_admins};
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

both_backends!(
    only_admins_open_admin_pages,
    the_overview_shows_counts_broken_rules_and_denials,
);
