//! Property tests for the wildcard and ARN matchers.

use proptest::prelude::*;
use rolegate::policy::{
    ArnPattern, ContextKeys, ParseOptions, Policy, PolicyKind, PolicySet, PrincipalRef, Request,
    evaluate, parse_date, wildcard_match, wildcard_match_ignore_case,
};

/// Text without wildcard characters.
fn plain() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/:._é-]{0,24}"
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,12}"
}

fn account() -> impl Strategy<Value = String> {
    "[0-9]{12}"
}

fn arn() -> impl Strategy<Value = (String, String, String, String, String)> {
    (
        prop_oneof![
            Just("aws".to_owned()),
            Just("aws-cn".to_owned()),
            Just("aws-us-gov".to_owned())
        ],
        segment(),
        prop_oneof![Just(String::new()), segment()],
        account(),
        "[a-zA-Z0-9/:_.-]{1,30}",
    )
}

fn join(p: &str, s: &str, r: &str, a: &str, res: &str) -> String {
    format!("arn:{p}:{s}:{r}:{a}:{res}")
}

proptest! {
    #[test]
    fn pattern_with_random_wildcards_matches_its_source(
        text in plain(),
        mask in proptest::collection::vec(0u8..4, 0..24),
    ) {
        let chars: Vec<char> = text.chars().collect();
        let mut pattern = String::new();
        for (i, c) in chars.iter().enumerate() {
            match mask.get(i) {
                Some(1) => pattern.push('?'),
                Some(2) => pattern.push('*'),
                Some(3) => { pattern.push('*'); pattern.push(*c); }
                _ => pattern.push(*c),
            }
        }
        prop_assert!(wildcard_match(&pattern, &text), "{} vs {}", pattern, text);
    }

    #[test]
    fn literal_pattern_matches_exactly_itself(a in plain(), b in plain()) {
        prop_assert!(wildcard_match(&a, &a));
        prop_assert_eq!(wildcard_match(&a, &b), a == b);
    }

    #[test]
    fn question_marks_match_exactly_that_many_characters(text in plain()) {
        let n = text.chars().count();
        prop_assert!(wildcard_match(&"?".repeat(n), &text));
        prop_assert!(!wildcard_match(&"?".repeat(n + 1), &text));
        prop_assert!(wildcard_match("*", &text));
    }

    #[test]
    fn actions_match_case_insensitively(service in "[a-z0-9-]{1,10}", name in "[A-Za-z]{1,20}") {
        let action = format!("{}:{}", service, name);
        prop_assert!(wildcard_match_ignore_case(&action.to_uppercase(), &action));
        prop_assert!(wildcard_match_ignore_case(&action.to_lowercase(), &action.to_uppercase()));
        let service_star = format!("{}:*", service);
        prop_assert!(wildcard_match_ignore_case(&service_star, &action));
        let longer = format!("{}:{}x", service, name.to_lowercase());
        prop_assert!(!wildcard_match(&action.to_uppercase(), &longer));
    }

    #[test]
    fn arn_matches_itself_and_star((p, s, r, a, res) in arn()) {
        let arn = join(&p, &s, &r, &a, &res);
        prop_assert!(ArnPattern::new(&arn).matches(&arn));
        prop_assert!(ArnPattern::new("*").matches(&arn));
        prop_assert!(ArnPattern::new("arn:*:*:*:*:*").matches(&arn));
    }

    #[test]
    fn replacing_a_segment_with_star_still_matches((p, s, r, a, res) in arn(), which in 0usize..5) {
        let arn = join(&p, &s, &r, &a, &res);
        let mut parts = [p.clone(), s.clone(), r.clone(), a.clone(), res.clone()];
        parts[which] = "*".to_owned();
        let pattern = join(&parts[0], &parts[1], &parts[2], &parts[3], &parts[4]);
        prop_assert!(ArnPattern::new(&pattern).matches(&arn), "{} vs {}", pattern, arn);
    }

    #[test]
    fn different_account_never_matches((p, s, r, a, res) in arn(), other in account(), wild in 0usize..4) {
        prop_assume!(other != a);
        let arn = join(&p, &s, &r, &a, &res);
        let mut parts = [p.clone(), s.clone(), r.clone(), other.clone(), res.clone()];
        if wild < 3 {
            parts[wild] = "*".to_owned();
        } else {
            parts[4] = "*".to_owned();
        }
        let pattern = join(&parts[0], &parts[1], &parts[2], &parts[3], &parts[4]);
        prop_assert!(!ArnPattern::new(&pattern).matches(&arn), "{} vs {}", pattern, arn);
    }

    /// Arbitrary text in patterns, condition values and requests is rejected
    /// or evaluated, never a panic.
    #[test]
    fn arbitrary_input_never_panics(
        resource in "\\PC{0,30}",
        value in "\\PC{0,30}",
        request in "\\PC{0,30}",
    ) {
        let _ = parse_date(&value);
        let _ = wildcard_match(&resource, &request);
        let _ = ArnPattern::new(&resource).matches(&request);
        let doc = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": [resource.clone(), format!("arn:aws:s3:::b/${{aws:username, '{}'}}", value)],
                "Condition": {
                    "DateLessThanIfExists": {"aws:CurrentTime": value.clone()},
                    "StringLikeIfExists": {"s3:prefix": format!("${{{}}}*", value)},
                    "ForAnyValue:ArnLikeIfExists": {"aws:SourceArn": [resource.clone()]}
                }
            }]
        });
        if let Ok(policy) = Policy::parse(&doc.to_string(), ParseOptions::new(PolicyKind::Identity)) {
            let ctx = ContextKeys::new()
                .with("aws:CurrentTime", value.clone())
                .with("s3:prefix", request.clone())
                .with("aws:SourceArn", request.clone());
            let identity = [&policy];
            let set = PolicySet { identity: &identity, ..Default::default() };
            let req = Request {
                principal: PrincipalRef::Anonymous,
                action: "s3:GetObject",
                resource: &request,
                context: &ctx,
            };
            let _ = evaluate(&set, &req);
        }
    }
}
