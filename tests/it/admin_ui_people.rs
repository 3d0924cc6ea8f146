//! The admin UI's People, audit log and API token pages: over plain HTTP (the audit
//! filters narrow the list and the export link carries them, a person's roles and
//! why, secrets never in a page), and in Chromium (lock a user, create a token and
//! see its secret once, the lock-out guard's confirmation).

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use reqwest::{Method, StatusCode};
use rolegate::iam::{GroupName, UserName};
use rolegate::store::Outcome;
use serde_json::{Value, json};

use crate::admin_client::{Auth, call, person};
use crate::admin_ui::{Seeded, page, seeded};
use crate::both_backends;
use crate::browser::{Browser, backend, password_of, submit_sign_in, with_browser};
use crate::helpers::TestStore;

/// The part of `html` from the element with `id` to the end of its section.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// `html` with askama's escapes undone.
fn unescape(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The `href` of the element with `id` (HTML-unescaped).
fn href_of(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\" href=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} link in {html}"))
        + marker.len();
    unescape(html[start..].split('"').next().unwrap())
}

/// The audit page's table of events ("" when it lists none).
fn events(html: &str) -> &str {
    html.split("id=\"audit-events\"")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .unwrap_or("")
}

/// How many audit events a page lists.
fn rows(html: &str) -> usize {
    html.matches("class=\"audit-event\"").count()
}

/// Alice (admin session) calls the admin API.
async fn as_alice(s: &Seeded, method: Method, path: &str, body: Option<Value>) -> Value {
    let answer = call(
        &s.base,
        method,
        path,
        Auth::session(&s.admin, &s.admin_csrf),
        body,
    )
    .await;
    assert!(answer.status.is_success(), "{path}: {}", answer.text);
    answer.body
}

/// Filters by actor, action, outcome and time narrow the list; a bad time is
/// shown, not ignored; a full page links to the older events with the same
/// filters; the export link carries the filters and works with the browser's
/// session cookie alone, giving exactly the events the filters select.
async fn the_audit_page_filters_pages_and_exports(db: TestStore) {
    let s = seeded(&db).await;
    // 55 denials of bob, and alice locking carol (a change with before and after).
    for _ in 0..55 {
        page(&s.base, Some(&s.member), "/admin").await;
    }
    as_alice(&s, Method::POST, "/directory/users/carol/lock", None).await;

    let all = page(&s.base, Some(&s.admin), "/admin/audit").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(rows(&all.body), 50, "one page of 50");
    assert!(events(&all.body).contains("admin:LockDirectoryUser"));

    // By action: only the lock, expandable to its before and after.
    let lock = page(
        &s.base,
        Some(&s.admin),
        "/admin/audit?action=admin:LockDirectoryUser",
    )
    .await;
    assert_eq!(rows(&lock.body), 1, "{}", lock.body);
    assert!(events(&lock.body).contains("directory:carol"));
    assert!(!events(&lock.body).contains("directory:bob"));
    let shown = unescape(&lock.body);
    let before = shown.split("audit-before\">").nth(1).unwrap();
    assert!(before.starts_with("{\n  \"locked_at\": null"), "{before}");
    let after = shown.split("audit-after\">").nth(1).unwrap();
    assert!(after.starts_with("{\n  \"locked_at\": \"20"), "{after}");

    // By actor and outcome: bob's denials, paged 50 then 5, same filters.
    let bob = page(
        &s.base,
        Some(&s.admin),
        "/admin/audit?actor=directory:bob&outcome=denied",
    )
    .await;
    assert_eq!(rows(&bob.body), 50);
    assert!(!events(&bob.body).contains("admin:LockDirectoryUser"));
    let older = href_of(&bob.body, "audit-older");
    assert!(
        older.contains("actor=directory%3Abob") && older.contains("before="),
        "{older}"
    );
    let rest = page(&s.base, Some(&s.admin), &older).await;
    assert_eq!(rows(&rest.body), 5, "{older}");
    assert!(!rest.body.contains("id=\"audit-older\""));
    let success = page(
        &s.base,
        Some(&s.admin),
        "/admin/audit?actor=directory:bob&outcome=success",
    )
    .await;
    assert_eq!(rows(&success.body), 0);
    assert!(success.body.contains("No events match."));

    // By time: nothing from tomorrow on; everything from yesterday on; a bad time
    // is said, and lists nothing.
    let now = s.state.clock.now();
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let future = page(
        &s.base,
        Some(&s.admin),
        &format!("/admin/audit?since={}", at(now + chrono::Duration::days(1))),
    )
    .await;
    assert_eq!(rows(&future.body), 0);
    let window = page(
        &s.base,
        Some(&s.admin),
        &format!(
            "/admin/audit?action=admin:LockDirectoryUser&since={}&until={}",
            at(now - chrono::Duration::days(1)),
            at(now + chrono::Duration::days(1))
        ),
    )
    .await;
    assert_eq!(rows(&window.body), 1);
    let unreadable = page(&s.base, Some(&s.admin), "/admin/audit?before=x").await;
    assert_eq!(unreadable.status, StatusCode::OK);
    assert!(unreadable.body.contains("The filters could not be read"));
    let bad = page(&s.base, Some(&s.admin), "/admin/audit?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(
        bad.body.contains("since must be an RFC 3339 time"),
        "{}",
        bad.body
    );
    assert_eq!(rows(&bad.body), 0);

    // The export link: the page's filters, no paging, and it works with the
    // session cookie alone (a browser following the link).
    let export = href_of(&rest.body, "audit-export");
    assert!(
        export.starts_with("/admin/api/v1/audit-events/export?"),
        "{export}"
    );
    assert!(export.contains("actor=directory%3Abob") && export.contains("outcome=denied"));
    assert!(!export.contains("before="), "{export}");
    let response = reqwest::Client::new()
        .get(format!("{}{export}", s.base))
        .header("Cookie", format!("rg_session={}", s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 55, "every page of the selection");
    assert!(
        lines
            .iter()
            .all(|e| e["actor"] == "directory:bob" && e["outcome"] == "denied")
    );
}

/// The People list links everyone seen; a person's page shows each role with the
/// rule that grants it and the claim values it matched, the rules that did not
/// apply and why, and their sign-ins with the address that ends them; a directory
/// user's page shows their groups with what to add; unknown people are 404.
async fn the_person_page_shows_roles_and_why(db: TestStore) {
    let s = seeded(&db).await;
    for who in [
        person("alice", &["admins", "developers"]),
        person("carol", &["auditors"]),
    ] {
        s.state.entitlements.record_sign_in(&who).await.unwrap();
    }
    let people = page(&s.base, Some(&s.admin), "/admin/people").await;
    assert_eq!(people.status, StatusCode::OK);
    let seen = section(&people.body, "seen");
    assert!(
        seen.contains("href=\"/admin/people/directory/id-alice\""),
        "{seen}"
    );
    assert!(seen.contains("href=\"/admin/people/directory/id-carol\""));
    let users = section(&people.body, "directory-users");
    for user in ["alice", "bob", "carol"] {
        assert!(
            users.contains(&format!("href=\"/admin/directory/users/{user}\"")),
            "{users}"
        );
    }
    let search = page(&s.base, Some(&s.admin), "/admin/people?q=CAROL").await;
    assert!(!section(&search.body, "seen").contains("id-alice"));
    assert!(section(&search.body, "seen").contains("id-carol"));

    let alice = page(&s.base, Some(&s.admin), "/admin/people/directory/id-alice").await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.body);
    let reach = section(&alice.body, "can-reach");
    for (role, rule, matched) in [
        ("Admin", "demo-admin", "groups=admins"),
        ("Developer", "demo-developer", "groups=developers"),
        ("ReadOnly", "demo-readonly", "groups=admins"),
    ] {
        let row = reach
            .split(&format!("id=\"reach-123456789012-{role}\""))
            .nth(1)
            .and_then(|rest| rest.split("</tr>").next())
            .unwrap_or_else(|| panic!("{role} not reachable: {reach}"));
        assert!(
            row.contains(&format!("href=\"/admin/rules/{rule}\"")),
            "{row}"
        );
        assert!(row.contains(&format!("<code>{matched}</code>")), "{row}");
    }
    assert!(section(&alice.body, "not-applied").contains("Every rule applied."));
    // alice's portal session (the admin's own) is listed, with the way to end it.
    let sign_ins = section(&alice.body, "sign-ins");
    assert!(sign_ins.contains("id=\"portal-sessions\""), "{sign_ins}");
    assert!(sign_ins.contains("data-api=\"/admin/api/v1/people/directory/alice/sessions\""));
    assert!(sign_ins.contains("data-method=\"DELETE\" data-confirm="));

    let carol = page(&s.base, Some(&s.admin), "/admin/people/directory/id-carol").await;
    let reach = section(&carol.body, "can-reach");
    assert!(reach.contains("reach-123456789012-ReadOnly"));
    assert!(!reach.contains("reach-123456789012-Admin"));
    let missed = section(&carol.body, "not-applied");
    assert!(
        missed.contains("demo-admin") && missed.contains("conditions not met"),
        "{missed}"
    );
    assert!(section(&carol.body, "sign-ins").contains("No live portal sessions."));

    let nobody = page(&s.base, Some(&s.admin), "/admin/people/directory/id-nobody").await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);

    // The directory user: groups with remove buttons, the others to add, the person.
    let user = page(&s.base, Some(&s.admin), "/admin/directory/users/alice").await;
    assert_eq!(user.status, StatusCode::OK);
    let groups = section(&user.body, "groups");
    assert!(groups.contains("data-api=\"/admin/api/v1/directory/groups/admins/members/alice\" data-method=\"DELETE\""), "{groups}");
    assert!(groups.contains("<option value=\"/admin/api/v1/directory/groups/auditors/members/alice\">auditors</option>"), "{groups}");
    assert!(
        user.body
            .contains("href=\"/admin/people/directory/id-alice\"")
    );
    assert!(user.body.contains("id=\"lock-user\""));
    let profile = section(&user.body, "profile");
    assert!(
        profile.contains("data-api=\"/admin/api/v1/directory/users/alice\" data-method=\"PATCH\""),
        "{profile}"
    );
    assert!(
        profile.contains("value=\"Alice Admin\"")
            && profile.contains("value=\"alice@example.com\"")
    );
    assert!(
        user.body.contains("id=\"this-is-you\""),
        "alice sees her own page is hers"
    );
    let bob = page(&s.base, Some(&s.admin), "/admin/directory/users/bob").await;
    assert!(!bob.body.contains("id=\"this-is-you\""));
    for path in [
        "/admin/directory/users/alice",
        "/admin/directory/groups",
        "/admin/people/directory/id-alice",
    ] {
        assert_eq!(
            page(&s.base, Some(&s.member), path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let unknown = page(&s.base, Some(&s.admin), "/admin/directory/users/nobody").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let groups = page(&s.base, Some(&s.admin), "/admin/directory/groups").await;
    let admins = section(&groups.body, "group-admins");
    assert!(
        admins.contains("href=\"/admin/directory/users/alice\""),
        "{admins}"
    );
    assert!(admins.contains(
        "<option value=\"/admin/api/v1/directory/groups/admins/members/bob\">bob</option>"
    ));
}

/// A token's secret and a generated password are in the API's answer only: no
/// admin page shows them afterwards; the token is listed with a revoke button.
async fn secrets_are_never_in_a_page(db: TestStore) {
    let s = seeded(&db).await;
    let token = as_alice(
        &s,
        Method::POST,
        "/tokens",
        Some(json!({"name": "pipeline", "scope": "read", "expires_in_days": 7})),
    )
    .await;
    let secret = token["secret"].as_str().unwrap().to_owned();
    let id = token["id"].as_str().unwrap().to_owned();
    let password = as_alice(
        &s,
        Method::POST,
        "/directory/users/bob/password",
        Some(json!({"generate": true})),
    )
    .await["password"]
        .as_str()
        .unwrap()
        .to_owned();

    let tokens = page(&s.base, Some(&s.admin), "/admin/tokens").await;
    assert_eq!(tokens.status, StatusCode::OK);
    let row = section(&tokens.body, "tokens")
        .split(&format!("id=\"token-{id}\""))
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap()
        .to_owned();
    assert!(
        row.contains("pipeline") && row.contains(">read<") && row.contains(">active<"),
        "{row}"
    );
    assert!(row.contains(&format!(
        "data-api=\"/admin/api/v1/tokens/{id}\" data-method=\"DELETE\""
    )));
    for path in [
        "/admin/tokens",
        "/admin/audit",
        "/admin/audit?action=admin:CreateToken",
        "/admin/audit?action=admin:SetDirectoryUserPassword",
        "/admin",
        "/admin/people",
        "/admin/directory/users/bob",
    ] {
        let shown = page(&s.base, Some(&s.admin), path).await;
        assert_eq!(shown.status, StatusCode::OK, "{path}");
        assert!(
            !shown.body.contains(&secret),
            "the token's secret on {path}"
        );
        assert!(!shown.body.contains(&password), "the password on {path}");
    }

    as_alice(&s, Method::DELETE, &format!("/tokens/{id}"), None).await;
    let tokens = page(&s.base, Some(&s.admin), "/admin/tokens").await;
    let row = tokens
        .body
        .split(&format!("id=\"token-{id}\""))
        .nth(1)
        .unwrap();
    let row = row.split("</tr>").next().unwrap();
    assert!(
        row.contains(">revoked<") && !row.contains("data-api"),
        "{row}"
    );
}

/// Waits for a JavaScript dialog (`confirm`), accepts it and returns its text.
async fn accept_dialog(browser: &Browser) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = browser.driver().get_alert_text().await {
            browser.driver().accept_alert().await?;
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("no dialog appeared");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `css`'s text contains `wanted`.
async fn wait_for_text(browser: &Browser, css: &str, wanted: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = match browser.driver().find(thirtyfour::By::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(wanted) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("`{css}` says {text:?}, not {wanted:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// In Chromium, alice signs in and opens the admin pages: locks carol (after a
/// confirmation), creates an API token and sees its secret once (it works; the
/// reloaded page does not hold it), then removes herself from `admins`, which the
/// lock-out guard makes her confirm, after which the admin pages are closed to her.
async fn people_and_tokens_in_chromium(db: TestStore) {
    let s = seeded(&db).await;
    let base = s.base.clone();
    let state = s.state.clone();
    let shot = format!("admin-people-{}", backend(&db));
    let name = shot.clone();
    with_browser(&name, |browser| async move {
        let outcome = async {
            browser.goto(&format!("{base}/admin/people")).await?;
            browser.wait_for_path("/signin").await?;
            submit_sign_in(&browser, "alice", password_of("alice")).await?;
            browser.wait_for_path("/admin/people").await?;
            browser.screenshot(&format!("{shot}-people")).await?;
            // alice's own sign-in is listed: her page says what she can reach.
            browser.find("#seen a").await?.click().await?;
            wait_for_text(&browser, "#can-reach", "Developer").await?;
            browser.screenshot(&format!("{shot}-person")).await?;
            browser
                .goto(&format!("{base}/admin/directory/groups"))
                .await?;
            browser.find("#group-admins").await?;
            browser.screenshot(&format!("{shot}-groups")).await?;

            // Lock carol: a confirmation first, then the page says so.
            browser
                .goto(&format!("{base}/admin/directory/users/carol"))
                .await?;
            browser.find("#lock-user").await?.click().await?;
            let asked = accept_dialog(&browser).await?;
            ensure!(asked.contains("Lock carol?"), "asked {asked:?}");
            wait_for_text(&browser, "#user-status", "locked").await?;
            wait_for_text(&browser, "#flash", "carol is locked.").await?;
            let carol = state
                .store
                .get_user("directory", &UserName::parse("carol")?)
                .await?;
            ensure!(carol.locked_at.is_some(), "carol is locked in the store");
            browser.screenshot(&format!("{shot}-user")).await?;
            // The lock in the audit log, expanded to its before and after.
            browser.goto(&format!("{base}/admin/audit")).await?;
            browser
                .find("#audit-events details summary")
                .await?
                .click()
                .await?;
            wait_for_text(&browser, "#audit-events details .audit-after", "locked_at").await?;
            browser.screenshot(&format!("{shot}-audit")).await?;

            // A token: the secret shown once, from the API's answer.
            browser.goto(&format!("{base}/admin/tokens")).await?;
            browser
                .find("#token-form input[name=name]")
                .await?
                .send_keys("deploy")
                .await?;
            browser
                .find("#token-form select[name=scope] option[value=write]")
                .await?
                .click()
                .await?;
            browser
                .find("#token-form button[type=submit]")
                .await?
                .click()
                .await?;
            let secret = wait_for_text(&browser, "#token-secret code", "rgat_").await?;
            ensure!(browser.find("#token-secret").await?.is_displayed().await?);
            browser.screenshot(&format!("{shot}-token")).await?;
            let whoami = reqwest::Client::new()
                .get(format!("{base}/admin/api/v1/whoami"))
                .bearer_auth(secret.trim())
                .send()
                .await?;
            ensure!(whoami.status() == StatusCode::OK, "the secret works");
            browser.find("#token-secret a").await?.click().await?;
            browser.wait_for_path("/admin/tokens").await?;
            let listed = wait_for_text(&browser, "#tokens", "deploy").await?;
            ensure!(listed.contains("write"), "{listed}");
            let source = browser.driver().source().await?;
            ensure!(
                !source.contains(secret.trim()),
                "the secret is shown once only"
            );

            // alice leaves admins: confirmed once for the removal, once for the
            // lock-out the server warns of.
            browser
                .goto(&format!("{base}/admin/directory/users/alice"))
                .await?;
            browser
                .find("button[data-api$='/groups/admins/members/alice']")
                .await?
                .click()
                .await?;
            let asked = accept_dialog(&browser).await?;
            ensure!(
                asked.contains("Remove alice from admins?"),
                "asked {asked:?}"
            );
            let warned = accept_dialog(&browser).await?;
            ensure!(
                warned.contains("end your own admin access"),
                "warned {warned:?}"
            );
            browser
                .wait_for_path("/admin/directory/users/alice")
                .await?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let admins = state
                    .store
                    .group_members("directory", &GroupName::parse("admins")?)
                    .await?;
                if !admins.iter().any(|m| m.as_str() == "alice") {
                    break;
                }
                ensure!(Instant::now() < deadline, "alice is still in admins");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            wait_for_text(&browser, "main", "Not an administrator")
                .await
                .context("after the reload the admin pages are closed")?;
            let events = state.store.list_audit(50, None).await?;
            let removal: Vec<Outcome> = events
                .iter()
                .filter(|e| e.action == "admin:RemoveDirectoryGroupMember")
                .map(|e| e.outcome)
                .collect();
            ensure!(
                removal == [Outcome::Success, Outcome::Denied],
                "refused, then done when confirmed: {removal:?}"
            );
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
}

both_backends!(
    the_audit_page_filters_pages_and_exports,
    the_person_page_shows_roles_and_why,
    secrets_are_never_in_a_page,
    people_and_tokens_in_chromium,
);
