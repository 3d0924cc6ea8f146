//! AWS policy evaluation: explicit deny, identity policies, permissions
//! boundary, session policies and resource-based (incl. trust) policies.
//!
//! Decision logic (AWS "policy evaluation logic" for a single account and
//! "cross-account policy evaluation logic"):
//!
//! 1. A matching `Deny` statement in any supplied policy → `ExplicitDeny`
//!    (checked in the order identity, boundary, session, resource).
//! 2. Identity path: some identity statement allows, and the boundary (if
//!    any) allows, and some session policy (if any) allows.
//! 3. Resource policy (only statements whose `Principal` names the caller):
//!    * caller is not an AWS principal (federated, service, canonical user,
//!      anonymous): a resource allow suffices;
//!    * cross-account AWS caller (account ≠ `owner_account`): both the
//!      identity path and the resource policy must allow;
//!    * same account: an allow naming the caller's exact ARN (user, role,
//!      session) suffices on its own; one matching through `"*"`,
//!      `NotPrincipal` or a role ARN for one of its sessions still needs the
//!      boundary and session policies to allow; one naming only the account
//!      delegates to the identity path (like a trust policy naming
//!      `arn:aws:iam::A:root`).

use std::fmt;

use super::context::ContextKeys;
use super::document::{Effect, Policy, PolicyKind, PrincipalElement, Statement};
use super::matcher::split_arn;
use super::principal::MatchKind;
pub use super::principal::PrincipalRef;

/// A request to authorize.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: PrincipalRef<'a>,
    /// `service:Action`, any case.
    pub action: &'a str,
    /// The resource ARN (or `*`).
    pub resource: &'a str,
    pub context: &'a ContextKeys,
}

/// A resource-based policy (or a role's trust policy) with the account that
/// owns the resource.
#[derive(Debug, Clone, Copy)]
pub struct ResourcePolicy<'a> {
    pub policy: &'a Policy,
    pub owner_account: &'a str,
}

/// All policies that apply to a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicySet<'a> {
    /// Identity-based policies of the principal (inline and managed, user's
    /// groups included).
    pub identity: &'a [&'a Policy],
    /// Permissions boundary, if the principal has one.
    pub boundary: Option<&'a Policy>,
    /// Session policies; empty means the session has none.
    pub session: &'a [&'a Policy],
    /// The resource's policy (for `sts:AssumeRole*`, the role trust policy).
    pub resource: Option<ResourcePolicy<'a>>,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allowed,
    ImplicitDeny,
    ExplicitDeny,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "Allowed",
            Decision::ImplicitDeny => "ImplicitDeny",
            Decision::ExplicitDeny => "ExplicitDeny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which policy a statement came from; indexes refer to the slices in
/// [`PolicySet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicySource {
    Identity(usize),
    Boundary,
    Session(usize),
    Resource,
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySource::Identity(i) => write!(f, "identity-based policy #{i}"),
            PolicySource::Boundary => f.write_str("permissions boundary"),
            PolicySource::Session(i) => write!(f, "session policy #{i}"),
            PolicySource::Resource => f.write_str("resource-based policy"),
        }
    }
}

/// The statement that decided the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecidingStatement<'a> {
    pub source: PolicySource,
    pub statement_index: usize,
    pub sid: Option<&'a str>,
}

/// Why a request was implicitly denied (the first gate that failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImplicitDenyReason {
    /// No identity-based policy allows it (and there is no resource policy).
    NoIdentityPolicyAllows,
    /// Neither an identity-based nor the resource-based policy allows it.
    NoPolicyAllows,
    /// An identity policy allows it but the permissions boundary does not.
    BoundaryDoesNotAllow,
    /// Allowed otherwise, but no session policy allows it.
    SessionPolicyDoesNotAllow,
    /// Cross-account: the identity side allows, the resource policy does not.
    ResourcePolicyDoesNotAllow,
}

impl ImplicitDenyReason {
    /// Wording in the style of AWS's AccessDenied messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ImplicitDenyReason::NoIdentityPolicyAllows => {
                "no identity-based policy allows the action"
            }
            ImplicitDenyReason::NoPolicyAllows => {
                "no identity-based or resource-based policy allows the action"
            }
            ImplicitDenyReason::BoundaryDoesNotAllow => "no permissions boundary allows the action",
            ImplicitDenyReason::SessionPolicyDoesNotAllow => "no session policy allows the action",
            ImplicitDenyReason::ResourcePolicyDoesNotAllow => {
                "no resource-based policy allows the action"
            }
        }
    }
}

impl fmt::Display for ImplicitDenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation<'a> {
    pub decision: Decision,
    /// The deny statement for `ExplicitDeny`, an allowing statement for
    /// `Allowed`, `None` for `ImplicitDeny`.
    pub deciding: Option<DecidingStatement<'a>>,
    /// For `ImplicitDeny`: the gate that failed.
    pub implicit_deny: Option<ImplicitDenyReason>,
}

impl Evaluation<'_> {
    pub fn is_allowed(&self) -> bool {
        self.decision.is_allowed()
    }
}

/// The request, pre-processed once per evaluation.
struct Prepared<'r> {
    req: &'r Request<'r>,
    arn_parts: Option<[&'r str; 6]>,
}

/// Does the statement apply to the request, ignoring `Principal`?
#[inline]
fn applies(st: &Statement, p: &Prepared<'_>) -> bool {
    if st.actions.matches(p.req.action) == st.not_action {
        return false;
    }
    if let Some(resources) = &st.resources {
        let (hit, unresolved) =
            resources.matches(p.req.resource, p.arn_parts.as_ref(), p.req.context);
        let ok = if st.not_resource {
            !hit && !unresolved
        } else {
            hit
        };
        if !ok {
            return false;
        }
    }
    st.conditions.iter().all(|c| c.evaluate(p.req.context))
}

/// How the statement's principal element matches the caller (resource policies).
#[inline]
fn principal_match(st: &Statement, who: &PrincipalRef<'_>) -> Option<MatchKind> {
    match &st.principal {
        PrincipalElement::None => Some(MatchKind::Indirect),
        PrincipalElement::Principal(spec) => spec.match_kind(who),
        PrincipalElement::NotPrincipal(spec) => spec
            .not_principal_applies(who)
            .then_some(MatchKind::Indirect),
    }
}

fn deciding(source: PolicySource, st: &Statement) -> DecidingStatement<'_> {
    DecidingStatement {
        source,
        statement_index: st.index(),
        sid: st.sid(),
    }
}

enum Scan<'a> {
    Deny(DecidingStatement<'a>),
    Allow(Option<DecidingStatement<'a>>),
}

/// First deny (returned at once) or first allow of a policy without a
/// principal element check.
#[inline]
fn scan<'a>(policy: &'a Policy, source: PolicySource, p: &Prepared<'_>) -> Scan<'a> {
    let mut allow = None;
    for st in policy.statements() {
        if st.effect() == Effect::Allow && allow.is_some() {
            continue;
        }
        if applies(st, p) {
            match st.effect() {
                Effect::Deny => return Scan::Deny(deciding(source, st)),
                Effect::Allow => allow = Some(deciding(source, st)),
            }
        }
    }
    Scan::Allow(allow)
}

fn explicit_deny(d: DecidingStatement<'_>) -> Evaluation<'_> {
    Evaluation {
        decision: Decision::ExplicitDeny,
        deciding: Some(d),
        implicit_deny: None,
    }
}

fn allowed(d: DecidingStatement<'_>) -> Evaluation<'_> {
    Evaluation {
        decision: Decision::Allowed,
        deciding: Some(d),
        implicit_deny: None,
    }
}

fn implicit(reason: ImplicitDenyReason) -> Evaluation<'static> {
    Evaluation {
        decision: Decision::ImplicitDeny,
        deciding: None,
        implicit_deny: Some(reason),
    }
}

/// The account that owns `resource` when it is not `caller_account`: the
/// ARN's account field, or, for ARNs without one (S3 buckets and objects), the
/// request's `aws:ResourceAccount` context key. `None` when the resource is in
/// the caller's account or names no account at all (`*`, an S3 ARN without
/// `aws:ResourceAccount`). A wildcard account field, or any one of several
/// `aws:ResourceAccount` values that differs, counts as another account.
pub fn foreign_resource_owner<'a>(
    resource: &'a str,
    context: &'a ContextKeys,
    caller_account: &str,
) -> Option<&'a str> {
    if let Some(parts) = split_arn(resource).filter(|p| p[0] == "arn")
        && !parts[4].is_empty()
    {
        return (parts[4] != caller_account).then_some(parts[4]);
    }
    context
        .get("aws:ResourceAccount")?
        .iter()
        .map(String::as_str)
        .find(|owner| !owner.is_empty() && *owner != caller_account)
}

/// Evaluates `request` against every policy in `set`.
pub fn evaluate<'a>(set: &PolicySet<'a>, request: &Request<'_>) -> Evaluation<'a> {
    let p = Prepared {
        req: request,
        arn_parts: split_arn(request.resource),
    };

    let mut identity_allow = None;
    for (i, policy) in set.identity.iter().enumerate() {
        match scan(policy, PolicySource::Identity(i), &p) {
            Scan::Deny(d) => return explicit_deny(d),
            Scan::Allow(a) => identity_allow = identity_allow.or(a),
        }
    }
    let boundary_ok = match set.boundary {
        None => true,
        Some(policy) => match scan(policy, PolicySource::Boundary, &p) {
            Scan::Deny(d) => return explicit_deny(d),
            Scan::Allow(a) => a.is_some(),
        },
    };
    let mut session_ok = set.session.is_empty();
    for (i, policy) in set.session.iter().enumerate() {
        match scan(policy, PolicySource::Session(i), &p) {
            Scan::Deny(d) => return explicit_deny(d),
            Scan::Allow(a) => session_ok |= a.is_some(),
        }
    }
    // Resource policy: best principal match among allowing statements.
    let mut resource_allow: Option<(MatchKind, DecidingStatement<'a>)> = None;
    if let Some(rp) = &set.resource {
        for st in rp.policy.statements() {
            if st.effect() == Effect::Allow
                && resource_allow.is_some_and(|(k, _)| k == MatchKind::Direct)
            {
                continue;
            }
            let Some(kind) = principal_match(st, &request.principal) else {
                continue;
            };
            if !applies(st, &p) {
                continue;
            }
            match st.effect() {
                Effect::Deny => return explicit_deny(deciding(PolicySource::Resource, st)),
                Effect::Allow => {
                    if resource_allow.is_none_or(|(k, _)| kind > k) {
                        resource_allow = Some((kind, deciding(PolicySource::Resource, st)));
                    }
                }
            }
        }
    }

    // The identity path with its gates.
    let identity_path = match identity_allow {
        Some(d) if boundary_ok && session_ok => Ok(d),
        Some(_) if !boundary_ok => Err(ImplicitDenyReason::BoundaryDoesNotAllow),
        Some(_) => Err(ImplicitDenyReason::SessionPolicyDoesNotAllow),
        None if set.resource.is_some() => Err(ImplicitDenyReason::NoPolicyAllows),
        None => Err(ImplicitDenyReason::NoIdentityPolicyAllows),
    };

    let account = match request.principal {
        PrincipalRef::Aws { account, .. } => account,
        _ => {
            // Federated, service, canonical and anonymous callers have no
            // identity policies of their own here: the resource policy decides.
            return match (resource_allow, identity_path) {
                (Some((_, d)), _) => allowed(d),
                (None, Ok(d)) => allowed(d),
                (None, Err(r)) => implicit(r),
            };
        }
    };

    match set.resource {
        Some(rp) if rp.owner_account != account => match (identity_path, resource_allow) {
            (Ok(d), Some(_)) => allowed(d),
            (Ok(_), None) => implicit(ImplicitDenyReason::ResourcePolicyDoesNotAllow),
            (Err(r), _) => implicit(r),
        },
        _ => match resource_allow {
            Some((MatchKind::Direct, d)) => allowed(d),
            Some((MatchKind::Indirect, d)) => match identity_path {
                Ok(id) => allowed(id),
                Err(_) if !boundary_ok => implicit(ImplicitDenyReason::BoundaryDoesNotAllow),
                Err(_) if !session_ok => implicit(ImplicitDenyReason::SessionPolicyDoesNotAllow),
                Err(_) => allowed(d),
            },
            // A role's trust policy must itself admit the caller: unlike other
            // resource policies, identity permissions alone never suffice.
            None if set
                .resource
                .is_some_and(|rp| rp.policy.kind() == PolicyKind::Trust) =>
            {
                implicit(ImplicitDenyReason::ResourcePolicyDoesNotAllow)
            }
            Some((MatchKind::Account, _)) | None => match identity_path {
                Ok(d) => allowed(d),
                Err(r) => implicit(r),
            },
        },
    }
}
