//! Layered configuration: defaults, then a file, then ROLEGATE_* variables.

use rolegate::config::{Config, LogFormat};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_file_and_environment_layer_in_order() {
    let defaults = Config::load(None, env(&[])).unwrap();
    assert_eq!(defaults.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(defaults.iam.partition.as_str(), "aws");
    assert_eq!(defaults.log.format, LogFormat::Text);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rolegate.toml");
    std::fs::write(
        &file,
        "[iam]\npartition = \"aws-cn\"\n[server]\nlisten = \"0.0.0.0:9000\"\n",
    )
    .unwrap();
    let layered = Config::load(
        Some(&file),
        env(&[
            ("ROLEGATE_SERVER__LISTEN", "127.0.0.1:9100"),
            ("ROLEGATE_LOG__FORMAT", "json"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(
        layered.iam.partition.as_str(),
        "aws-cn",
        "file beats defaults"
    );
    assert_eq!(
        layered.server.listen.to_string(),
        "127.0.0.1:9100",
        "environment beats file"
    );
    assert_eq!(layered.log.format, LogFormat::Json);
}

#[test]
fn bad_values_are_rejected_with_the_key_named() {
    let error = Config::load(None, env(&[("ROLEGATE_IAM__PARTITION", "AWS!")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("partition"), "{error}");
    let error = Config::load(None, env(&[("ROLEGATE_DATABASE__MAX_CONNECTIONS", "0")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("max_connections"), "{error}");
    let error = Config::load(None, env(&[("ROLEGATE_LOG__FORMAT", "xml")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("format") || error.contains("xml"), "{error}");
    let error = Config::load(None, env(&[("ROLEGATE_PORTAL__SESSION_TTL_SECONDS", "60")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("portal.session_ttl_seconds"), "{error}");
}

/// Variables that merely start with ROLEGATE_ (a script's ROLEGATE_BIN, the tests'
/// ROLEGATE_TEST_POSTGRES_URL) are not configuration and do not stop start-up.
#[test]
fn other_rolegate_variables_are_not_configuration() {
    let config = Config::load(
        None,
        env(&[
            ("ROLEGATE_BIN", "/usr/local/bin/rolegate"),
            (
                "ROLEGATE_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1/postgres",
            ),
            ("ROLEGATE_SERVER__WORKERS", "3"),
        ]),
    )
    .unwrap();
    assert_eq!(config.server.workers, 3);
}

#[test]
fn portal_session_lifetime_defaults_to_eight_hours_and_can_be_set() {
    let defaults = Config::load(None, env(&[])).unwrap();
    assert_eq!(
        defaults.portal.settings().session_ttl,
        std::time::Duration::from_secs(8 * 3600)
    );
    let hour = Config::load(
        None,
        env(&[("ROLEGATE_PORTAL__SESSION_TTL_SECONDS", "3600")]),
    )
    .unwrap();
    assert_eq!(
        hour.portal.settings().session_ttl,
        std::time::Duration::from_secs(3600)
    );
}

#[test]
fn database_passwords_never_reach_debug_output() {
    let config = Config::load(
        None,
        env(&[(
            "ROLEGATE_DATABASE__URL",
            "postgres://app:hunter2@db:5432/rolegate",
        )]),
    )
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        debug.contains("postgres://app:***@db:5432/rolegate"),
        "{debug}"
    );
}

// ---------------------------------------------------------------------------------
// [server] public_url and trusted_proxies

#[test]
fn public_url_and_trusted_proxies_default_to_none() {
    let config = Config::load(None, env(&[])).unwrap();
    let settings = config.server.settings().unwrap();
    assert_eq!(settings.public_url, None);
    assert!(settings.trusted_proxies.is_empty());
}

#[test]
fn public_url_is_normalised_to_its_origin() {
    for (given, origin) in [
        (
            "https://rolegate.example.com",
            "https://rolegate.example.com",
        ),
        (
            "https://rolegate.example.com/",
            "https://rolegate.example.com",
        ),
        (
            "https://Rolegate.Example.COM:443/",
            "https://rolegate.example.com",
        ),
        (
            "https://rolegate.example.com:8443",
            "https://rolegate.example.com:8443",
        ),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("  https://[::1]:9443  ", "https://[::1]:9443"),
    ] {
        let config = Config::load(None, env(&[("ROLEGATE_SERVER__PUBLIC_URL", given)])).unwrap();
        let url = config.server.settings().unwrap().public_url.unwrap();
        assert_eq!(url.as_str(), origin, "{given}");
        assert_eq!(url.is_https(), origin.starts_with("https:"), "{given}");
    }
}

#[test]
fn bad_public_urls_are_refused_with_the_key_named() {
    for bad in [
        "rolegate.example.com",
        "/rolegate",
        "ftp://rolegate.example.com",
        "https://rolegate.example.com/sso",
        "https://rolegate.example.com/?x=1",
        "https://rolegate.example.com/#top",
        "https://admin:pw@rolegate.example.com",
        "https://",
    ] {
        let error = Config::load(None, env(&[("ROLEGATE_SERVER__PUBLIC_URL", bad)]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("server.public_url"), "{bad}: {error}");
    }
}

#[test]
fn trusted_proxies_parse_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        &dir,
        "[server]\npublic_url = \"https://rolegate.example.com/\"\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"fd00::/8\"]\n",
    );
    let from_file = Config::load(Some(&file), env(&[])).unwrap();
    let settings = from_file.server.settings().unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let proxies = &settings.trusted_proxies;
    assert!(proxies.contains(ip("10.20.30.40")));
    assert!(proxies.contains(ip("192.0.2.7")));
    assert!(
        proxies.contains(ip("::ffff:192.0.2.7")),
        "IPv4-mapped counts as IPv4"
    );
    assert!(proxies.contains(ip("fd12::1")));
    assert!(!proxies.contains(ip("192.0.2.8")));
    assert!(!proxies.contains(ip("127.0.0.1")));

    // A comma-separated variable is a list (one entry is a list of one); it
    // replaces the file's list; an empty variable means none.
    let from_env = Config::load(
        Some(&file),
        env(&[(
            "ROLEGATE_SERVER__TRUSTED_PROXIES",
            "127.0.0.1, 172.16.0.0/12",
        )]),
    )
    .unwrap();
    assert_eq!(
        from_env.server.trusted_proxies,
        ["127.0.0.1", " 172.16.0.0/12"]
    );
    let proxies = from_env.server.settings().unwrap().trusted_proxies;
    assert!(proxies.contains(ip("127.0.0.1")));
    assert!(proxies.contains(ip("172.31.255.1")));
    assert!(!proxies.contains(ip("10.0.0.1")));
    let one = Config::load(None, env(&[("ROLEGATE_SERVER__TRUSTED_PROXIES", "::1")])).unwrap();
    assert!(
        one.server
            .settings()
            .unwrap()
            .trusted_proxies
            .contains(ip("::1"))
    );
    let none = Config::load(
        Some(&file),
        env(&[("ROLEGATE_SERVER__TRUSTED_PROXIES", "")]),
    )
    .unwrap();
    assert!(none.server.settings().unwrap().trusted_proxies.is_empty());
    // Other values stay strings: no list splitting elsewhere.
    let listen = Config::load(None, env(&[("ROLEGATE_LOG__FILTER", "info,sqlx=warn")])).unwrap();
    assert_eq!(listen.log.filter, "info,sqlx=warn");
}

#[test]
fn bad_trusted_proxies_are_refused_with_the_key_named() {
    for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.1,nope"] {
        let error = Config::load(None, env(&[("ROLEGATE_SERVER__TRUSTED_PROXIES", bad)]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("server.trusted_proxies"), "{bad}: {error}");
    }
}

// ---------------------------------------------------------------------------------
// [[identity_sources]]

const CORP: &str = r#"
[[identity_sources]]
id = "corp"
kind = "oidc"
display_name = "Corp SSO"
issuer = "https://idp.example.com/realms/corp"
client_id = "rolegate"
client_secret = "file-secret"
scopes = ["openid", "email", "groups"]
userinfo = true

[identity_sources.claims]
groups = "realm_access.roles"

[identity_sources.session_tags]
Department = "department"
Cost-Center = "cost_center"

[[identity_sources]]
id = "partner"
kind = "oidc"
display_name = "Partner"
enabled = false
issuer = "http://127.0.0.1:9999"
client_id = "rg"
"#;

fn config_file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let file = dir.path().join("rolegate.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn identity_sources_parse_from_the_file_and_environment() {
    assert!(
        Config::load(None, env(&[]))
            .unwrap()
            .identity_sources
            .is_empty()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(&dir, CORP);
    let config = Config::load(
        Some(&file),
        env(&[("ROLEGATE_IDENTITY_SOURCES__1__CLIENT_SECRET", "env-secret")]),
    )
    .unwrap();
    let [corp, partner] = &config.identity_sources[..] else {
        panic!("{:?}", config.identity_sources)
    };
    assert_eq!((corp.id.as_str(), corp.enabled), ("corp", true));
    assert_eq!(corp.client_secret.as_ref().unwrap().expose(), "file-secret");
    let oidc = corp.oidc_config().unwrap();
    assert_eq!(oidc.issuer, "https://idp.example.com/realms/corp");
    assert_eq!(oidc.scopes, ["openid", "email", "groups"]);
    assert!(oidc.userinfo);
    assert_eq!(oidc.claims.groups, "realm_access.roles");
    assert_eq!(oidc.claims.user_name, "preferred_username", "defaults kept");
    assert_eq!(oidc.session_tags["Department"], "department");
    assert_eq!(
        oidc.session_tags["Cost-Center"], "cost_center",
        "tag keys keep their case"
    );
    assert!(oidc.client_secret.is_none(), "sealed only when stored");
    assert!(!partner.enabled);
    assert_eq!(
        partner.client_secret.as_ref().unwrap().expose(),
        "env-secret",
        "ROLEGATE_IDENTITY_SOURCES__<index>__<KEY> addresses an entry"
    );
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("file-secret") && !debug.contains("env-secret"),
        "{debug}"
    );
}

#[test]
fn invalid_identity_sources_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let entry = |extra: &str| {
        format!(
            "[[identity_sources]]\nid = \"corp\"\nkind = \"oidc\"\ndisplay_name = \"Corp\"\nissuer = \"https://idp.example.com\"\nclient_id = \"rg\"\n{extra}"
        )
    };
    let saml = |extra: &str| {
        format!(
            "[[identity_sources]]\nid = \"corp\"\nkind = \"saml\"\ndisplay_name = \"Corp\"\n{extra}"
        )
    };
    for (text, expected) in [
        (
            entry("").replace("https://idp", "http://idp"),
            "must use https",
        ),
        (entry("").replace("\"oidc\"", "\"ldap\""), "kind \"ldap\""),
        // An OIDC entry's keys are not a SAML source's (which one is named first
        // depends on the order the configuration crate keeps them in).
        (entry("").replace("\"oidc\"", "\"saml\""), "unknown field"),
        (
            saml(""),
            "idp_metadata_url or idp_metadata_file is required",
        ),
        (
            saml("idp_metadata_url = \"https://idp.example.com/md\"\nidp_metadata_file = \"/x\"\n"),
            "not both",
        ),
        (
            saml("idp_metadata_url = \"http://idp.example.com/md\"\n"),
            "must use https",
        ),
        (
            saml("idp_metadata_file = \"/x\"\nsp_certificate_file = \"/c\"\n"),
            "sp_private_key_file together",
        ),
        (
            saml("idp_metadata_file = \"/x\"\nclock_skew_seconds = 7200\n"),
            "clock_skew_seconds",
        ),
        (
            saml("idp_metadata_file = \"/x\"\nclient_secret = \"s\"\n"),
            "SAML source has none",
        ),
        (entry("clientid = \"typo\"\n"), "clientid"),
        (entry("session_tags = { \"aws:x\" = \"y\" }\n"), "aws:"),
        (entry("client_secret = \"\"\n"), "client_secret is empty"),
        (entry("").replace("\"corp\"", "\"Corp!\""), "lower-case"),
        (
            entry("").replace("\"corp\"", "\"directory\""),
            "built-in directory",
        ),
        (format!("{}\n{}", entry(""), entry("")), "earlier entry"),
    ] {
        let file = config_file(&dir, &text);
        let error = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(
            error.contains("identity_sources[") && error.contains(expected),
            "{expected}: {error}"
        );
        assert!(!error.contains('\n'), "one line: {error}");
    }
}

async fn upsert_identity_sources(db: crate::helpers::TestStore) {
    use rolegate::store::{IdentitySourceKind, NewIdentitySource, Upserted};
    let mut new = NewIdentitySource {
        id: "corp".into(),
        kind: IdentitySourceKind::Oidc,
        display_name: "Corp".into(),
        config: serde_json::json!({ "issuer": "https://idp.example.com", "client_id": "rg" }),
        enabled: true,
    };
    let (created, what) = db.store.upsert_identity_source(&new).await.unwrap();
    assert_eq!(what, Upserted::Created);
    let (same, what) = db.store.upsert_identity_source(&new).await.unwrap();
    assert_eq!((what, &same), (Upserted::Unchanged, &created));
    new.display_name = "Corp SSO".into();
    new.enabled = false;
    let (updated, what) = db.store.upsert_identity_source(&new).await.unwrap();
    assert_eq!(what, Upserted::Updated);
    assert_eq!(
        (
            updated.display_name.as_str(),
            updated.enabled,
            updated.created_at
        ),
        ("Corp SSO", false, created.created_at)
    );
    assert_eq!(db.store.get_identity_source("corp").await.unwrap(), updated);
    new.kind = IdentitySourceKind::Directory;
    let error = db.store.upsert_identity_source(&new).await.unwrap_err();
    assert_eq!(error.code(), "DeleteConflict", "{error}");
    assert!(error.to_string().contains("kind"), "{error}");
    new.id = "Bad Id".into();
    assert_eq!(
        db.store
            .upsert_identity_source(&new)
            .await
            .unwrap_err()
            .code(),
        "ValidationError"
    );
}

crate::both_backends!(upsert_identity_sources);

/// `rolegate serve` with `[[identity_sources]]`: the source is on /signin, its secret
/// is sealed in the database, a restart with the same file changes nothing, and an
/// invalid entry stops start-up with one line naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_applies_configured_identity_sources() {
    use crate::helpers::{TEST_MASTER_KEY, run_binary, start_binary};
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(&dir, CORP);
    let database = format!("sqlite://{}", dir.path().join("rolegate.db").display());
    let envs = [
        ("ROLEGATE_DATABASE__URL", database.as_str()),
        ("ROLEGATE_SECRETS__MASTER_KEY", TEST_MASTER_KEY),
        ("ROLEGATE_SERVER__LISTEN", "127.0.0.1:0"),
        ("ROLEGATE_LOG__FILTER", "warn"),
    ];
    let args = ["serve", "--config", file.to_str().unwrap()];
    let stored = {
        let running = start_binary(&args, &envs, std::time::Duration::from_secs(60));
        let signin = reqwest::get(format!("{}/signin", running.base_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            signin.contains("Corp SSO") && signin.contains("/signin/oidc/corp"),
            "{signin}"
        );
        assert!(
            !signin.contains("Partner"),
            "disabled sources are not listed"
        );
        let store = rolegate::store::open(&database, &Default::default())
            .await
            .unwrap();
        store.get_identity_source("corp").await.unwrap()
    };
    let sealed = stored.config["client_secret"].as_str().unwrap().to_owned();
    assert!(!sealed.contains("file-secret"), "sealed at rest: {sealed}");
    assert_eq!(stored.config["session_tags"]["Department"], "department");
    let opened = crate::helpers::app_state(
        rolegate::store::open(&database, &Default::default())
            .await
            .unwrap(),
    )
    .await
    .sealer
    .open_secret(&sealed, &rolegate::idp::oidc::client_secret_context("corp"))
    .unwrap();
    assert_eq!(opened.expose(), "file-secret");

    // Same file again: nothing changes, not even the sealing of the secret.
    drop(start_binary(
        &args,
        &envs,
        std::time::Duration::from_secs(60),
    ));
    let store = rolegate::store::open(&database, &Default::default())
        .await
        .unwrap();
    assert_eq!(store.get_identity_source("corp").await.unwrap(), stored);

    // A changed file updates the row; a source left out of it stays.
    let renamed = CORP.replace("Corp SSO", "Corporate SSO");
    let without_partner = renamed
        .split("[[identity_sources]]\nid = \"partner\"")
        .next()
        .unwrap();
    let changed = config_file(&dir, without_partner);
    let running = start_binary(
        &["serve", "--config", changed.to_str().unwrap()],
        &envs,
        std::time::Duration::from_secs(60),
    );
    let signin = reqwest::get(format!("{}/signin", running.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(signin.contains("Corporate SSO"), "{signin}");
    drop(running);
    let corp = store.get_identity_source("corp").await.unwrap();
    assert_eq!(corp.config["client_secret"], stored.config["client_secret"]);
    assert!(store.get_identity_source("partner").await.is_ok());

    // An invalid entry: no start, one line naming it.
    let bad = config_file(
        &dir,
        &CORP.replace("https://idp.example.com", "http://idp.example.com"),
    );
    let (code, _, stderr) = run_binary(&["serve", "--config", bad.to_str().unwrap()], &envs);
    assert_ne!(code, 0);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("identity_sources[0] \"corp\"") && lines[0].contains("https"),
        "{stderr}"
    );
}

#[test]
fn admin_groups_default_to_none_and_are_source_and_group() {
    let defaults = Config::load(None, env(&[])).unwrap();
    assert!(defaults.admin.groups().unwrap().is_empty());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rolegate.toml");
    std::fs::write(
        &file,
        "[admin]\ngroups = [\"directory:admins\", \"corp:platform-admins\"]\n",
    )
    .unwrap();
    let from_file = Config::load(Some(&file), env(&[])).unwrap();
    let groups: Vec<String> = from_file
        .admin
        .groups()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(groups, ["directory:admins", "corp:platform-admins"]);

    let from_env = Config::load(
        None,
        env(&[("ROLEGATE_ADMIN__GROUPS", "directory:admins,corp:ops")]),
    )
    .unwrap();
    assert_eq!(from_env.admin.groups().unwrap().len(), 2);

    std::fs::write(&file, "[admin]\ngroups = [\"admins\"]\n").unwrap();
    let error = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
    assert!(
        error.contains("admin.groups") && error.contains("source:group"),
        "{error}"
    );
}
