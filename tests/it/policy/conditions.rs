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

/// AWS, condition operators: "If the key that you specify in a policy condition
/// is not present in the request context, the values do not match and the
/// condition is false." (The positive operators, with no `...IfExists`.)
#[test]
fn missing_key_makes_positive_operators_false() {
    let empty = ContextKeys::new();
    for cond in [
        r#"{"StringEquals":{"aws:username":"alice"}}"#,
        r#"{"StringLike":{"aws:username":"*"}}"#,
        r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}"#,
        r#"{"DateGreaterThan":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}"#,
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        r#"{"ArnLike":{"aws:SourceArn":"*"}}"#,
        r#"{"BinaryEquals":{"s3:x-amz-key":"aGVsbG8="}}"#,
    ] {
        assert!(!allowed(cond, &empty), "{cond}");
        assert!(!denied(cond, &empty), "{cond}");
    }
}

/// Allows s3:GetObject on everything, and denies it under `condition`:
/// true when the Deny statement applies.
fn denied(condition: &str, ctx: &ContextKeys) -> bool {
    let policy = identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":"s3:*","Resource":"*"}},
            {{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{condition}}}]}}"#
    ));
    match eval_identity(&[&policy], "s3:GetObject", "arn:aws:s3:::b/k", ctx).decision {
        Decision::ExplicitDeny => true,
        Decision::Allowed => false,
        Decision::ImplicitDeny => panic!("the Allow s3:* statement should apply: {condition}"),
    }
}

/// One negated operator checked with its key missing, present and matching,
/// present and not matching; in an Allow and in a Deny statement.
fn check_negated(op: &str, key: &str, policy_value: &str, matching: &str, other: &str) {
    let cond = format!(r#"{{"{op}":{{"{key}":"{policy_value}"}}}}"#);
    let missing = ContextKeys::new();
    let hit = ctx(&[(key, matching)]);
    let miss = ctx(&[(key, other)]);
    // Missing key: the negated condition is true.
    assert!(allowed(&cond, &missing), "Allow {cond} with {key} missing");
    assert!(denied(&cond, &missing), "Deny {cond} with {key} missing");
    // Present and equal to / matching the policy value: false.
    assert!(!allowed(&cond, &hit), "Allow {cond} with {key}={matching}");
    assert!(!denied(&cond, &hit), "Deny {cond} with {key}={matching}");
    // Present and different: true.
    assert!(allowed(&cond, &miss), "Allow {cond} with {key}={other}");
    assert!(denied(&cond, &miss), "Deny {cond} with {key}={other}");
}

/// AWS, condition operators: "If the policy condition requires that the key is
/// not matched, such as StringNotLike or ArnNotLike, and the right key is not
/// present, the condition is true. This logic applies to all condition
/// operators except ...IfExists and Null check." `StringNotEquals`: negated
/// matching, so the guardrail Deny applies to a principal without the tag.
#[test]
fn string_not_equals_with_missing_key_is_true() {
    check_negated(
        "StringNotEquals",
        "aws:PrincipalTag/team",
        "data",
        "data",
        "web",
    );
}

/// AWS, condition operators (negated operators on a missing key are true):
/// `StringNotEqualsIgnoreCase`.
#[test]
fn string_not_equals_ignore_case_with_missing_key_is_true() {
    check_negated(
        "StringNotEqualsIgnoreCase",
        "aws:PrincipalTag/team",
        "Data",
        "DATA",
        "web",
    );
}

/// AWS, condition operators (negated operators on a missing key are true):
/// `StringNotLike`, the operator the documentation names.
#[test]
fn string_not_like_with_missing_key_is_true() {
    check_negated(
        "StringNotLike",
        "aws:PrincipalTag/team",
        "data-*",
        "data-eu",
        "web-eu",
    );
}

/// AWS, condition operators (negated operators on a missing key are true):
/// `NumericNotEquals`.
#[test]
fn numeric_not_equals_with_missing_key_is_true() {
    check_negated(
        "NumericNotEquals",
        "aws:MultiFactorAuthAge",
        "300",
        "300.0",
        "301",
    );
}

/// AWS, condition operators (negated operators on a missing key are true):
/// `DateNotEquals`.
#[test]
fn date_not_equals_with_missing_key_is_true() {
    check_negated(
        "DateNotEquals",
        "aws:TokenIssueTime",
        "2024-06-01T12:00:00Z",
        "1717243200",
        "2024-06-01T12:00:01Z",
    );
}

/// AWS, condition operators (negated operators on a missing key are true):
/// `NotIpAddress`; a Deny guarded by `NotIpAddress` also denies a request
/// whose context has no `aws:SourceIp`.
#[test]
fn not_ip_address_with_missing_key_is_true() {
    check_negated(
        "NotIpAddress",
        "aws:SourceIp",
        "203.0.113.0/24",
        "203.0.113.9",
        "198.51.100.1",
    );
}

/// AWS, condition operators (negated operators on a missing key are true):
/// `ArnNotEquals`.
#[test]
fn arn_not_equals_with_missing_key_is_true() {
    check_negated(
        "ArnNotEquals",
        "aws:SourceArn",
        "arn:aws:sns:us-east-1:111122223333:topic",
        "arn:aws:sns:us-east-1:111122223333:topic",
        "arn:aws:sns:us-east-1:444455556666:topic",
    );
}

/// AWS, condition operators (negated operators on a missing key are true):
/// `ArnNotLike`, the other operator the documentation names.
#[test]
fn arn_not_like_with_missing_key_is_true() {
    check_negated(
        "ArnNotLike",
        "aws:SourceArn",
        "arn:aws:sns:*:111122223333:*",
        "arn:aws:sns:us-east-1:111122223333:topic",
        "arn:aws:sns:us-east-1:444455556666:topic",
    );
}

/// AWS, condition operators: a key present with an empty set of values is
/// treated as missing, so a negated operator is true and a positive one false.
#[test]
fn key_with_no_values_counts_as_missing() {
    let mut empty = ContextKeys::new();
    empty.set("aws:PrincipalTag/team", Vec::<String>::new());
    let cond = r#"{"StringNotEquals":{"aws:PrincipalTag/team":"data"}}"#;
    assert!(allowed(cond, &empty));
    assert!(denied(cond, &empty));
    assert!(!allowed(
        r#"{"StringEquals":{"aws:PrincipalTag/team":"data"}}"#,
        &empty
    ));
}

/// AWS, condition operators, `...IfExists`: "If the key is not present,
/// evaluate the condition element as true"; with the key present the negated
/// operator is evaluated as usual. In a Deny statement, too.
#[test]
fn negated_if_exists_is_true_when_missing_and_evaluated_when_present() {
    let cond = r#"{"StringNotEqualsIfExists":{"aws:PrincipalTag/team":"data"}}"#;
    assert!(denied(cond, &ContextKeys::new()));
    assert!(!denied(cond, &ctx(&[("aws:PrincipalTag/team", "data")])));
    assert!(denied(cond, &ctx(&[("aws:PrincipalTag/team", "web")])));
    let positive = r#"{"StringEqualsIfExists":{"aws:PrincipalTag/team":"data"}}"#;
    assert!(denied(positive, &ContextKeys::new()));
    assert!(!denied(positive, &ctx(&[("aws:PrincipalTag/team", "web")])));
}

/// AWS, condition operators, Null: "Use a Null condition operator to check if a
/// condition key is absent at the time of authorization"; it is not affected
/// by the negated-operator rule (the rule "applies to all condition operators
/// except ...IfExists and Null check").
#[test]
fn null_is_not_treated_as_a_negated_operator() {
    let absent = ContextKeys::new();
    assert!(!denied(
        r#"{"Null":{"aws:PrincipalTag/team":"false"}}"#,
        &absent
    ));
    assert!(denied(
        r#"{"Null":{"aws:PrincipalTag/team":"true"}}"#,
        &absent
    ));
}

/// AWS, multivalued context keys: `ForAllValues` "also returns true if there
/// are no context keys in the request"; `ForAnyValue`: "If the key in the
/// request is missing, the condition returns false". In Allow and Deny.
#[test]
fn set_operators_with_a_missing_key() {
    let missing = ContextKeys::new();
    let all = r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#;
    assert!(allowed(all, &missing));
    assert!(denied(all, &missing));
    let any = r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#;
    assert!(!allowed(any, &missing));
    assert!(!denied(any, &missing));
}

/// AWS, multivalued context keys examples: the Deny policy with
/// `"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}` is a match ("No
/// aws:TagKeys in the request context") — the set operator, not the negation,
/// decides for a missing key; so `ForAnyValue:` with a negated operator is
/// false on a missing key (the negated-operator rule does not turn it true).
#[test]
fn set_operators_with_negated_operators_and_a_missing_key() {
    let missing = ContextKeys::new();
    let all = r#"{"ForAllValues:StringNotLike":{"aws:TagKeys":"key1*"}}"#;
    assert!(denied(all, &missing));
    assert!(allowed(all, &missing));
    let mut key1 = ContextKeys::new();
    key1.insert("aws:TagKeys", "key1:legal");
    assert!(!denied(all, &key1));
    let mut key2 = ContextKeys::new();
    key2.insert("aws:TagKeys", "key2:audit");
    assert!(denied(all, &key2));

    let any = r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":"key1"}}"#;
    assert!(!denied(any, &missing));
    assert!(!allowed(any, &missing));
    let mut other = ContextKeys::new();
    other
        .insert("aws:TagKeys", "key1")
        .insert("aws:TagKeys", "key2");
    assert!(denied(any, &other));
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
