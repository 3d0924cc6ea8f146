//! `rolegate policy validate` and `rolegate policy simulate`: the policy engine offline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::policy::{
    ContextKeys, Decision, Evaluation, ParseOptions, Policy, PolicyKind, PolicySet, PolicySource,
    PrincipalRef, Request, ResourcePolicy,
};

/// Validates each file; returns the report lines (one per invalid file) and whether
/// every file was valid.
pub fn validate(files: &[PathBuf], kind: PolicyKind, customer: bool) -> (Vec<String>, bool) {
    let options = ParseOptions {
        kind,
        enforce_customer_size_limit: customer,
    };
    let mut invalid = Vec::new();
    for file in files {
        let outcome = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read file: {e}"))
            .and_then(|text| {
                Policy::parse(&text, options)
                    .map(|_| ())
                    .map_err(|e| format!("{}: {e}", e.code()))
            });
        if let Err(reason) = outcome {
            invalid.push(format!("{}: {reason}", file.display()));
        }
    }
    let all_valid = invalid.is_empty();
    (invalid, all_valid)
}

/// What `rolegate policy simulate` was asked.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub policies: Vec<PathBuf>,
    pub boundary: Option<PathBuf>,
    pub session_policies: Vec<PathBuf>,
    pub resource_policy: Option<PathBuf>,
    pub resource_owner: Option<String>,
    pub principal: String,
    pub action: String,
    pub resource: String,
    /// `key=value` pairs; a repeated key makes a multi-valued context key.
    pub context: Vec<String>,
}

fn load(path: &Path, kind: PolicyKind) -> Result<Policy, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read file: {e}", path.display()))?;
    Policy::parse(
        &text,
        ParseOptions {
            kind,
            enforce_customer_size_limit: false,
        },
    )
    .map_err(|e| format!("{}: {}: {e}", path.display(), e.code()))
}

/// Account id of an ARN (its fifth field), or "" when it has none.
fn arn_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

/// Runs the simulation; returns the text to print: the decision on the first line,
/// then what decided it.
pub fn simulate(sim: &Simulation) -> Result<String, String> {
    let identity = sim
        .policies
        .iter()
        .map(|p| load(p, PolicyKind::Identity))
        .collect::<Result<Vec<_>, _>>()?;
    let boundary = sim
        .boundary
        .as_deref()
        .map(|p| load(p, PolicyKind::Identity))
        .transpose()?;
    let session = sim
        .session_policies
        .iter()
        .map(|p| load(p, PolicyKind::Session))
        .collect::<Result<Vec<_>, _>>()?;
    let resource = sim
        .resource_policy
        .as_deref()
        .map(|p| load(p, PolicyKind::Resource))
        .transpose()?;

    let mut context = ContextKeys::new();
    for pair in &sim.context {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--context {pair:?} must look like key=value"))?;
        if key.is_empty() {
            return Err(format!("--context {pair:?} has an empty key"));
        }
        context.insert(key, value);
    }

    let principal_account = arn_account(&sim.principal);
    let owner = sim.resource_owner.as_deref().unwrap_or(principal_account);
    let identity_refs: Vec<&Policy> = identity.iter().collect();
    let session_refs: Vec<&Policy> = session.iter().collect();
    let set = PolicySet {
        identity: &identity_refs,
        boundary: boundary.as_ref(),
        session: &session_refs,
        resource: resource.as_ref().map(|policy| ResourcePolicy {
            policy,
            owner_account: owner,
        }),
    };
    let request = Request {
        principal: PrincipalRef::Aws {
            arn: &sim.principal,
            account: principal_account,
        },
        action: &sim.action,
        resource: &sim.resource,
        context: &context,
    };
    let evaluation = crate::policy::evaluate(&set, &request);
    Ok(explain(&evaluation, sim))
}

fn explain(evaluation: &Evaluation, sim: &Simulation) -> String {
    let mut out = format!("{}\n", evaluation.decision);
    match &evaluation.deciding {
        Some(statement) => {
            let file = match statement.source {
                PolicySource::Identity(i) => sim.policies.get(i).map(|p| p.display().to_string()),
                PolicySource::Boundary => sim.boundary.as_ref().map(|p| p.display().to_string()),
                PolicySource::Session(i) => {
                    sim.session_policies.get(i).map(|p| p.display().to_string())
                }
                PolicySource::Resource => sim
                    .resource_policy
                    .as_ref()
                    .map(|p| p.display().to_string()),
            }
            .unwrap_or_default();
            let _ = write!(
                out,
                "decided by statement {} of {file}",
                statement.statement_index + 1
            );
            if let Some(sid) = &statement.sid {
                let _ = write!(out, " (Sid {sid:?})");
            }
            out.push('\n');
        }
        None if evaluation.decision == Decision::ImplicitDeny => {
            out.push_str("no statement allows this request\n");
        }
        None => {}
    }
    out
}
