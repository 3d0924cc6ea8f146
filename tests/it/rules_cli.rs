//! The real `rolegate` binary on both backends: `rolegate rules export|plan|apply`
//! against a running server (the diff and who gains, exit codes, a stale file, an
//! invalid rule, a missing token), and `rolegate admin export|import` (a fresh
//! database reproduces the model, re-import changes nothing, an invalid document
//! changes nothing).

use std::sync::Arc;

use rolegate::iam::{AccountId, IamPath, PolicyName, RoleName, Tag, Tags, UserName};
use rolegate::mapping::Rule;
use rolegate::service::entitlements::Entitlements;
use rolegate::service::rulesets::Rulesets;
use rolegate::store::{
    AdminScope, Backend, IdentitySourceKind, NewGroup, NewIamUser, NewIdentitySource,
    NewManagedPolicy, NewOidcProvider, NewRole, NewUser, Store,
};
use serde_json::{Value, json};

use crate::admin_client::{
    self, RULES_ACCOUNT, grant_rule, issue_token, person, with_admins, with_rule_roles,
};
use crate::both_backends;
use crate::helpers::{TestStore, app_state, postgres_store, run_binary, spawn_state, sqlite_store};

const ACCOUNT: &str = RULES_ACCOUNT;

both_backends!(
    rules_cli_export_plan_apply,
    rules_cli_admin_export_import_round_trip
);

/// Runs the binary off the runtime's threads (the server answers on them).
async fn rolegate(args: Vec<String>, envs: Vec<(String, String)>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_binary(&args, &envs)
    })
    .await
    .unwrap()
}

fn trust() -> String {
    admin_client::trust(ACCOUNT).to_string()
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &std::path::Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

async fn rules_cli_export_plan_apply(db: TestStore) {
    let state = with_admins(app_state(db.store.clone()).await);
    with_rule_roles(&state).await;
    let token = issue_token(&state, "rules-cli", AdminScope::Write)
        .await
        .secret;
    state
        .entitlements
        .record_sign_in(&person("carol", &["developers"]))
        .await
        .unwrap();
    let base = spawn_state(state.clone());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.json");
    let env = vec![("ROLEGATE_ADMIN_TOKEN".to_owned(), token.clone())];
    let rules = |command: &str, path: &std::path::Path| {
        vec![
            "rules".to_owned(),
            command.to_owned(),
            "--url".to_owned(),
            base.clone(),
            path.display().to_string(),
        ]
    };

    // Export the empty ruleset, add a rule, plan: the diff and who gains, exit 2.
    let (code, _, stderr) = rolegate(rules("export", &file), env.clone()).await;
    assert_eq!(code, 0, "{stderr}");
    let mut exported = read_json(&file);
    assert_eq!(exported, json!({"base_version": 0, "rules": []}));
    exported["rules"] = json!([grant_rule("r-devs", "developers", "Developer")]);
    write_json(&file, &exported);
    let (code, stdout, stderr) = rolegate(rules("plan", &file), env.clone()).await;
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("+ r-devs"), "{stdout}");
    assert!(stdout.contains("still in force"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "carol (directory/id-carol) gains Developer in account {ACCOUNT}"
        )),
        "{stdout}"
    );

    // Apply publishes version 1; the same file then plans no changes (exit 0).
    let (code, stdout, stderr) = rolegate(rules("apply", &file), env.clone()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("as version 1"), "{stdout}");
    assert_eq!(state.rulesets.current().await.unwrap().version, 1);
    let (code, stdout, stderr) = rolegate(rules("plan", &file), env.clone()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("No changes"), "{stdout}");

    // A changed field is shown compactly; a stale file is refused by apply.
    let (code, _, stderr) = rolegate(rules("export", &file), env.clone()).await;
    assert_eq!(code, 0, "{stderr}");
    let mut edited = read_json(&file);
    assert_eq!(edited["base_version"], 1);
    edited["rules"][0]["grant"][0]["role"] = json!("Auditor");
    write_json(&file, &edited);
    let (code, stdout, _) = rolegate(rules("plan", &file), env.clone()).await;
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("~ r-devs:") && stdout.contains("grant: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("carol (directory/id-carol) loses Developer"),
        "{stdout}"
    );
    assert!(
        stdout.contains("carol (directory/id-carol) gains Auditor"),
        "{stdout}"
    );
    let meanwhile: Vec<Rule> = serde_json::from_value(json!([
        grant_rule("r-devs", "developers", "Developer"),
        grant_rule("r-audit", "auditors", "Auditor"),
    ]))
    .unwrap();
    state
        .rulesets
        .publish(1, &meanwhile, "directory:bob", None, None)
        .await
        .unwrap();
    let (code, stdout, stderr) = rolegate(rules("apply", &file), env.clone()).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: the ruleset changed since {} was exported (base v1, now v2): run `rolegate rules export` again",
            file.display()
        )),
        "{stderr}"
    );
    let (_, stdout, _) = rolegate(rules("plan", &file), env.clone()).await;
    assert!(stdout.contains("version 2 is in force now"), "{stdout}");
    assert_eq!(state.rulesets.current().await.unwrap().version, 2);

    // An invalid rule: every error with its pointer, nothing published.
    let (code, _, _) = rolegate(rules("export", &file), env.clone()).await;
    assert_eq!(code, 0);
    let mut invalid = read_json(&file);
    invalid["rules"][1]["when"] = json!({"claim": "groups", "op": "regex", "value": "(?=admin)x"});
    write_json(&file, &invalid);
    let (code, stdout, stderr) = rolegate(rules("apply", &file), env.clone()).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error: REGEX_UNSUPPORTED_SYNTAX: ")
            && stderr.contains("(at /rules/1/when"),
        "{stderr}"
    );
    assert_eq!(state.rulesets.current().await.unwrap().version, 2);

    // No token: a clear error; a token file others may read is refused.
    let (code, _, stderr) = rolegate(rules("plan", &file), Vec::new()).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no admin API token: set ROLEGATE_ADMIN_TOKEN"),
        "{stderr}"
    );
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let mut with_file = rules("export", &dir.path().join("again.json"));
    with_file.extend(["--token-file".to_owned(), token_file.display().to_string()]);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (code, _, stderr) = rolegate(with_file.clone(), Vec::new()).await;
        assert_eq!(code, 1);
        assert!(stderr.contains("readable by group or others"), "{stderr}");
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (code, _, stderr) = rolegate(with_file, Vec::new()).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(read_json(&dir.path().join("again.json"))["base_version"], 2);
}

/// Accounts, a managed policy, a role with everything, directory users and a
/// group, an IAM user, an OIDC provider and a ruleset.
async fn seed_model(store: &Arc<dyn Store>) {
    let account = AccountId::parse(ACCOUNT).unwrap();
    store.create_account(&account, "engineering").await.unwrap();
    let read_only = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]});
    let policy = store
        .create_policy(&NewManagedPolicy {
            account_id: Some(account.clone()),
            path: IamPath::root(),
            name: PolicyName::parse("ReadOnly").unwrap(),
            description: rolegate::iam::Description::parse("read only").unwrap(),
            document: read_only.to_string(),
        })
        .await
        .unwrap();
    let mut role = NewRole::new(
        account.clone(),
        RoleName::parse("Developer").unwrap(),
        trust(),
    );
    role.tags = Tags::new(vec![Tag::parse("team", "platform").unwrap()]).unwrap();
    role.permissions_boundary = Some(policy.arn.clone());
    role.attached_policies = vec![policy.arn.clone()];
    role.inline_policies = vec![(PolicyName::parse("Logs").unwrap(), read_only.to_string())];
    store.create_role(&role).await.unwrap();
    store
        .create_identity_source(&NewIdentitySource {
            id: "directory".into(),
            kind: IdentitySourceKind::Directory,
            display_name: "Rolegate directory".into(),
            config: json!({}),
            enabled: true,
        })
        .await
        .unwrap();
    for user in ["alice", "bob"] {
        store
            .create_user(&NewUser {
                identity_source_id: "directory".into(),
                user_name: UserName::parse(user).unwrap(),
                display_name: user.to_uppercase(),
                email: Some(format!("{user}@example.com")),
                password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            })
            .await
            .unwrap();
    }
    let group = rolegate::iam::GroupName::parse("developers").unwrap();
    store
        .create_group(&NewGroup {
            identity_source_id: "directory".into(),
            name: group.clone(),
            description: "devs".into(),
        })
        .await
        .unwrap();
    store
        .add_user_to_group("directory", &group, &UserName::parse("alice").unwrap())
        .await
        .unwrap();
    store
        .create_iam_user(&NewIamUser {
            account_id: account.clone(),
            path: IamPath::root(),
            name: UserName::parse("ci").unwrap(),
            tags: Tags::default(),
            inline_policies: vec![(PolicyName::parse("Deploy").unwrap(), read_only.to_string())],
            attached_policies: vec![policy.arn.clone()],
        })
        .await
        .unwrap();
    store
        .create_oidc_provider(&NewOidcProvider {
            account_id: account,
            url: "https://token.actions.githubusercontent.com".into(),
            client_ids: vec!["sts.amazonaws.com".into()],
        })
        .await
        .unwrap();
    let rules: Vec<Rule> =
        serde_json::from_value(json!([grant_rule("r-devs", "developers", "Developer")])).unwrap();
    Rulesets::new(Arc::new(Entitlements::new(store.clone())))
        .publish(0, &rules, "directory:alice", None, None)
        .await
        .unwrap();
}

async fn fresh_like(db: &TestStore) -> TestStore {
    match db.store.backend() {
        Backend::Sqlite => sqlite_store().await,
        Backend::Postgres => postgres_store().await,
    }
}

fn admin(command: &str, document: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "admin".to_owned(),
        command.to_owned(),
        document.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

fn on(db: &TestStore) -> Vec<(String, String)> {
    vec![("ROLEGATE_DATABASE__URL".to_owned(), db.url.clone())]
}

async fn rules_cli_admin_export_import_round_trip(db: TestStore) {
    seed_model(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("iam.json");
    let (code, _, stderr) = rolegate(admin("export", &original, &[]), on(&db)).await;
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&original).unwrap();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );
    let model = read_json(&original);
    assert_eq!(
        model["roles"][0]["inline_policies"]["Logs"]["Statement"][0]["Action"],
        "s3:Get*"
    );
    assert_eq!(model["directory_groups"][0]["members"], json!(["alice"]));

    // Into a fresh database: not without --yes when nobody can be asked.
    let copy = fresh_like(&db).await;
    let (code, stdout, stderr) = rolegate(admin("import", &original, &[]), on(&copy)).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("create role Developer"), "{stdout}");
    assert!(stderr.contains("give --yes"), "{stderr}");
    assert!(copy.store.list_accounts().await.unwrap().is_empty());

    let (code, stdout, stderr) = rolegate(admin("import", &original, &["--yes"]), on(&copy)).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("publish 1 mapping rules"), "{stdout}");
    let reproduced = dir.path().join("copy.json");
    let (code, _, stderr) = rolegate(admin("export", &reproduced, &[]), on(&copy)).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(read_json(&reproduced), model);

    // Again, and as TOML: nothing to do.
    let (code, stdout, stderr) = rolegate(admin("import", &original, &["--yes"]), on(&copy)).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("no changes"), "{stdout}");
    let as_toml = dir.path().join("iam.toml");
    let (code, _, stderr) = rolegate(admin("export", &as_toml, &[]), on(&copy)).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = rolegate(admin("import", &as_toml, &[]), on(&copy)).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("no changes"), "{stdout}");

    // An invalid policy anywhere in the document: nothing changes.
    let mut broken = model.clone();
    broken["accounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "444455556666", "name": "new"}));
    broken["roles"][0]["description"] = json!("changed");
    broken["roles"].as_array_mut().unwrap().push(json!({
        "account": "444455556666", "name": "Broken",
        "trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]},
    }));
    let broken_file = dir.path().join("broken.json");
    write_json(&broken_file, &broken);
    let (code, stdout, stderr) =
        rolegate(admin("import", &broken_file, &["--yes"]), on(&copy)).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("nothing was changed") && stderr.contains("(at /roles/1/trust_policy)"),
        "{stderr}"
    );
    let (code, _, _) = rolegate(admin("export", &reproduced, &[]), on(&copy)).await;
    assert_eq!(code, 0);
    assert_eq!(read_json(&reproduced), model);
}
