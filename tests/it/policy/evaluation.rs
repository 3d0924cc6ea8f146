//! Evaluation order: actions, resources, explicit deny, boundaries, session
//! policies, resource policies and the deciding statement.

use rolegate::policy::{
    ContextKeys, Decision, ImplicitDenyReason, PolicyKind, PolicySet, PolicySource, PrincipalRef,
    Request, ResourcePolicy, evaluate,
};

use super::{ACCOUNT, ALICE, OTHER_ACCOUNT, alice, allow, eval_identity, identity, parse};

#[test]
fn action_matching_is_case_insensitive_with_wildcards() {
    let p = allow("s3:Get*", "*");
    let ctx = ContextKeys::new();
    assert!(eval_identity(&[&p], "s3:GetObject", "arn:aws:s3:::b/k", &ctx).is_allowed());
    assert!(eval_identity(&[&p], "S3:getobject", "arn:aws:s3:::b/k", &ctx).is_allowed());
    assert!(!eval_identity(&[&p], "s3:PutObject", "arn:aws:s3:::b/k", &ctx).is_allowed());
    let p = allow("ec2:Describe?nstances", "*");
    assert!(eval_identity(&[&p], "ec2:DescribeInstances", "*", &ctx).is_allowed());
    assert!(!eval_identity(&[&p], "ec2:DescribeXXnstances", "*", &ctx).is_allowed());
}

#[test]
fn resource_matching_is_per_segment_and_case_sensitive() {
    let ctx = ContextKeys::new();
    let p = allow("s3:*", "arn:aws:s3:::bucket/*");
    assert!(eval_identity(&[&p], "s3:GetObject", "arn:aws:s3:::bucket/a/b:c", &ctx).is_allowed());
    assert!(!eval_identity(&[&p], "s3:GetObject", "arn:aws:s3:::Bucket/a", &ctx).is_allowed());
    assert!(!eval_identity(&[&p], "s3:GetObject", "arn:aws:s3:::bucket", &ctx).is_allowed());
    let p = allow("dynamodb:*", "arn:aws:dynamodb:*:111122223333:table/*");
    assert!(
        eval_identity(
            &[&p],
            "dynamodb:GetItem",
            "arn:aws:dynamodb:eu-west-1:111122223333:table/t",
            &ctx
        )
        .is_allowed()
    );
    assert!(
        !eval_identity(
            &[&p],
            "dynamodb:GetItem",
            "arn:aws:dynamodb:eu-west-1:444455556666:table/t",
            &ctx
        )
        .is_allowed()
    );
    // The region wildcard stays inside its segment.
    assert!(
        !eval_identity(
            &[&p],
            "dynamodb:GetItem",
            "arn:aws:dynamodb:eu:west:111122223333:table/t",
            &ctx
        )
        .is_allowed()
    );
    // Other partitions work the same way.
    let p = allow("s3:*", "arn:aws-cn:s3:::bucket/*");
    assert!(eval_identity(&[&p], "s3:GetObject", "arn:aws-cn:s3:::bucket/k", &ctx).is_allowed());
    assert!(!eval_identity(&[&p], "s3:GetObject", "arn:aws:s3:::bucket/k", &ctx).is_allowed());
}

#[test]
fn not_action_and_not_resource() {
    let ctx = ContextKeys::new();
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#,
    );
    assert!(eval_identity(&[&p], "s3:GetObject", "*", &ctx).is_allowed());
    assert!(!eval_identity(&[&p], "IAM:CreateUser", "*", &ctx).is_allowed());

    let p = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::secret/*"}]}"#,
    );
    assert!(eval_identity(&[&p], "s3:GetObject", "arn:aws:s3:::public/x", &ctx).is_allowed());
    assert!(!eval_identity(&[&p], "s3:GetObject", "arn:aws:s3:::secret/x", &ctx).is_allowed());
}

#[test]
fn explicit_deny_wins_and_is_reported() {
    let ctx = ContextKeys::new();
    let allow_all = allow("*", "*");
    let deny = identity(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Other","Effect":"Deny","Action":"ec2:*","Resource":"*"},
            {"Sid":"NoDelete","Effect":"Deny","Action":"s3:Delete*","Resource":"arn:aws:s3:::prod/*"}]}"#,
    );
    let both = [&allow_all, &deny];
    let e = eval_identity(&both, "s3:DeleteObject", "arn:aws:s3:::prod/x", &ctx);
    assert_eq!(e.decision, Decision::ExplicitDeny);
    assert_eq!(e.decision.to_string(), "ExplicitDeny");
    let d = e.deciding.expect("deciding statement");
    assert_eq!(
        (d.source, d.statement_index, d.sid),
        (PolicySource::Identity(1), 1, Some("NoDelete"))
    );

    let e = eval_identity(&both, "s3:DeleteObject", "arn:aws:s3:::dev/x", &ctx);
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(e.decision.to_string(), "Allowed");
    let d = e.deciding.expect("allowing statement");
    assert_eq!(
        (d.source, d.statement_index, d.sid),
        (PolicySource::Identity(0), 0, None)
    );
}

#[test]
fn implicit_deny_without_any_allow() {
    let p = allow("s3:GetObject", "*");
    let only = [&p];
    let e = eval_identity(&only, "s3:PutObject", "*", &ContextKeys::new());
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.decision.to_string(), "ImplicitDeny");
    assert_eq!(e.deciding, None);
    assert_eq!(
        e.implicit_deny,
        Some(ImplicitDenyReason::NoIdentityPolicyAllows)
    );
    let e = eval_identity(&[], "s3:PutObject", "*", &ContextKeys::new());
    assert_eq!(e.decision, Decision::ImplicitDeny);
}

fn request<'a>(action: &'a str, resource: &'a str, ctx: &'a ContextKeys) -> Request<'a> {
    Request {
        principal: alice(),
        action,
        resource,
        context: ctx,
    }
}

#[test]
fn permissions_boundary_intersects_identity_policies() {
    let ctx = ContextKeys::new();
    let admin = allow("*", "*");
    let boundary = allow("s3:*", "*");
    let identity = [&admin];
    let set = PolicySet {
        identity: &identity,
        boundary: Some(&boundary),
        ..Default::default()
    };
    assert!(evaluate(&set, &request("s3:GetObject", "arn:aws:s3:::b/k", &ctx)).is_allowed());
    let e = evaluate(&set, &request("iam:CreateUser", "*", &ctx));
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(
        e.implicit_deny,
        Some(ImplicitDenyReason::BoundaryDoesNotAllow)
    );
    // The boundary alone grants nothing.
    let none: [&rolegate::policy::Policy; 0] = [];
    let set = PolicySet {
        identity: &none,
        boundary: Some(&boundary),
        ..Default::default()
    };
    assert!(!evaluate(&set, &request("s3:GetObject", "arn:aws:s3:::b/k", &ctx)).is_allowed());
    // A deny in the boundary is an explicit deny.
    let deny_boundary = identity_deny_s3_delete();
    let set = PolicySet {
        identity: &identity,
        boundary: Some(&deny_boundary),
        ..Default::default()
    };
    let e = evaluate(&set, &request("s3:DeleteObject", "arn:aws:s3:::b/k", &ctx));
    assert_eq!(e.decision, Decision::ExplicitDeny);
    assert_eq!(e.deciding.map(|d| d.source), Some(PolicySource::Boundary));
}

fn identity_deny_s3_delete() -> rolegate::policy::Policy {
    identity(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
            {"Sid":"NoDelete","Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#,
    )
}

#[test]
fn session_policies_intersect_and_union_among_themselves() {
    let ctx = ContextKeys::new();
    let admin = allow("*", "*");
    let s1 = allow("s3:GetObject", "*");
    let s2 = allow("s3:ListBucket", "*");
    let identity = [&admin];
    let sessions = [&s1, &s2];
    let set = PolicySet {
        identity: &identity,
        session: &sessions,
        ..Default::default()
    };
    assert!(evaluate(&set, &request("s3:GetObject", "arn:aws:s3:::b/k", &ctx)).is_allowed());
    assert!(evaluate(&set, &request("s3:ListBucket", "arn:aws:s3:::b", &ctx)).is_allowed());
    let e = evaluate(&set, &request("s3:PutObject", "arn:aws:s3:::b/k", &ctx));
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(
        e.implicit_deny,
        Some(ImplicitDenyReason::SessionPolicyDoesNotAllow)
    );
    // A session policy cannot grant what identity policies do not.
    let only_get = allow("s3:GetObject", "*");
    let identity = [&only_get];
    let wide = allow("*", "*");
    let sessions = [&wide];
    let set = PolicySet {
        identity: &identity,
        session: &sessions,
        ..Default::default()
    };
    assert!(!evaluate(&set, &request("s3:PutObject", "arn:aws:s3:::b/k", &ctx)).is_allowed());
    // Deny in a session policy.
    let deny = identity_deny_s3_delete();
    let sessions = [&deny];
    let admin_only = [&admin];
    let set = PolicySet {
        identity: &admin_only,
        session: &sessions,
        ..Default::default()
    };
    let e = evaluate(&set, &request("s3:DeleteObject", "arn:aws:s3:::b/k", &ctx));
    assert_eq!(e.decision, Decision::ExplicitDeny);
    let d = e.deciding.expect("deny");
    assert_eq!(
        (d.source, d.statement_index, d.sid),
        (PolicySource::Session(0), 1, Some("NoDelete"))
    );
}

fn bucket_policy(principal: &str) -> rolegate::policy::Policy {
    parse(
        PolicyKind::Resource,
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Share","Effect":"Allow","Principal":{principal},
                "Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/*"}}]}}"#
        ),
    )
}

#[test]
fn same_account_resource_policy_naming_the_user_is_enough() {
    let ctx = ContextKeys::new();
    let rp = bucket_policy(&format!(r#"{{"AWS":"{ALICE}"}}"#));
    let none: [&rolegate::policy::Policy; 0] = [];
    let set = PolicySet {
        identity: &none,
        resource: Some(ResourcePolicy {
            policy: &rp,
            owner_account: ACCOUNT,
        }),
        ..Default::default()
    };
    let e = evaluate(
        &set,
        &request("s3:GetObject", "arn:aws:s3:::shared/x", &ctx),
    );
    assert_eq!(e.decision, Decision::Allowed);
    let d = e.deciding.expect("resource statement");
    assert_eq!((d.source, d.sid), (PolicySource::Resource, Some("Share")));
    // Not for other actions or resources.
    let e = evaluate(
        &set,
        &request("s3:GetObject", "arn:aws:s3:::private/x", &ctx),
    );
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.implicit_deny, Some(ImplicitDenyReason::NoPolicyAllows));
    // Union: identity allow without the resource policy's help.
    let id = allow("s3:PutObject", "*");
    let identity = [&id];
    let set = PolicySet {
        identity: &identity,
        ..set
    };
    assert!(
        evaluate(
            &set,
            &request("s3:PutObject", "arn:aws:s3:::shared/x", &ctx)
        )
        .is_allowed()
    );
}

#[test]
fn same_account_resource_policy_naming_only_the_account_delegates_to_identity() {
    let ctx = ContextKeys::new();
    let rp = bucket_policy(&format!(r#"{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}}"#));
    let none: [&rolegate::policy::Policy; 0] = [];
    let resource = Some(ResourcePolicy {
        policy: &rp,
        owner_account: ACCOUNT,
    });
    let set = PolicySet {
        identity: &none,
        resource,
        ..Default::default()
    };
    assert!(
        !evaluate(
            &set,
            &request("s3:GetObject", "arn:aws:s3:::shared/x", &ctx)
        )
        .is_allowed()
    );
    let id = allow("s3:GetObject", "*");
    let identity = [&id];
    let set = PolicySet {
        identity: &identity,
        resource,
        ..Default::default()
    };
    assert!(
        evaluate(
            &set,
            &request("s3:GetObject", "arn:aws:s3:::shared/x", &ctx)
        )
        .is_allowed()
    );
}

#[test]
fn wildcard_resource_allow_is_still_limited_by_boundary_and_session() {
    let ctx = ContextKeys::new();
    let rp = bucket_policy(r#""*""#);
    let none: [&rolegate::policy::Policy; 0] = [];
    let resource = Some(ResourcePolicy {
        policy: &rp,
        owner_account: ACCOUNT,
    });
    let set = PolicySet {
        identity: &none,
        resource,
        ..Default::default()
    };
    assert!(
        evaluate(
            &set,
            &request("s3:GetObject", "arn:aws:s3:::shared/x", &ctx)
        )
        .is_allowed()
    );
    let boundary = allow("ec2:*", "*");
    let set = PolicySet {
        identity: &none,
        boundary: Some(&boundary),
        resource,
        ..Default::default()
    };
    let e = evaluate(
        &set,
        &request("s3:GetObject", "arn:aws:s3:::shared/x", &ctx),
    );
    assert_eq!(
        e.implicit_deny,
        Some(ImplicitDenyReason::BoundaryDoesNotAllow)
    );
    let session = allow("ec2:*", "*");
    let sessions = [&session];
    let set = PolicySet {
        identity: &none,
        session: &sessions,
        resource,
        ..Default::default()
    };
    let e = evaluate(
        &set,
        &request("s3:GetObject", "arn:aws:s3:::shared/x", &ctx),
    );
    assert_eq!(
        e.implicit_deny,
        Some(ImplicitDenyReason::SessionPolicyDoesNotAllow)
    );
    // Anonymous callers get in through "*" alone.
    let set = PolicySet {
        identity: &none,
        resource,
        ..Default::default()
    };
    let anon = Request {
        principal: PrincipalRef::Anonymous,
        ..request("s3:GetObject", "arn:aws:s3:::shared/x", &ctx)
    };
    assert!(evaluate(&set, &anon).is_allowed());
}

#[test]
fn cross_account_needs_both_identity_and_resource_policy() {
    let ctx = ContextKeys::new();
    let bob = "arn:aws:iam::444455556666:user/bob";
    let rp = bucket_policy(&format!(r#"{{"AWS":"{OTHER_ACCOUNT}"}}"#));
    let id = allow("s3:GetObject", "*");
    let with_identity = [&id];
    let none: [&rolegate::policy::Policy; 0] = [];
    let req = Request {
        principal: PrincipalRef::Aws {
            arn: bob,
            account: OTHER_ACCOUNT,
        },
        ..request("s3:GetObject", "arn:aws:s3:::shared/x", &ctx)
    };
    let resource = Some(ResourcePolicy {
        policy: &rp,
        owner_account: ACCOUNT,
    });
    let both = PolicySet {
        identity: &with_identity,
        resource,
        ..Default::default()
    };
    assert!(evaluate(&both, &req).is_allowed());
    let resource_only = PolicySet {
        identity: &none,
        resource,
        ..Default::default()
    };
    assert!(!evaluate(&resource_only, &req).is_allowed());
    // Even a policy naming bob's exact ARN needs bob's identity policy.
    let rp_exact = bucket_policy(&format!(r#"{{"AWS":"{bob}"}}"#));
    let exact_only = PolicySet {
        identity: &none,
        resource: Some(ResourcePolicy {
            policy: &rp_exact,
            owner_account: ACCOUNT,
        }),
        ..Default::default()
    };
    assert!(!evaluate(&exact_only, &req).is_allowed());
    // Identity alone is not enough across accounts either.
    let other_rp = bucket_policy(r#"{"AWS":"999999999999"}"#);
    let identity_only = PolicySet {
        identity: &with_identity,
        resource: Some(ResourcePolicy {
            policy: &other_rp,
            owner_account: ACCOUNT,
        }),
        ..Default::default()
    };
    let e = evaluate(&identity_only, &req);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(
        e.implicit_deny,
        Some(ImplicitDenyReason::ResourcePolicyDoesNotAllow)
    );
}

#[test]
fn resource_policy_deny_wins_over_identity_allow() {
    let ctx = ContextKeys::new();
    let rp = parse(
        PolicyKind::Resource,
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecure","Effect":"Deny","Principal":"*","Action":"s3:*",
            "Resource":"arn:aws:s3:::shared/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
    );
    let id = allow("*", "*");
    let identity = [&id];
    let set = PolicySet {
        identity: &identity,
        resource: Some(ResourcePolicy {
            policy: &rp,
            owner_account: ACCOUNT,
        }),
        ..Default::default()
    };
    let insecure = ContextKeys::new().with("aws:SecureTransport", "false");
    let e = evaluate(
        &set,
        &request("s3:GetObject", "arn:aws:s3:::shared/x", &insecure),
    );
    assert_eq!(e.decision, Decision::ExplicitDeny);
    assert_eq!(
        e.deciding.map(|d| (d.source, d.sid)),
        Some((PolicySource::Resource, Some("DenyInsecure")))
    );
    assert!(
        evaluate(
            &set,
            &request("s3:GetObject", "arn:aws:s3:::shared/x", &ctx)
        )
        .is_allowed()
    );
}

#[test]
fn managed_read_only_access_policy() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpora/aws-managed-policies/ReadOnlyAccess.json");
    let text = std::fs::read_to_string(path).expect("ReadOnlyAccess.json");
    let p = rolegate::policy::Policy::parse(
        &text,
        rolegate::policy::ParseOptions::new(PolicyKind::Identity),
    )
    .expect("parse");
    let ctx = ContextKeys::new();
    assert!(eval_identity(&[&p], "s3:GetObject", "arn:aws:s3:::b/k", &ctx).is_allowed());
    assert!(eval_identity(&[&p], "ec2:DescribeInstances", "*", &ctx).is_allowed());
    assert!(eval_identity(&[&p], "EC2:describeinstances", "*", &ctx).is_allowed());
    assert!(!eval_identity(&[&p], "s3:PutObject", "arn:aws:s3:::b/k", &ctx).is_allowed());
    assert!(!eval_identity(&[&p], "iam:CreateUser", "*", &ctx).is_allowed());
}
