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
