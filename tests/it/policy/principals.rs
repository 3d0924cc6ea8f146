//! Principal / NotPrincipal matching in resource and trust policies.

use rolegate::policy::{
    ContextKeys, Decision, Policy, PolicyKind, PolicySet, PrincipalRef, Request, ResourcePolicy,
    evaluate,
};

use super::{ACCOUNT, parse};

fn trust(principal: &str) -> Policy {
    parse(
        PolicyKind::Trust,
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},
                "Action":["sts:AssumeRole","sts:AssumeRoleWithWebIdentity","sts:AssumeRoleWithSAML","sts:TagSession"]}}]}}"#
        ),
    )
}

const ROLE: &str = "arn:aws:iam::111122223333:role/deploy";

/// Does the trust policy alone (no identity policies) let `who` assume the role?
fn can_assume(policy: &Policy, who: PrincipalRef<'_>, action: &str, ctx: &ContextKeys) -> Decision {
    let set = PolicySet {
        resource: Some(ResourcePolicy {
            policy,
            owner_account: ACCOUNT,
        }),
        ..Default::default()
    };
    evaluate(
        &set,
        &Request {
            principal: who,
            action,
            resource: ROLE,
            context: ctx,
        },
    )
    .decision
}

fn aws<'a>(arn: &'a str, account: &'a str) -> PrincipalRef<'a> {
    PrincipalRef::Aws { arn, account }
}

#[test]
fn exact_user_arn() {
    let ctx = ContextKeys::new();
    let p = trust(r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#);
    let alice = aws("arn:aws:iam::111122223333:user/alice", ACCOUNT);
    let bob = aws("arn:aws:iam::111122223333:user/bob", ACCOUNT);
    assert_eq!(
        can_assume(&p, alice, "sts:AssumeRole", &ctx),
        Decision::Allowed
    );
    assert_eq!(
        can_assume(&p, bob, "sts:AssumeRole", &ctx),
        Decision::ImplicitDeny
    );
}

#[test]
fn account_id_and_root_match_every_principal_of_the_account() {
    let ctx = ContextKeys::new();
    let alice = "arn:aws:iam::444455556666:user/alice";
    let session = "arn:aws:sts::444455556666:assumed-role/ci/run-1";
    for principal in [
        r#"{"AWS":"444455556666"}"#,
        r#"{"AWS":"arn:aws:iam::444455556666:root"}"#,
    ] {
        let p = trust(principal);
        // Cross-account: the caller also needs an identity policy allowing sts:AssumeRole.
        let id = parse(
            PolicyKind::Identity,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}"#,
        );
        let identity = [&id];
        for who in [alice, session] {
            let set = PolicySet {
                identity: &identity,
                resource: Some(ResourcePolicy {
                    policy: &p,
                    owner_account: ACCOUNT,
                }),
                ..Default::default()
            };
            let req = Request {
                principal: aws(who, "444455556666"),
                action: "sts:AssumeRole",
                resource: ROLE,
                context: &ctx,
            };
            assert_eq!(
                evaluate(&set, &req).decision,
                Decision::Allowed,
                "{principal} {who}"
            );
            let other = Request {
                principal: aws("arn:aws:iam::777788889999:user/eve", "777788889999"),
                ..req
            };
            assert_eq!(
                evaluate(&set, &other).decision,
                Decision::ImplicitDeny,
                "{principal}"
            );
        }
    }
}

#[test]
fn role_arn_matches_its_assumed_role_sessions() {
    let ctx = ContextKeys::new();
    let p = trust(r#"{"AWS":"arn:aws:iam::111122223333:role/team/ci"}"#);
    let session = aws(
        "arn:aws:sts::111122223333:assumed-role/ci/build-42",
        ACCOUNT,
    );
    let other_role_session = aws(
        "arn:aws:sts::111122223333:assumed-role/cd/build-42",
        ACCOUNT,
    );
    let other_account = aws(
        "arn:aws:sts::444455556666:assumed-role/ci/build-42",
        "444455556666",
    );
    let role_itself = aws("arn:aws:iam::111122223333:role/team/ci", ACCOUNT);
    assert_eq!(
        can_assume(&p, session, "sts:AssumeRole", &ctx),
        Decision::Allowed
    );
    assert_eq!(
        can_assume(&p, role_itself, "sts:AssumeRole", &ctx),
        Decision::Allowed
    );
    assert_eq!(
        can_assume(&p, other_role_session, "sts:AssumeRole", &ctx),
        Decision::ImplicitDeny
    );
    assert_eq!(
        can_assume(&p, other_account, "sts:AssumeRole", &ctx),
        Decision::ImplicitDeny
    );
}

#[test]
fn federated_principal_with_conditions() {
    let p = parse(
        PolicyKind::Trust,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/accounts.google.com"},
            "Action":"sts:AssumeRoleWithWebIdentity",
            "Condition":{"StringEquals":{"accounts.google.com:aud":"my-client-id"}}}]}"#,
    );
    let provider = "arn:aws:iam::111122223333:oidc-provider/accounts.google.com";
    let good = ContextKeys::new().with("accounts.google.com:aud", "my-client-id");
    let bad = ContextKeys::new().with("accounts.google.com:aud", "someone-else");
    let who = PrincipalRef::Federated(provider);
    assert_eq!(
        can_assume(&p, who, "sts:AssumeRoleWithWebIdentity", &good),
        Decision::Allowed
    );
    assert_eq!(
        can_assume(&p, who, "sts:AssumeRoleWithWebIdentity", &bad),
        Decision::ImplicitDeny
    );
    assert_eq!(
        can_assume(&p, who, "sts:AssumeRole", &good),
        Decision::ImplicitDeny
    );
    let other = PrincipalRef::Federated("arn:aws:iam::111122223333:saml-provider/okta");
    assert_eq!(
        can_assume(&p, other, "sts:AssumeRoleWithWebIdentity", &good),
        Decision::ImplicitDeny
    );
}

#[test]
fn service_and_canonical_user_principals() {
    let ctx = ContextKeys::new();
    let p = trust(r#"{"Service":["ec2.amazonaws.com","lambda.amazonaws.com"]}"#);
    assert_eq!(
        can_assume(
            &p,
            PrincipalRef::Service("lambda.amazonaws.com"),
            "sts:AssumeRole",
            &ctx
        ),
        Decision::Allowed
    );
    assert_eq!(
        can_assume(
            &p,
            PrincipalRef::Service("ecs.amazonaws.com"),
            "sts:AssumeRole",
            &ctx
        ),
        Decision::ImplicitDeny
    );
    // A service principal does not match an AWS principal with the same text.
    assert_eq!(
        can_assume(
            &p,
            aws("ec2.amazonaws.com", ACCOUNT),
            "sts:AssumeRole",
            &ctx
        ),
        Decision::ImplicitDeny
    );
    let p = trust(
        r#"{"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}"#,
    );
    let cu = PrincipalRef::CanonicalUser(
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
    );
    assert_eq!(
        can_assume(&p, cu, "sts:AssumeRole", &ctx),
        Decision::Allowed
    );
    assert_eq!(
        can_assume(
            &p,
            PrincipalRef::CanonicalUser("abc"),
            "sts:AssumeRole",
            &ctx
        ),
        Decision::ImplicitDeny
    );
}

#[test]
fn star_matches_everyone() {
    let ctx = ContextKeys::new();
    for principal in [r#""*""#, r#"{"AWS":"*"}"#] {
        let p = trust(principal);
        for who in [
            aws("arn:aws:iam::111122223333:user/x", ACCOUNT),
            PrincipalRef::Service("ec2.amazonaws.com"),
            PrincipalRef::Federated("cognito-identity.amazonaws.com"),
            PrincipalRef::Anonymous,
        ] {
            assert_eq!(
                can_assume(&p, who, "sts:AssumeRole", &ctx),
                Decision::Allowed,
                "{principal} {who:?}"
            );
        }
    }
    let p = trust(r#"{"AWS":"111122223333"}"#);
    assert_eq!(
        can_assume(&p, PrincipalRef::Anonymous, "sts:AssumeRole", &ctx),
        Decision::ImplicitDeny
    );
}

#[test]
fn not_principal_deny_excludes_listed_principals_only_with_their_account() {
    let ctx = ContextKeys::new();
    let policy = |listed: &str| {
        parse(
            PolicyKind::Resource,
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[
                    {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}},
                    {{"Sid":"OnlyBob","Effect":"Deny","NotPrincipal":{{"AWS":{listed}}},"Action":"s3:*","Resource":"arn:aws:s3:::b/*"}}]}}"#
            ),
        )
    };
    let bob = aws("arn:aws:iam::111122223333:user/bob", ACCOUNT);
    let alice = aws("arn:aws:iam::111122223333:user/alice", ACCOUNT);
    let get = |p: &Policy, who| {
        let set = PolicySet {
            resource: Some(ResourcePolicy {
                policy: p,
                owner_account: ACCOUNT,
            }),
            ..Default::default()
        };
        evaluate(
            &set,
            &Request {
                principal: who,
                action: "s3:GetObject",
                resource: "arn:aws:s3:::b/k",
                context: &ctx,
            },
        )
        .decision
    };
    let with_account =
        policy(r#"["arn:aws:iam::111122223333:user/bob","arn:aws:iam::111122223333:root"]"#);
    assert_eq!(get(&with_account, bob), Decision::Allowed);
    assert_eq!(get(&with_account, alice), Decision::ExplicitDeny);
    assert_eq!(
        get(&with_account, PrincipalRef::Anonymous),
        Decision::ExplicitDeny
    );
    // Without the account in the list, bob is denied too (AWS documents this).
    let without_account = policy(r#""arn:aws:iam::111122223333:user/bob""#);
    assert_eq!(get(&without_account, bob), Decision::ExplicitDeny);

    // NotPrincipal with Allow grants to everyone not listed.
    let allow_others = parse(
        PolicyKind::Resource,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/bob","111122223333"]},
            "Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
    );
    assert_eq!(get(&allow_others, alice), Decision::Allowed);
    assert_eq!(get(&allow_others, bob), Decision::ImplicitDeny);
}
