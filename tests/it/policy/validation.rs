//! Parsing and validation: IAM error messages, managed policies, size limit,
//! kind rules.

use std::path::PathBuf;

use rolegate::policy::{Effect, ParseOptions, Policy, PolicyKind, PolicyVersion};
use serde_json::Value;

fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpora")
        .join(rel)
}

fn moto_cases() -> Value {
    let path = corpus("policy-eval-cases/moto/iam-policy-validation.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("moto cases are JSON")
}

/// moto sends `json.dumps(document)` to CreatePolicy (a customer managed
/// identity policy); the first document is a bare JSON string.
fn create_policy(document: &Value) -> Result<Policy, rolegate::policy::PolicyError> {
    let text = serde_json::to_string(document).expect("serialize");
    Policy::parse(&text, ParseOptions::customer_managed(PolicyKind::Identity))
}

#[test]
fn moto_invalid_documents_are_rejected_with_iam_messages() {
    let cases = moto_cases();
    let cases = cases["invalid_policy_document_test_cases"]
        .as_array()
        .expect("invalid cases");
    assert_eq!(cases.len(), 78);
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let expected = case["error_message"].as_str().expect("message");
        match create_policy(&case["document"]) {
            Ok(_) => failures.push(format!("#{i}: accepted, expected {expected:?}")),
            Err(e) => {
                assert_eq!(e.code(), "MalformedPolicyDocument", "#{i}");
                if e.to_string() != expected {
                    failures.push(format!(
                        "#{i}: got {:?} ({:#}), expected {expected:?}",
                        e.to_string(),
                        e
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn moto_valid_documents_are_accepted() {
    let cases = moto_cases();
    let docs = cases["valid_policy_documents"]
        .as_array()
        .expect("valid docs");
    assert_eq!(docs.len(), 54);
    let failures: Vec<String> = docs
        .iter()
        .enumerate()
        .filter_map(|(i, d)| create_policy(d).err().map(|e| format!("#{i}: {e:#}")))
        .collect();
    assert!(failures.is_empty(), "rejected:\n{}", failures.join("\n"));
}

#[test]
fn every_aws_managed_policy_parses_as_identity_without_size_limit() {
    let top = corpus("aws-managed-policies");
    let mut count = 0;
    let mut over_limit = 0;
    let mut failures = Vec::new();
    // The current policies and the deprecated ones AWS still serves.
    for dir in [top.clone(), top.join("deprecated")] {
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        {
            let path = entry.expect("dir entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if !name.ends_with(".json") || name == "index.json" {
                continue;
            }
            count += 1;
            let text = std::fs::read_to_string(&path).expect("read policy");
            match Policy::parse(&text, ParseOptions::new(PolicyKind::Identity)) {
                Ok(p) => assert!(!p.statements().is_empty(), "{name}"),
                Err(e) => failures.push(format!("{name}: {e:#}")),
            }
            if let Err(e) =
                Policy::parse(&text, ParseOptions::customer_managed(PolicyKind::Identity))
                && e.code() == "LimitExceeded"
            {
                over_limit += 1;
            }
        }
    }
    assert_eq!(
        count, 1388,
        "expected every managed policy file (1,329 current + 59 deprecated)"
    );
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // 53 exceed the customer managed quota (51 current, 2 deprecated), as the
    // corpus README counts.
    assert_eq!(over_limit, 53);
}

#[test]
fn customer_size_limit_counts_non_whitespace_characters() {
    let actions: Vec<String> = (0..400)
        .map(|i| format!("\"s3:GetObjectVersion{i:04}\""))
        .collect();
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
        actions.join(",")
    );
    assert!(big.len() > 6144);
    let err = Policy::parse(&big, ParseOptions::customer_managed(PolicyKind::Identity))
        .expect_err("too big");
    assert_eq!(err.code(), "LimitExceeded");
    assert_eq!(err.to_string(), "Cannot exceed quota for PolicySize: 6144");
    assert!(Policy::parse(&big, ParseOptions::new(PolicyKind::Identity)).is_ok());

    // Whitespace does not count.
    let small =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
    let padded = small.replace(',', &format!(",{}", " ".repeat(4000)));
    assert!(padded.len() > 6144);
    assert!(
        Policy::parse(
            &padded,
            ParseOptions::customer_managed(PolicyKind::Identity)
        )
        .is_ok()
    );
}

#[test]
fn unknown_condition_operator_is_named_in_the_detail() {
    let doc = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*",
        "Condition":{"StringEqualz":{"aws:username":"bob"}}}}"#;
    let err =
        Policy::parse(doc, ParseOptions::new(PolicyKind::Identity)).expect_err("unknown operator");
    assert_eq!(err.to_string(), "Syntax errors in policy.");
    assert!(
        err.detail().is_some_and(|d| d.contains("StringEqualz")),
        "{err:?}"
    );
    assert!(format!("{err:#}").contains("StringEqualz"));
}

#[test]
fn invalid_condition_values_are_rejected() {
    for (op, value) in [
        ("IpAddress", "10.0.0.0/33"),
        ("NumericLessThan", "ten"),
        ("DateLessThan", "yesterday"),
        ("BinaryEquals", "not base64!"),
        ("Null", "maybe"),
    ] {
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"s3:*","Resource":"*",
            "Condition":{{"{op}":{{"k:k":"{value}"}}}}}}}}"#
        );
        let err = Policy::parse(&doc, ParseOptions::new(PolicyKind::Identity)).expect_err(op);
        assert_eq!(err.to_string(), "The policy failed legacy parsing", "{op}");
        assert!(
            err.detail().is_some_and(|d| d.contains(value)),
            "{op}: {err:?}"
        );
    }
}

#[test]
fn kind_rules_for_principal_and_resource() {
    let with_principal = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*",
        "Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
    for kind in [PolicyKind::Identity, PolicyKind::Session] {
        let err = Policy::parse(with_principal, ParseOptions::new(kind)).expect_err("principal");
        assert_eq!(
            err.to_string(),
            "Policy document should not specify a principal."
        );
    }
    assert!(Policy::parse(with_principal, ParseOptions::new(PolicyKind::Resource)).is_ok());

    let no_principal =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#;
    for kind in [PolicyKind::Trust, PolicyKind::Resource] {
        let err =
            Policy::parse(no_principal, ParseOptions::new(kind)).expect_err("needs principal");
        assert_eq!(err.to_string(), "Missing required field Principal");
    }

    let trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
        "Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#;
    assert!(Policy::parse(trust, ParseOptions::new(PolicyKind::Trust)).is_ok());
    let err = Policy::parse(trust, ParseOptions::new(PolicyKind::Resource))
        .expect_err("resource needs Resource");
    assert_eq!(err.to_string(), "Policy statement must contain resources.");

    let trust_with_resource = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},
        "Action":"sts:AssumeRole","Resource":"*"}}"#;
    let err = Policy::parse(trust_with_resource, ParseOptions::new(PolicyKind::Trust))
        .expect_err("no Resource");
    assert_eq!(err.to_string(), "Has prohibited field Resource");

    let bad_principal = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Group":"x"},
        "Action":"s3:GetObject","Resource":"*"}}"#;
    let err = Policy::parse(bad_principal, ParseOptions::new(PolicyKind::Resource))
        .expect_err("bad principal");
    assert_eq!(err.to_string(), "Syntax errors in policy.");
}

#[test]
fn old_versions_are_accepted_outside_customer_managed_policies() {
    let doc = r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*",
        "Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
    let p = Policy::parse(doc, ParseOptions::customer_managed(PolicyKind::Resource))
        .expect("resource 2008");
    assert_eq!(p.version(), PolicyVersion::V2008_10_17);
    let inline = r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
    let p = Policy::parse(inline, ParseOptions::new(PolicyKind::Identity))
        .expect("inline without Version");
    assert_eq!(p.version(), PolicyVersion::Unspecified);
    let err = Policy::parse(inline, ParseOptions::customer_managed(PolicyKind::Identity))
        .expect_err("managed");
    assert_eq!(
        err.to_string(),
        "Policy document must be version 2012-10-17 or greater."
    );
}

#[test]
fn other_partitions_are_accepted() {
    for arn in [
        "arn:aws-cn:s3:::b/*",
        "arn:aws-us-gov:iam::123456789012:role/x",
        "arn:*:s3:::b",
    ] {
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"s3:*","Resource":"{arn}"}}}}"#
        );
        assert!(
            Policy::parse(&doc, ParseOptions::new(PolicyKind::Identity)).is_ok(),
            "{arn}"
        );
    }
}

#[test]
fn policy_exposes_id_statements_and_source() {
    let doc = r#"{"Version":"2012-10-17","Id":"my-policy","Statement":[
        {"Sid":"Read","Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
        {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
    let p = Policy::parse(doc, ParseOptions::new(PolicyKind::Identity)).expect("parse");
    assert_eq!(p.id(), Some("my-policy"));
    assert_eq!(p.source_json(), doc);
    assert_eq!(p.kind(), PolicyKind::Identity);
    let st = p.statements();
    assert_eq!(st.len(), 2);
    assert_eq!(
        (st[0].index(), st[0].sid(), st[0].effect()),
        (0, Some("Read"), Effect::Allow)
    );
    assert_eq!(
        (st[1].index(), st[1].sid(), st[1].effect()),
        (1, None, Effect::Deny)
    );
    assert_eq!(st[1].condition_count(), 1);
}

#[test]
fn policy_kind_round_trips_through_strings() {
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Resource,
        PolicyKind::Trust,
        PolicyKind::Session,
    ] {
        assert_eq!(kind.to_string().parse::<PolicyKind>(), Ok(kind));
    }
    assert_eq!("TRUST".parse::<PolicyKind>(), Ok(PolicyKind::Trust));
    assert!("boundary".parse::<PolicyKind>().is_err());
}

#[test]
fn policy_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Policy>();
}
