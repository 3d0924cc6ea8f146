//! The admin UI's mapping-rule story in real Chromium, with a real OIDC provider:
//! an admin writes a rule, tests it, reviews who it affects and publishes it; the
//! person it names sees exactly its role at their next request; removing the rule
//! takes the role away and restoring the version brings it back. Also: a stale
//! publish shows both versions and saves nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use thirtyfour::prelude::*;

use crate::admin_client::with_admins;
use crate::both_backends;
use crate::browser::{
    Browser, POLL, WAIT, add_oidc_source, back_from_provider, backend, browser_installed,
    provider_login, submit_sign_in, wait_for_visible_roles, with_browser_within,
};
use crate::helpers::{TestStore, app_state, spawn_state};
use rolegate::seed;

const ALL_ROLES: [&str; 4] = ["Admin", "Developer", "ReadOnly", "DemoWorkload"];
const RULE_ID: &str = "corp-engineering";

/// Accepts the page's `confirm()` dialog, waiting for it; returns its text.
pub(crate) async fn accept_confirm(browser: &Browser) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = browser.driver().get_alert_text().await {
            browser.driver().accept_alert().await?;
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("no confirmation dialog appeared");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Replaces the text of the input or textarea at `css`.
pub(crate) async fn type_into(browser: &Browser, css: &str, text: &str) -> anyhow::Result<()> {
    let field = browser.find(css).await?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

/// Waits until the element at `css` shows text containing `wanted`; returns it.
pub(crate) async fn wait_for_text(
    browser: &Browser,
    css: &str,
    wanted: &str,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(element) = browser.driver().find(By::Css(css)).await
            && let Ok(text) = element.text().await
            && text.contains(wanted)
        {
            return Ok(text);
        }
        if Instant::now() > deadline {
            let text = match browser.driver().find(By::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => "(no such element)".into(),
            };
            bail!("`{css}` does not show {wanted:?}; it shows {text:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Signs the directory admin alice in on the way to `path`.
async fn admin_signs_in(browser: &Browser, base: &str, path: &str) -> anyhow::Result<()> {
    browser.goto(&format!("{base}{path}")).await?;
    browser.wait_for_path("/signin").await?;
    submit_sign_in(browser, "alice", "alice-demo-password").await?;
    browser.wait_for_path(path).await?;
    Ok(())
}

/// Reviews the draft and publishes it with `reason`; back on the rule list.
async fn publish_draft(browser: &Browser, base: &str, reason: &str) -> anyhow::Result<()> {
    browser.goto(&format!("{base}/admin/rules/review")).await?;
    type_into(browser, "input[name=reason]", reason).await?;
    browser.find("#publish").await?.click().await?;
    accept_confirm(browser).await?;
    browser.wait_for_path("/admin/rules").await?;
    Ok(())
}

/// The corp person's portal, reloaded, shows exactly `roles`.
async fn portal_shows(user: &Browser, base: &str, roles: &[&str]) -> anyhow::Result<()> {
    user.goto(&format!("{base}/start")).await?;
    wait_for_visible_roles(user, &ALL_ROLES, roles).await
}

async fn admin_publishes_tests_and_restores_a_rule_in_chromium(db: TestStore) {
    if !browser_installed() {
        return;
    }
    let state = with_admins(app_state(db.store.clone()).await);
    seed::seed_demo(state.store.as_ref()).await.expect("seed");
    let base = spawn_state(state.clone());
    let Some(peer) = crate::browser::corp_peer(&base) else {
        return;
    };
    add_oidc_source(&state, "corp", "Corp IdP", &peer.issuer).await;
    let shot = |page: &str| format!("admin-rules-{page}-{}", backend(&db));
    let name = shot("story");
    with_browser_within(&name, Duration::from_secs(240), |admin| async move {
        let outcome = async {
            // The corp person signs in first (groups Engineering, developers): no
            // rule names corp yet, so no role; the sign-in is now a recent one.
            let user = Browser::start().await?;
            user.goto(&format!("{base}/start")).await?;
            user.wait_for_path("/signin").await?;
            user.find("a.signin-source").await?.click().await?;
            provider_login(&user, "alice-password").await?;
            back_from_provider(&user, &base, true).await?;
            user.wait_for_path("/start").await?;
            wait_for_visible_roles(&user, &ALL_ROLES, &[]).await?;

            // The admin link is in the portal header for admins only.
            ensure!(
                user.driver()
                    .find_all(By::Css("#admin-link"))
                    .await?
                    .is_empty(),
                "a non-admin sees no Admin link"
            );
            admin_signs_in(&admin, &base, "/start").await?;
            admin.find("#admin-link").await?.click().await?;
            admin.wait_for_path("/admin").await?;
            admin.screenshot(&shot("overview")).await?;

            // A new rule in the editor.
            admin.goto(&format!("{base}/admin/rules/new")).await?;
            type_into(&admin, "input[name=id]", RULE_ID).await?;
            type_into(&admin, "input[name=name]", "Corp engineering reads").await?;
            type_into(&admin, "input[name=source]", "corp").await?;
            type_into(
                &admin,
                "textarea[name=when]",
                r#"{"claim": "groups", "op": "contains_any", "values": ["Engineering"]}"#,
            )
            .await?;
            type_into(
                &admin,
                "textarea[name=grant]",
                r#"[{"account": "123456789012", "role": "ReadOnly"}]"#,
            )
            .await?;

            // Tested against pasted claims: Sales does not match, and says why.
            type_into(&admin, "#test-source", "corp").await?;
            type_into(&admin, "#test-claims", r#"{"groups": ["Sales"]}"#).await?;
            admin.find("#run-test").await?.click().await?;
            wait_for_text(&admin, "#test-verdict", "did not apply").await?;
            let conditions = wait_for_text(&admin, "#test-conditions", "did not hold").await?;
            ensure!(
                conditions.contains("groups has \"Sales\""),
                "near miss: {conditions}"
            );
            type_into(&admin, "#test-claims", r#"{"groups": ["Engineering"]}"#).await?;
            admin.find("#run-test").await?.click().await?;
            wait_for_text(&admin, "#test-verdict", "applies").await?;
            wait_for_text(&admin, "#test-roles", "123456789012 / ReadOnly").await?;

            // Tested against the corp person's recent sign-in.
            let option = admin.find("#test-sign-in option[data-source=corp]").await?;
            ensure!(option.text().await?.contains("alice (corp)"));
            option.click().await?;
            admin.find("#run-test").await?.click().await?;
            let roles = wait_for_text(&admin, "#test-roles", "ReadOnly").await?;
            ensure!(roles.contains(RULE_ID), "granted by the new rule: {roles}");
            admin.screenshot(&shot("editor")).await?;

            // Saved to the draft: nothing is in force yet.
            admin.find("#save-draft").await?.click().await?;
            admin.wait_for_path("/admin/rules").await?;
            wait_for_text(&admin, "#draft-summary", "1 new").await?;
            portal_shows(&user, &base, &[]).await?;

            // The review names the person who gains the role.
            admin.goto(&format!("{base}/admin/rules/review")).await?;
            let gains = wait_for_text(
                &admin,
                "#impact-table tr[data-person=alice]",
                "123456789012/ReadOnly",
            )
            .await?;
            ensure!(gains.contains("corp"), "the corp person: {gains}");
            wait_for_text(&admin, "#rule-diff", RULE_ID).await?;
            admin.screenshot(&shot("review")).await?;
            publish_draft(&admin, &base, "Corp engineers read the demo account").await?;
            wait_for_text(&admin, "#flash", "Published").await?;
            portal_shows(&user, &base, &["ReadOnly"]).await?;

            // Removed in the editor and published: gone at the next request.
            admin.goto(&format!("{base}/admin/rules/{RULE_ID}")).await?;
            admin.find("#remove-rule").await?.click().await?;
            accept_confirm(&admin).await?;
            admin.wait_for_path("/admin/rules").await?;
            admin.goto(&format!("{base}/admin/rules/review")).await?;
            wait_for_text(
                &admin,
                "#impact-table tr[data-person=alice]",
                "123456789012/ReadOnly",
            )
            .await?;
            publish_draft(&admin, &base, "Corp engineers no longer read").await?;
            portal_shows(&user, &base, &[]).await?;

            // Restoring the version that had the rule brings the role back.
            admin.goto(&format!("{base}/admin/rules/versions")).await?;
            admin.screenshot(&shot("versions")).await?;
            admin
                .find("#versions tr[data-version='2'] button.restore")
                .await?
                .click()
                .await?;
            let asked = accept_confirm(&admin).await?;
            ensure!(asked.contains("version 2"), "asked: {asked}");
            wait_for_text(&admin, "#flash", "Restored version 2").await?;
            wait_for_text(&admin, "#versions tr[data-version='4']", "restored from 2").await?;
            portal_shows(&user, &base, &["ReadOnly"]).await?;
            user.quit().await;
            Ok(())
        }
        .await;
        (admin, outcome)
    })
    .await;
}

/// A draft published after someone else published meanwhile: both versions are
/// shown, nothing is saved.
async fn a_stale_publish_shows_both_versions(db: TestStore) {
    if !browser_installed() {
        return;
    }
    let state = with_admins(app_state(db.store.clone()).await);
    seed::seed_demo(state.store.as_ref()).await.expect("seed");
    let base = spawn_state(state.clone());
    let name = format!("admin-rules-stale-{}", backend(&db));
    with_browser_within(&name, Duration::from_secs(90), |admin| async move {
        let outcome = async {
            admin_signs_in(&admin, &base, "/admin/rules/demo-readonly").await?;
            type_into(&admin, "input[name=priority]", "5").await?;
            admin.find("#save-draft").await?.click().await?;
            admin.wait_for_path("/admin/rules").await?;

            // Someone else publishes version 2 meanwhile.
            let current = state.rulesets.current().await?;
            let mut theirs = current.rules.clone();
            theirs.retain(|rule| rule.id != "demo-admin");
            state
                .rulesets
                .publish(current.version, &theirs, "directory:carol", None, None)
                .await?;

            admin.goto(&format!("{base}/admin/rules/review")).await?;
            wait_for_text(&admin, "#review-base", "someone published meanwhile").await?;
            type_into(&admin, "input[name=reason]", "Reorder").await?;
            admin.find("#publish").await?.click().await?;
            accept_confirm(&admin).await?;
            let theirs_shown = wait_for_text(&admin, ".stale-theirs", "\"version\": 2").await?;
            ensure!(
                !theirs_shown.contains("demo-admin"),
                "theirs lacks demo-admin"
            );
            let yours = admin.find(".stale-yours").await?.text().await?;
            ensure!(
                yours.contains("demo-admin") && yours.contains("\"priority\": 5"),
                "{yours}"
            );
            admin
                .screenshot(&format!("admin-rules-stale-{}", "panel"))
                .await?;
            let after = state.rulesets.current().await?;
            ensure!(after.version == 2, "nothing saved: at {}", after.version);
            Ok(())
        }
        .await
        .context("stale publish");
        (admin, outcome)
    })
    .await;
}

both_backends!(
    admin_publishes_tests_and_restores_a_rule_in_chromium,
    a_stale_publish_shows_both_versions,
);
