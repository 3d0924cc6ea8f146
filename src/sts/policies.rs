//! A caller's identity-side policies, parsed, and the verdicts they give. Pure: the
//! issuance service gathers the documents; this decides.

use std::sync::Arc;

use crate::policy::{Policy, PolicySet, PrincipalRef, Request, ResourcePolicy};

use super::assume::Caller;

/// A caller's identity-side policies, parsed.
pub struct CallerPolicies {
    pub identity: Vec<Arc<Policy>>,
    pub boundary: Option<Arc<Policy>>,
    pub session: Vec<Arc<Policy>>,
}

/// The outcome of evaluating a caller's own policies, detached from their borrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: crate::policy::Decision,
    /// Where the deciding statement is: (policy, statement index, Sid).
    pub deciding: Option<(crate::policy::PolicySource, usize, Option<String>)>,
    /// A sentence for people: why the decision came out this way.
    pub reason: String,
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        self.decision.is_allowed()
    }
}

impl CallerPolicies {
    /// Evaluates `action` on `resource` for `caller` under its identity policies,
    /// boundary and session policies only: no resource policy and no account
    /// boundary. For Rolegate's own permission checks (`rolegate:Authorize`
    /// names the resource a service may *ask about*, in any account, and
    /// `sts:DecodeAuthorizationMessage`); a request on a resource is decided by
    /// [`authorize`](Self::authorize).
    pub fn decide(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        context: &crate::policy::ContextKeys,
    ) -> Verdict {
        self.evaluate(caller, action, resource, context, None)
    }

    /// The decision for `caller` performing `action` on `resource`, as AWS makes
    /// it across accounts (`/v1/authorize` and the console's "Can I?" box).
    ///
    /// The resource's owner is the account in its ARN, or `aws:ResourceAccount`
    /// from the context when the ARN has none (S3). In another account than the
    /// caller's, the identity side (identity policies, boundary, session
    /// policies) must allow *and* `resource_policy` (the owner's resource-based
    /// policy) must allow the caller; without a resource policy the request is
    /// an implicit deny. In the caller's own account (or when no owner is
    /// known) the identity side decides as before, and a resource policy, if
    /// given, may also grant: on its own when it names the caller's exact ARN,
    /// otherwise subject to the boundary and session policies (AWS's
    /// same-account rules, see [`crate::policy::evaluate`]). An explicit deny in
    /// any of the policies wins everywhere.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        context: &crate::policy::ContextKeys,
        resource_policy: Option<&Policy>,
    ) -> Verdict {
        use crate::policy::Decision;
        let foreign = crate::policy::foreign_resource_owner(resource, context, &caller.account);
        let owner = foreign.unwrap_or(&caller.account);
        let verdict = self.evaluate(
            caller,
            action,
            resource,
            context,
            resource_policy.map(|policy| ResourcePolicy {
                policy,
                owner_account: owner,
            }),
        );
        let Some(owner) = foreign else {
            return verdict;
        };
        // Built only for the answers that explain themselves with it.
        let cross = || {
            format!(
                "cross-account request: {resource} belongs to account {owner}, not the caller's account {}",
                caller.account
            )
        };
        match (verdict.decision, resource_policy) {
            (Decision::ExplicitDeny, _) => verdict,
            (_, None) => Verdict {
                decision: Decision::ImplicitDeny,
                deciding: None,
                reason: format!(
                    "{}, and no resource-based policy was supplied to allow it",
                    cross()
                ),
            },
            (Decision::ImplicitDeny, Some(_)) => Verdict {
                reason: format!("{}: {}", cross(), verdict.reason),
                ..verdict
            },
            (Decision::Allowed, Some(_)) => verdict,
        }
    }

    fn evaluate(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        context: &crate::policy::ContextKeys,
        resource_policy: Option<ResourcePolicy<'_>>,
    ) -> Verdict {
        use crate::policy::Decision;
        let (identity, session) = self.refs();
        let set = PolicySet {
            identity: &identity,
            boundary: self.boundary.as_deref(),
            session: &session,
            resource: resource_policy,
        };
        let request = Request {
            principal: PrincipalRef::Aws {
                arn: &caller.arn,
                account: &caller.account,
            },
            action,
            resource,
            context,
        };
        let evaluation = crate::policy::evaluate(&set, &request);
        let reason = match (&evaluation.deciding, evaluation.implicit_deny) {
            (Some(_), _) if evaluation.decision == Decision::Allowed => {
                "allowed by the deciding statement".to_owned()
            }
            (Some(_), _) => format!("explicitly denied: {action} on {resource}"),
            (None, Some(reason)) => reason.to_string(),
            (None, None) => "no statement allows the action".to_owned(),
        };
        Verdict {
            decision: evaluation.decision,
            deciding: evaluation
                .deciding
                .map(|d| (d.source, d.statement_index, d.sid.map(str::to_owned))),
            reason,
        }
    }

    /// Borrowed views in the shape `PolicySet` wants: (identity, session).
    pub fn refs(&self) -> (Vec<&Policy>, Vec<&Policy>) {
        (
            self.identity.iter().map(Arc::as_ref).collect(),
            self.session.iter().map(Arc::as_ref).collect(),
        )
    }
}
