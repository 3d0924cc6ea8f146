//! Tests for the IAM policy language engine (`rolegate::policy`).

mod conditions;
mod evaluation;
mod principals;
mod properties;
mod validation;
mod variables;

use rolegate::policy::{
    ContextKeys, Evaluation, ParseOptions, Policy, PolicyKind, PolicySet, PrincipalRef, Request,
    evaluate,
};

pub const ACCOUNT: &str = "111122223333";
pub const OTHER_ACCOUNT: &str = "444455556666";
pub const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

pub fn parse(kind: PolicyKind, json: &str) -> Policy {
    match Policy::parse(json, ParseOptions::new(kind)) {
        Ok(p) => p,
        Err(e) => panic!("policy should parse but got {e:#}: {json}"),
    }
}

pub fn identity(json: &str) -> Policy {
    parse(PolicyKind::Identity, json)
}

/// A one-statement identity policy.
pub fn allow(action: &str, resource: &str) -> Policy {
    identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
    ))
}

pub fn alice() -> PrincipalRef<'static> {
    PrincipalRef::Aws {
        arn: ALICE,
        account: ACCOUNT,
    }
}

/// Evaluates identity policies only, as alice.
pub fn eval_identity<'a>(
    policies: &'a [&'a Policy],
    action: &str,
    resource: &str,
    ctx: &ContextKeys,
) -> Evaluation<'a> {
    let set = PolicySet {
        identity: policies,
        ..Default::default()
    };
    evaluate(
        &set,
        &Request {
            principal: alice(),
            action,
            resource,
            context: ctx,
        },
    )
}
