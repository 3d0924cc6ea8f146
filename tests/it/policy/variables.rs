//! Policy variables in Resource and Condition values.

use rolegate::policy::{ContextKeys, Decision, PolicyKind};

use super::{eval_identity, identity, parse};

fn res_policy(resource: &str) -> rolegate::policy::Policy {
    identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":"{resource}"}}]}}"#
    ))
}

fn allowed(policy: &rolegate::policy::Policy, resource: &str, ctx: &ContextKeys) -> bool {
    eval_identity(&[policy], "s3:GetObject", resource, ctx).decision == Decision::Allowed
}

#[test]
fn username_and_userid_in_resource() {
    let p = res_policy("arn:aws:s3:::home/${aws:username}/*");
    let ctx = ContextKeys::new().with("aws:username", "alice");
    assert!(allowed(&p, "arn:aws:s3:::home/alice/a.txt", &ctx));
    assert!(!allowed(&p, "arn:aws:s3:::home/bob/a.txt", &ctx));

    let p = res_policy("arn:aws:s3:::home/${aws:userid}/*");
    let ctx = ContextKeys::new().with("aws:userid", "AIDAEXAMPLE");
    assert!(allowed(&p, "arn:aws:s3:::home/AIDAEXAMPLE/x", &ctx));
    assert!(!allowed(&p, "arn:aws:s3:::home/aidaexample/x", &ctx));
}

#[test]
fn missing_variable_makes_the_entry_not_match() {
    let p = res_policy("arn:aws:s3:::home/${aws:username}/*");
    assert!(!allowed(&p, "arn:aws:s3:::home//x", &ContextKeys::new()));
    assert!(!allowed(
        &p,
        "arn:aws:s3:::home/${aws:username}/x",
        &ContextKeys::new()
    ));
    // A multi-valued key cannot be substituted either.
    let mut multi = ContextKeys::new();
    multi
        .insert("aws:username", "alice")
        .insert("aws:username", "bob");
    assert!(!allowed(&p, "arn:aws:s3:::home/alice/x", &multi));
}

#[test]
fn default_values() {
    let p = res_policy("arn:aws:s3:::home/${aws:username, 'guest'}/*");
    assert!(allowed(
        &p,
        "arn:aws:s3:::home/guest/x",
        &ContextKeys::new()
    ));
    let ctx = ContextKeys::new().with("aws:username", "alice");
    assert!(allowed(&p, "arn:aws:s3:::home/alice/x", &ctx));
    assert!(!allowed(&p, "arn:aws:s3:::home/guest/x", &ctx));
    // '' inside a default is one quote.
    let p = res_policy("arn:aws:s3:::b/${aws:username, 'o''brien'}");
    assert!(allowed(&p, "arn:aws:s3:::b/o'brien", &ContextKeys::new()));
}

#[test]
fn escaped_special_characters_are_literal() {
    let p = res_policy("arn:aws:s3:::b/${*}${?}${$}");
    let ctx = ContextKeys::new();
    assert!(allowed(&p, "arn:aws:s3:::b/*?$", &ctx));
    assert!(!allowed(&p, "arn:aws:s3:::b/xy$", &ctx));
    assert!(!allowed(&p, "arn:aws:s3:::b/*x$", &ctx));
}

#[test]
fn substituted_values_are_literal_not_wildcards() {
    let p = res_policy("arn:aws:s3:::home/${aws:username}/*");
    let ctx = ContextKeys::new().with("aws:username", "*");
    assert!(!allowed(&p, "arn:aws:s3:::home/alice/x", &ctx));
    assert!(allowed(&p, "arn:aws:s3:::home/*/x", &ctx));
}

#[test]
fn principal_tags_source_identity_and_federation_keys() {
    let cases = [
        ("${aws:PrincipalTag/team}", "aws:PrincipalTag/team", "red"),
        (
            "${aws:SourceIdentity}",
            "aws:SourceIdentity",
            "alice@example.com",
        ),
        ("${saml:sub}", "saml:sub", "alice"),
        (
            "${accounts.google.com:sub}",
            "accounts.google.com:sub",
            "1234567890",
        ),
        (
            "${cognito-identity.amazonaws.com:sub}",
            "cognito-identity.amazonaws.com:sub",
            "us-east-1:abcd",
        ),
    ];
    for (var, key, value) in cases {
        let p = res_policy(&format!("arn:aws:s3:::data/{var}/*"));
        let ctx = ContextKeys::new().with(key, value);
        assert!(
            allowed(&p, &format!("arn:aws:s3:::data/{value}/file"), &ctx),
            "{var}"
        );
        assert!(!allowed(&p, "arn:aws:s3:::data/other/file", &ctx), "{var}");
        assert!(
            !allowed(
                &p,
                &format!("arn:aws:s3:::data/{value}/file"),
                &ContextKeys::new()
            ),
            "{var}"
        );
    }
}

#[test]
fn variable_in_account_segment() {
    let p = res_policy("arn:aws:s3:us-east-1:${aws:PrincipalAccount}:accesspoint/*");
    let ctx = ContextKeys::new().with("aws:PrincipalAccount", "111122223333");
    assert!(allowed(
        &p,
        "arn:aws:s3:us-east-1:111122223333:accesspoint/ap",
        &ctx
    ));
    assert!(!allowed(
        &p,
        "arn:aws:s3:us-east-1:444455556666:accesspoint/ap",
        &ctx
    ));
}

#[test]
fn variables_in_condition_values() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket",
            "Resource":"arn:aws:s3:::b","Condition":{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}}]}"#,
    );
    let mut ctx = ContextKeys::new().with("aws:username", "alice");
    ctx.insert("s3:prefix", "home/alice/docs");
    assert_eq!(
        eval_identity(&[&p], "s3:ListBucket", "arn:aws:s3:::b", &ctx).decision,
        Decision::Allowed
    );
    let mut other = ContextKeys::new().with("aws:username", "alice");
    other.insert("s3:prefix", "home/bob/docs");
    assert_eq!(
        eval_identity(&[&p], "s3:ListBucket", "arn:aws:s3:::b", &other).decision,
        Decision::ImplicitDeny
    );

    // StringEquals against a tag, and a negated operator with a missing variable fails closed.
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:StartInstances","Resource":"*",
            "Condition":{"StringEquals":{"ec2:ResourceTag/owner":"${aws:username}"}}},
            {"Effect":"Allow","Action":"ec2:StopInstances","Resource":"*",
            "Condition":{"StringNotEquals":{"ec2:ResourceTag/owner":"${aws:username}"}}}]}"#,
    );
    let ctx = ContextKeys::new()
        .with("aws:username", "alice")
        .with("ec2:ResourceTag/owner", "alice");
    assert_eq!(
        eval_identity(&[&p], "ec2:StartInstances", "*", &ctx).decision,
        Decision::Allowed
    );
    let no_user = ContextKeys::new().with("ec2:ResourceTag/owner", "alice");
    assert_eq!(
        eval_identity(&[&p], "ec2:StartInstances", "*", &no_user).decision,
        Decision::ImplicitDeny
    );
    assert_eq!(
        eval_identity(&[&p], "ec2:StopInstances", "*", &no_user).decision,
        Decision::ImplicitDeny
    );
}

#[test]
fn variables_are_literal_before_version_2012() {
    let p = parse(
        PolicyKind::Identity,
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}]}"#,
    );
    let ctx = ContextKeys::new().with("aws:username", "alice");
    assert!(!allowed(&p, "arn:aws:s3:::home/alice/x", &ctx));
    assert!(allowed(&p, "arn:aws:s3:::home/${aws:username}/x", &ctx));
}

/// Issue 15 item 12: a template with ~1,000 unclosed `${` and 250 KB of
/// spaces parses (the scan for the closing brace stops at the first byte that
/// cannot continue a variable) and its text stays literal: the resource
/// matches itself exactly and nothing else.
#[test]
fn hostile_unclosed_variables_stay_literal() {
    let resource = format!(
        "arn:aws:s3:::b/{}{}",
        "${".repeat(1_000),
        " ".repeat(250_000)
    );
    let p = res_policy(&resource);
    let ctx = ContextKeys::new().with("aws:username", "alice");
    assert!(allowed(&p, &resource, &ctx));
    assert!(!allowed(&p, "arn:aws:s3:::b/x", &ctx));
    // Unclosed `${` mixed with quoted defaults, then a real variable: the
    // variable after them still resolves, the rest is literal.
    let p = res_policy("arn:aws:s3:::b/${a, '${x, '''${ ${ $${aws:username}");
    assert!(allowed(
        &p,
        "arn:aws:s3:::b/${a, '${x, '''${ ${ $alice",
        &ctx
    ));
    assert!(!allowed(
        &p,
        "arn:aws:s3:::b/${a, '${x, '''${ ${ $bob",
        &ctx
    ));
}
