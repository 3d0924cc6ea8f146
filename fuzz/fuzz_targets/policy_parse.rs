//! The IAM policy parser: a JSON policy document (input as UTF-8) → `Policy` for
//! every policy kind, inline and customer-managed limits, the linter, the AssumeRole
//! resource-policy form, and one evaluation to run the compiled matchers.
//! Seeds: /work/shared/corpora/aws-managed-policies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rolegate::policy::{
    ContextKeys, ParseOptions, Policy, PolicyKind, PolicySet, PrincipalRef, Request, evaluate,
    parse_supplied_resource_policy, warnings,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_supplied_resource_policy(text);
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Resource,
        PolicyKind::Trust,
        PolicyKind::Session,
    ] {
        let _ = Policy::parse(text, ParseOptions::customer_managed(kind));
        let Ok(policy) = Policy::parse(text, ParseOptions::new(kind)) else {
            continue;
        };
        let _ = warnings(&policy);
        let context = ContextKeys::new()
            .with("aws:username", "alice")
            .with("aws:SourceIp", "192.0.2.10")
            .with("aws:CurrentTime", "2026-01-01T00:00:00Z")
            .with("aws:PrincipalTag/team", "blue");
        let request = Request {
            principal: PrincipalRef::Aws {
                arn: "arn:aws:iam::111122223333:user/alice",
                account: "111122223333",
            },
            action: "s3:GetObject",
            resource: "arn:aws:s3:::home/alice/notes.txt",
            context: &context,
        };
        let identity = [&policy];
        let set = PolicySet {
            identity: &identity,
            ..Default::default()
        };
        let _ = evaluate(&set, &request);
    }
});
