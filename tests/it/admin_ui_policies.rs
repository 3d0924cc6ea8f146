//! The policies pages and the API behind the policy editor: validation that says
//! where the fault is, versions and their comparison, attach and detach, inline
//! policies one at a time; and in Chromium, the editor that checks as you type.

use anyhow::ensure;
use reqwest::{Method, StatusCode};
use rolegate::store::{Outcome, PolicyScope};
use serde_json::{Value, json};

use crate::admin_client::{Api, Auth, call, person, session_of, with_admins};
use crate::admin_ui::{page, seeded};
use crate::both_backends;
use crate::browser::with_browser;
use crate::helpers::{TestStore, app_state, assert_audited, sqlite_store};

const DEMO_ACCOUNT: &str = rolegate::seed::DEMO_ACCOUNT_ID;

/// A trailing comma on line 4.
const SYNTAX_ERROR: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"*\",}\n  ]\n}";

/// An action without a vendor prefix: `/Statement/0/Action/1`, line 4, column 52.
const NO_VENDOR: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": [\"s3:GetObject\", \"GetObject\"], \"Resource\": \"*\"}\n  ]\n}";

/// The id of a demo policy, by name.
async fn policy_id(state: &rolegate::web::AppState, name: &str) -> String {
    let account = rolegate::iam::AccountId::parse(DEMO_ACCOUNT).unwrap();
    let mut all = state
        .store
        .list_policies(PolicyScope::Global)
        .await
        .unwrap();
    all.extend(
        state
            .store
            .list_policies(PolicyScope::Account(&account))
            .await
            .unwrap(),
    );
    all.into_iter()
        .find(|p| p.name.as_str() == name)
        .unwrap_or_else(|| panic!("no demo policy {name}"))
        .id
}

/// The validator answers where the fault is: line and column for a JSON syntax
/// error, the element's pointer (and its line and column) for a policy error; a
/// valid policy with warnings; and a save that skips the editor is refused the same way.
async fn validate_api_locates_faults(db: TestStore) {
    let state = with_admins(app_state(db.store.clone()).await);
    rolegate::seed::seed_demo(state.store.as_ref())
        .await
        .unwrap();
    let api = Api::serve(state.clone()).await;

    let syntax = api
        .call_as(
            Auth::Token(&api.read),
            Method::POST,
            "/policies/validate",
            Some(json!(SYNTAX_ERROR)),
        )
        .await;
    assert_eq!(
        syntax.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        syntax.text
    );
    assert_eq!(syntax.code(), "MALFORMED_POLICY_DOCUMENT");
    assert!(
        syntax.message().contains("Syntax errors in policy."),
        "{}",
        syntax.message()
    );
    let location = &syntax.body["error"]["location"];
    assert_eq!(location["line"], 4, "{location}");
    assert_eq!(location["column"], 67, "{location}");
    assert!(location.get("pointer").is_none(), "{location}");

    let semantic = api
        .call(Method::POST, "/policies/validate", Some(json!(NO_VENDOR)))
        .await;
    assert_eq!(semantic.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        semantic.message().contains("must be prefaced by a vendor"),
        "{}",
        semantic.message()
    );
    assert_eq!(semantic.pointer(), "/Statement/0/Action/1");
    assert_eq!(
        semantic.body["error"]["location"],
        json!({"pointer": "/Statement/0/Action/1", "line": 4, "column": 52})
    );

    // A trust policy needs a principal: the statement is at fault.
    let trust = api
        .call(
            Method::POST,
            "/policies/validate?kind=trust",
            Some(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]})),
        )
        .await;
    assert_eq!(trust.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(trust.pointer(), "/Statement/0");
    assert!(trust.message().contains("Missing required field Principal"));

    let valid = api
        .call(
            Method::POST,
            "/policies/validate?customer=true",
            Some(json!("{\"Version\": \"2012-10-17\",\n \"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}}")),
        )
        .await;
    assert_eq!(valid.status, StatusCode::OK, "{}", valid.text);
    assert_eq!(valid.body["valid"], true);
    assert_eq!(valid.body["warnings"][0]["code"], "FULL_ACCESS");
    assert_eq!(valid.body["warnings"][0]["line"], 2);
    // Customer managed policies need a Version.
    let unversioned = api
        .call(
            Method::POST,
            "/policies/validate?customer=true",
            Some(json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}})),
        )
        .await;
    assert_eq!(unversioned.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unversioned.pointer(), "");

    // Saving around the editor: refused with the same location, nothing stored.
    let id = policy_id(&state, "DeveloperHomeBucket").await;
    let refused = api
        .call(
            Method::POST,
            &format!("/policies/{id}/versions"),
            Some(json!({"document": NO_VENDOR, "set_as_default": true})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.pointer(), "/document");
    assert_eq!(
        refused.body["error"]["location"]["pointer"],
        "/Statement/0/Action/1"
    );
    assert_eq!(refused.body["error"]["location"]["line"], 4);
    let versions = api
        .call(Method::GET, &format!("/policies/{id}/versions"), None)
        .await;
    assert_eq!(versions.body["versions"].as_array().unwrap().len(), 1);
}

/// Attach and detach a managed policy on a role, put and delete an inline policy:
/// each shows in the role and in where the policy is attached, and is audited.
async fn role_policies_attach_detach_and_inline(db: TestStore) {
    let state = with_admins(app_state(db.store.clone()).await);
    rolegate::seed::seed_demo(state.store.as_ref())
        .await
        .unwrap();
    let api = Api::serve(state.clone()).await;
    let id = policy_id(&state, "ViewOnlyAccess").await;
    let role = format!("/accounts/{DEMO_ACCOUNT}/roles/Developer");
    let attach = format!("{role}/attached-policies/{id}");

    let attached = api.call(Method::PUT, &attach, None).await;
    assert_eq!(attached.status, StatusCode::OK, "{}", attached.text);
    let arns: Vec<&str> = attached.body["attached_policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        arns.iter().any(|a| a.ends_with(":policy/ViewOnlyAccess")),
        "{arns:?}"
    );
    let uses = api
        .call(Method::GET, &format!("/policies/{id}/attachments"), None)
        .await;
    let holders: Vec<(String, String)> = uses.body["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_owned(),
                u["usage"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        holders,
        vec![
            ("Developer".into(), "attached".into()),
            ("ReadOnly".into(), "attached".into())
        ]
    );

    let detached = api.call(Method::DELETE, &attach, None).await;
    assert_eq!(detached.status, StatusCode::OK);
    assert!(!detached.text.contains("ViewOnlyAccess"));
    let again = api.call(Method::DELETE, &attach, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    // Inline: an invalid document is refused with its location; a valid one stored.
    let inline = format!("{role}/inline-policies/ReadLogs");
    let refused = api
        .call(
            Method::PUT,
            &inline,
            Some(json!({"document": SYNTAX_ERROR})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.pointer(), "/document");
    assert_eq!(refused.body["error"]["location"]["line"], 4);
    let document = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:Get*", "Resource": "*"}]});
    let put = api
        .call(Method::PUT, &inline, Some(json!({"document": document})))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["inline_policies"]["ReadLogs"], document);
    let deleted = api.call(Method::DELETE, &inline, None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.body["inline_policies"].get("ReadLogs").is_none());

    // A session's change without its CSRF token is refused.
    let (alice, _) = session_of(&state, person("alice", &["admins"])).await;
    let no_csrf = call(&api.base, Method::PUT, &attach, Auth::cookie(&alice), None).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(no_csrf.code(), "CSRF_TOKEN_INVALID");

    assert_audited(
        state.store.as_ref(),
        &[
            ("admin:AttachRolePolicy", Outcome::Success),
            ("admin:DetachRolePolicy", Outcome::Success),
            ("admin:PutRolePolicy", Outcome::Success),
            ("admin:DeleteRolePolicy", Outcome::Success),
        ],
        &[&api.write],
    )
    .await;
}

/// The list names every policy; a policy's page lists its versions and where it is
/// attached, and compares two versions line by line; only admins see them.
async fn policy_pages_show_versions_and_compare(db: TestStore) {
    let s = seeded(&db).await;
    let id = policy_id(&s.state, "ViewOnlyAccess").await;
    let arn = "arn:aws:iam::aws:policy/ViewOnlyAccess";
    let v2 = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Sid\": \"ViewOnly\",\n      \"Effect\": \"Allow\",\n      \"Action\": [\"ec2:Describe*\", \"logs:Describe*\"],\n      \"Resource\": \"*\"\n    }\n  ]\n}";
    s.state
        .store
        .create_policy_version(arn, v2, false)
        .await
        .unwrap();

    let list = page(&s.base, Some(&s.admin), "/admin/policies").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    for name in ["AdministratorAccess", "ViewOnlyAccess", "DeveloperBoundary"] {
        assert!(list.body.contains(name), "{name} listed");
    }
    assert!(
        list.body
            .contains(&format!("href=\"/admin/policies/{id}\""))
    );

    let detail = page(&s.base, Some(&s.admin), &format!("/admin/policies/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert!(detail.body.contains("id=\"version-v1\""));
    assert!(detail.body.contains("id=\"version-v2\""));
    assert!(
        detail.body.contains("Make default"),
        "v2 can be made the default"
    );
    // Where it is attached: the demo's ReadOnly role.
    let attachments = detail.body.split("id=\"attachments\"").nth(1).unwrap();
    assert!(attachments.contains("ReadOnly"), "{attachments}");

    let compared = page(
        &s.base,
        Some(&s.admin),
        &format!("/admin/policies/{id}?a=v1&b=v2"),
    )
    .await;
    assert_eq!(compared.status, StatusCode::OK);
    let diff = compared.body.split("id=\"compare\"").nth(1).unwrap();
    let diff = diff.split("</table>").next().unwrap();
    // v1 is stored compact, shown pretty; its action list differs from v2's.
    assert!(
        diff.contains("class=\"changed\"") || diff.contains("class=\"removed\""),
        "{diff}"
    );
    assert!(diff.contains("logs:Describe*"), "{diff}");
    assert!(diff.contains("class=\"same\""), "{diff}");

    let new = page(&s.base, Some(&s.admin), "/admin/policies/new").await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(new.body.contains("/static/admin-policies.js"));
    let missing = page(
        &s.base,
        Some(&s.admin),
        "/admin/policies/ANPANOSUCHPOLICY0000",
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    for path in [
        "/admin/policies",
        "/admin/policies/new",
        &format!("/admin/policies/{id}"),
    ] {
        let refused = page(&s.base, Some(&s.member), path).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }
}

both_backends!(
    validate_api_locates_faults,
    role_policies_attach_detach_and_inline,
    policy_pages_show_versions_and_compare,
);

/// No horizontal overflow (a difference in pixels of at most 0).
fn fits(overflow: &Value) -> bool {
    overflow.as_i64().is_some_and(|px| px <= 0)
}

/// In Chromium: the admin types a policy with a syntax error into the editor, sees
/// the error at its line and column (the line marked, the caret sent there) and
/// Save disabled; fixes it, saves, and sees the new version as the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_editor_marks_errors_as_you_type() {
    let db = sqlite_store().await;
    let s = seeded(&db).await;
    let id = policy_id(&s.state, "DeveloperHomeBucket").await;
    let base = s.base.clone();
    let admin = s.admin.clone();
    with_browser("admin-policy-editor", |browser| async move {
        let outcome = async {
            browser.goto(&format!("{base}/admin/policies")).await?;
            browser
                .driver()
                .add_cookie(thirtyfour::Cookie::new("rg_session", admin))
                .await?;
            browser.goto(&format!("{base}/admin/policies/{id}")).await?;
            // The stored version is valid.
            browser.find("#new-version .editor-valid").await?;
            let editor = browser.find("#version-document").await?;
            let save = browser.find("#new-version button[type=submit]").await?;
            ensure!(save.is_enabled().await?, "Save is enabled for a valid document");

            editor.clear().await?;
            editor
                .send_keys("{\"Version\": \"2012-10-17\",\n\"Statement\": [{\"Effect\": \"Allow\",\n\"Action\": \"s3:ListBucket\", \"Resource\": \"*\",}]}")
                .await?;
            let error = browser.find("#new-version .editor-error").await?.text().await?;
            ensure!(error.contains("Syntax errors in policy"), "error shown: {error:?}");
            let location = browser.find("#new-version .editor-location").await?.text().await?;
            ensure!(location == "Line 3, column 44", "location shown: {location:?}");
            let marked = browser.find("#new-version .editor-gutter .error-line").await?.text().await?;
            ensure!(marked == "3", "line 3 marked in the gutter, not {marked:?}");
            ensure!(!save.is_enabled().await?, "Save is disabled while invalid");
            browser.find("#new-version .editor-go").await?.click().await?;
            let caret = browser
                .driver()
                .execute("return document.getElementById('version-document').selectionStart;", vec![])
                .await?;
            let text = editor.prop("value").await?.unwrap_or_default();
            let expected = text.split('\n').take(2).map(|l| l.len() + 1).sum::<usize>() + 43;
            ensure!(caret.json() == &json!(expected), "caret at {:?}, expected {expected}", caret.json());
            browser.screenshot("admin-policy-editor-error").await?;

            editor.clear().await?;
            editor
                .send_keys("{\"Version\": \"2012-10-17\",\n\"Statement\": [{\"Effect\": \"Allow\",\n\"Action\": \"s3:ListBucket\", \"Resource\": \"*\"}]}")
                .await?;
            browser.find("#new-version .editor-valid").await?;
            ensure!(save.is_enabled().await?, "Save is enabled once valid");
            browser.click_to_next_page(&save).await?;
            let v2 = browser.find("#version-v2").await?.text().await?;
            ensure!(v2.contains("default"), "v2 is the default: {v2:?}");
            let flash = browser.find("#flash").await?.text().await?;
            ensure!(flash.contains("The new version was saved."), "flash: {flash:?}");
            browser.screenshot("admin-policy-saved").await?;

            // The comparison, and the pages on a narrow window: nothing wider than it.
            browser.goto(&format!("{base}/admin/policies/{id}?a=v1&b=v2#compare")).await?;
            browser.find("#compare table.diff tr.changed").await?;
            browser.screenshot("admin-policy-compare").await?;
            browser.driver().set_window_rect(0, 0, 420, 900).await?;
            for path in ["/admin/policies".to_owned(), format!("/admin/policies/{id}?a=v1&b=v2")] {
                browser.goto(&format!("{base}{path}")).await?;
                browser.find("main h1").await?;
                let overflow = browser
                    .driver()
                    .execute("return document.documentElement.scrollWidth - window.innerWidth;", vec![])
                    .await?;
                ensure!(fits(overflow.json()), "{path} is wider than a narrow window by {:?}px", overflow.json());
            }
            browser.screenshot("admin-policy-narrow").await?;
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
    let versions = s
        .state
        .store
        .list_policy_versions(&format!(
            "arn:aws:iam::{DEMO_ACCOUNT}:policy/DeveloperHomeBucket"
        ))
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions[1].is_default);
    assert!(versions[1].document.contains("s3:ListBucket"));
}
