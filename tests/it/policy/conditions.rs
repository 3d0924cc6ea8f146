//! Condition operators.

use rolegate::policy::{ContextKeys, Decision};

use super::{eval_identity, identity};

/// Allows s3:GetObject on everything under `condition` (a JSON object).
fn allowed(condition: &str, ctx: &ContextKeys) -> bool {
    let policy = identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
            "Condition":{condition}}}]}}"#
    ));
    let decision = eval_identity(&[&policy], "s3:GetObject", "arn:aws:s3:::b/k", ctx).decision;
    assert_ne!(decision, Decision::ExplicitDeny);
    decision == Decision::Allowed
}

fn ctx(pairs: &[(&str, &str)]) -> ContextKeys {
    pairs.iter().copied().collect()
}

#[test]
fn string_operators() {
    let c = ctx(&[("aws:username", "Alice")]);
    assert!(allowed(r#"{"StringEquals":{"aws:username":"Alice"}}"#, &c));
    assert!(!allowed(r#"{"StringEquals":{"aws:username":"alice"}}"#, &c));
    assert!(allowed(
        r#"{"StringEquals":{"aws:username":["bob","Alice"]}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"StringNotEquals":{"aws:username":["bob","carol"]}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"StringNotEquals":{"aws:username":["bob","Alice"]}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"StringNotEqualsIgnoreCase":{"aws:username":"aLiCe"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"StringNotEqualsIgnoreCase":{"aws:username":"bob"}}"#,
        &c
    ));
    assert!(allowed(r#"{"StringLike":{"aws:username":"A?i*"}}"#, &c));
    assert!(!allowed(r#"{"StringLike":{"aws:username":"a*"}}"#, &c));
    assert!(allowed(
        r#"{"StringNotLike":{"aws:username":["b*","c*"]}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"StringNotLike":{"aws:username":["b*","Al*"]}}"#,
        &c
    ));
}

#[test]
fn condition_keys_are_case_insensitive_but_values_are_not() {
    let c = ctx(&[("AWS:UserName", "alice")]);
    assert!(allowed(r#"{"StringEquals":{"aws:username":"alice"}}"#, &c));
    assert!(allowed(r#"{"StringEquals":{"Aws:USERNAME":"alice"}}"#, &c));
    assert!(!allowed(r#"{"StringEquals":{"aws:username":"ALICE"}}"#, &c));
}

#[test]
fn missing_keys_fail_except_negation_is_still_false() {
    let empty = ContextKeys::new();
    assert!(!allowed(
        r#"{"StringEquals":{"aws:username":"alice"}}"#,
        &empty
    ));
    assert!(!allowed(
        r#"{"StringNotEquals":{"aws:username":"alice"}}"#,
        &empty
    ));
    assert!(!allowed(
        r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}"#,
        &empty
    ));
}

#[test]
fn numeric_operators() {
    let c = ctx(&[("aws:MultiFactorAuthAge", "300")]);
    assert!(allowed(
        r#"{"NumericEquals":{"aws:MultiFactorAuthAge":"300"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"NumericEquals":{"aws:MultiFactorAuthAge":300}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"NumericNotEquals":{"aws:MultiFactorAuthAge":"301"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"NumericNotEquals":{"aws:MultiFactorAuthAge":"300.0"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"300"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"NumericLessThanEquals":{"aws:MultiFactorAuthAge":"300"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"NumericGreaterThan":{"aws:MultiFactorAuthAge":"299.5"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"NumericGreaterThan":{"aws:MultiFactorAuthAge":"300"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"NumericGreaterThanEquals":{"aws:MultiFactorAuthAge":"300"}}"#,
        &c
    ));
    // A non-numeric request value never matches.
    let junk = ctx(&[("aws:MultiFactorAuthAge", "soon")]);
    assert!(!allowed(
        r#"{"NumericGreaterThanEquals":{"aws:MultiFactorAuthAge":"0"}}"#,
        &junk
    ));
}

#[test]
fn date_operators_with_iso8601_and_epoch() {
    let c = ctx(&[("aws:CurrentTime", "2024-06-01T12:00:00Z")]);
    assert!(allowed(
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-06-01T12:00:00Z"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2024-06-01T12:00:00Z"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"DateLessThan":{"aws:CurrentTime":"2024-06-01T12:00:01Z"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"DateLessThan":{"aws:CurrentTime":"2024-06-01"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"DateLessThanEquals":{"aws:CurrentTime":"2024-06-01T14:00:00+02:00"}}"#,
        &c
    ));
    // 2024-06-01T12:00:00Z is epoch 1717243200.
    assert!(allowed(
        r#"{"DateEquals":{"aws:CurrentTime":"1717243200"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"DateNotEquals":{"aws:CurrentTime":"1717243201"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"DateNotEquals":{"aws:CurrentTime":"2024-06-01T12:00:00.000Z"}}"#,
        &c
    ));
    let epoch_ctx = ctx(&[("aws:EpochTime", "1717243200")]);
    assert!(allowed(
        r#"{"DateGreaterThan":{"aws:EpochTime":"2024-05-31T23:59:59Z"}}"#,
        &epoch_ctx
    ));
    // A valid window (AND of two operators on the same key).
    let window = r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"},
                     "DateLessThan":{"aws:CurrentTime":"2024-12-31T23:59:59Z"}}"#;
    assert!(allowed(window, &c));
    assert!(!allowed(
        window,
        &ctx(&[("aws:CurrentTime", "2025-01-02T00:00:00Z")])
    ));
}

#[test]
fn bool_operator() {
    let secure = ctx(&[("aws:SecureTransport", "true")]);
    assert!(allowed(
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
        &secure
    ));
    assert!(allowed(r#"{"Bool":{"aws:SecureTransport":true}}"#, &secure));
    assert!(allowed(
        r#"{"Bool":{"aws:SecureTransport":"True"}}"#,
        &secure
    ));
    assert!(!allowed(
        r#"{"Bool":{"aws:SecureTransport":"false"}}"#,
        &secure
    ));
    assert!(!allowed(
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
        &ContextKeys::new()
    ));
}

#[test]
fn binary_equals_compares_decoded_bytes() {
    // "hello" base64-encoded, with and without padding.
    let c = ctx(&[("s3:x-amz-key", "aGVsbG8=")]);
    assert!(allowed(
        r#"{"BinaryEquals":{"s3:x-amz-key":"aGVsbG8="}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"BinaryEquals":{"s3:x-amz-key":"aGVsbG8"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"BinaryEquals":{"s3:x-amz-key":"aGVsbA=="}}"#,
        &c
    ));
}

#[test]
fn ip_address_operators_v4_and_v6() {
    let v4 = ctx(&[("aws:SourceIp", "203.0.113.42")]);
    assert!(allowed(
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &v4
    ));
    assert!(allowed(
        r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","203.0.113.42"]}}"#,
        &v4
    ));
    assert!(!allowed(
        r#"{"IpAddress":{"aws:SourceIp":"203.0.114.0/24"}}"#,
        &v4
    ));
    assert!(allowed(
        r#"{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#,
        &v4
    ));
    assert!(!allowed(
        r#"{"NotIpAddress":{"aws:SourceIp":"203.0.0.0/8"}}"#,
        &v4
    ));
    let v6 = ctx(&[("aws:SourceIp", "2001:db8::1")]);
    assert!(allowed(
        r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
        &v6
    ));
    assert!(!allowed(
        r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
        &v6
    ));
    assert!(allowed(
        r#"{"IpAddress":{"aws:SourceIp":"2001:db8::1"}}"#,
        &v6
    ));
    // Not an address: no match.
    assert!(!allowed(
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        &ctx(&[("aws:SourceIp", "localhost")])
    ));
}

#[test]
fn arn_operators() {
    let c = ctx(&[(
        "aws:SourceArn",
        "arn:aws:sns:us-east-1:111122223333:topic:sub",
    )]);
    assert!(allowed(
        r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:111122223333:topic:sub"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:444455556666:*"}}"#,
        &c
    ));
    // A wildcard in one segment does not swallow the following colons.
    assert!(!allowed(
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:topic:sub"}}"#,
        &c
    ));
    assert!(allowed(
        r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sqs:*:*:*"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:111122223333:topic:sub"}}"#,
        &c
    ));
}

#[test]
fn null_operator() {
    let present = ctx(&[("aws:TokenIssueTime", "2024-01-01T00:00:00Z")]);
    let absent = ContextKeys::new();
    assert!(allowed(
        r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
        &absent
    ));
    assert!(!allowed(
        r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
        &present
    ));
    assert!(allowed(
        r#"{"Null":{"aws:TokenIssueTime":false}}"#,
        &present
    ));
    assert!(!allowed(
        r#"{"Null":{"aws:TokenIssueTime":"false"}}"#,
        &absent
    ));
}

#[test]
fn if_exists_is_true_when_the_key_is_missing() {
    let absent = ContextKeys::new();
    let wrong = ctx(&[("ec2:InstanceType", "m5.24xlarge")]);
    let right = ctx(&[("ec2:InstanceType", "t3.micro")]);
    let cond = r#"{"StringLikeIfExists":{"ec2:InstanceType":["t3.*","t2.*"]}}"#;
    assert!(allowed(cond, &absent));
    assert!(allowed(cond, &right));
    assert!(!allowed(cond, &wrong));
    assert!(allowed(
        r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#,
        &absent
    ));
    assert!(allowed(
        r#"{"NumericLessThanIfExists":{"aws:MultiFactorAuthAge":"10"}}"#,
        &absent
    ));
    assert!(allowed(
        r#"{"StringNotEqualsIfExists":{"aws:username":"bob"}}"#,
        &absent
    ));
    assert!(!allowed(
        r#"{"StringNotEqualsIfExists":{"aws:username":"bob"}}"#,
        &ctx(&[("aws:username", "bob")])
    ));
}

#[test]
fn for_all_values_and_for_any_value() {
    let mut tags = ContextKeys::new();
    tags.insert("aws:TagKeys", "team")
        .insert("aws:TagKeys", "env");
    let all = r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env","owner"]}}"#;
    assert!(allowed(all, &tags));
    assert!(!allowed(
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}"#,
        &tags
    ));
    // ForAllValues is true for a missing key or an empty set.
    assert!(allowed(all, &ContextKeys::new()));
    let mut empty = ContextKeys::new();
    empty.set("aws:TagKeys", Vec::<String>::new());
    assert!(allowed(all, &empty));

    let any = r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env","cost"]}}"#;
    assert!(allowed(any, &tags));
    assert!(!allowed(
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["cost"]}}"#,
        &tags
    ));
    // ForAnyValue is false for a missing key ...
    assert!(!allowed(any, &ContextKeys::new()));
    // ... unless IfExists.
    assert!(allowed(
        r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"cost"}}"#,
        &ContextKeys::new()
    ));

    // Negated: every value / some value matches none of the policy values.
    assert!(allowed(
        r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}"#,
        &tags
    ));
    assert!(!allowed(
        r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["env"]}}"#,
        &tags
    ));
    assert!(allowed(
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["env"]}}"#,
        &tags
    ));
    assert!(!allowed(
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["env","team"]}}"#,
        &tags
    ));
    assert!(allowed(
        r#"{"ForAllValues:StringLike":{"aws:TagKeys":["t*","e*"]}}"#,
        &tags
    ));
}

#[test]
fn multivalued_key_with_single_valued_operator() {
    let mut c = ContextKeys::new();
    c.insert("aws:CalledVia", "athena.amazonaws.com")
        .insert("aws:CalledVia", "glue.amazonaws.com");
    assert!(allowed(
        r#"{"StringEquals":{"aws:CalledVia":"glue.amazonaws.com"}}"#,
        &c
    ));
    assert!(!allowed(
        r#"{"StringNotEquals":{"aws:CalledVia":"glue.amazonaws.com"}}"#,
        &c
    ));
}

#[test]
fn keys_within_an_operator_are_anded_and_values_ored() {
    let c = ctx(&[
        ("aws:PrincipalTag/team", "red"),
        ("aws:RequestedRegion", "eu-west-1"),
    ]);
    let both = r#"{"StringEquals":{"aws:PrincipalTag/team":["blue","red"],"aws:RequestedRegion":"eu-west-1"}}"#;
    assert!(allowed(both, &c));
    let one_fails =
        r#"{"StringEquals":{"aws:PrincipalTag/team":"red","aws:RequestedRegion":"us-east-1"}}"#;
    assert!(!allowed(one_fails, &c));
}
