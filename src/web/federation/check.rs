//! The console's "can I?": an action and a resource (with optional context lines and
//! a resource owner's policy) evaluated against the console session's policies by
//! the same decision function `/v1/authorize` uses, with the deciding statement shown.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::policy::PolicySource;
use crate::service::console::PolicyDocuments;
use crate::sts::assume::{Caller, is_reserved_context_key};
use crate::sts::policies::CallerPolicies;

/// The longest action or resource accepted (the context may be eight times longer).
pub(super) const MAX_CHECK_FIELD: usize = 2_048;
const MAX_CONTEXT_LINES: usize = 50;

pub(super) struct CheckResult {
    pub(super) decision: &'static str,
    pub(super) reason: String,
    /// The deciding statement: where it is, and its JSON.
    pub(super) source: Option<String>,
    pub(super) statement: Option<String>,
    pub(super) error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CheckForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) action: String,
    #[serde(default)]
    pub(super) resource: String,
    #[serde(default)]
    pub(super) context: String,
    /// Optional resource-based policy of the resource's owner (JSON).
    #[serde(default)]
    pub(super) resource_policy: String,
}

/// `key=value` lines; a key given on several lines is multi-valued.
fn parse_context(text: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut context: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > MAX_CONTEXT_LINES {
        return Err(format!("At most {MAX_CONTEXT_LINES} context lines."));
    }
    for line in lines {
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("Context line \"{line}\" is not key=value."));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("Context line \"{line}\" has no key."));
        }
        if is_reserved_context_key(key) {
            return Err(format!(
                "{key} is set by Rolegate from the verified session and cannot be supplied."
            ));
        }
        context
            .entry(key.to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    Ok(context)
}

/// Evaluates an action and resource against the session's policies exactly as
/// `/v1/authorize` does (the same decision function): identity policies,
/// permissions boundary, session policies, and the account boundary: a
/// resource in another account (its ARN's account, or `aws:ResourceAccount`
/// in the context) is an implicit deny, as `/v1/authorize` answers without a
/// resource policy.
pub(super) fn check(
    caller: &Caller,
    policies: &CallerPolicies,
    documents: &PolicyDocuments,
    form: &CheckForm,
    now: i64,
) -> CheckResult {
    let failed = |message: String| CheckResult {
        decision: "Error",
        reason: String::new(),
        source: None,
        statement: None,
        error: Some(message),
    };
    let (action, resource) = (form.action.trim(), form.resource.trim());
    if action.is_empty() || resource.is_empty() {
        return failed("Enter an action (e.g. s3:GetObject) and a resource ARN (or *).".into());
    }
    if action.len() > MAX_CHECK_FIELD
        || resource.len() > MAX_CHECK_FIELD
        || form.context.len() > 8 * MAX_CHECK_FIELD
    {
        return failed("The action, resource or context is too long.".into());
    }
    let extra = match parse_context(&form.context) {
        Ok(extra) => extra,
        Err(message) => return failed(message),
    };
    let resource_policy = match crate::policy::parse_supplied_resource_policy(&form.resource_policy)
    {
        Ok(policy) => policy,
        Err(error) => return failed(format!("The resource policy is not valid: {error}")),
    };
    let context = caller.context_with(now, extra.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
    let verdict = policies.authorize(caller, action, resource, &context, resource_policy.as_ref());
    let reason = if verdict.is_allowed() {
        "allowed by the statement below".to_owned()
    } else {
        verdict.reason.clone()
    };
    let (source, statement) = match verdict.deciding {
        Some((PolicySource::Resource, statement_index, sid)) => {
            let sid = sid.map(|s| format!(" (Sid {s})")).unwrap_or_default();
            (
                Some(format!(
                    "statement {} of the resource policy{sid}",
                    statement_index + 1
                )),
                statement_json(form.resource_policy.trim(), statement_index),
            )
        }
        Some((deciding_source, statement_index, sid)) => {
            let document = documents.get(deciding_source);
            let name =
                document.map_or_else(|| deciding_source.to_string(), |(name, _)| name.clone());
            let sid = sid.map(|s| format!(" (Sid {s})")).unwrap_or_default();
            (
                Some(format!("statement {} of {name}{sid}", statement_index + 1)),
                document.and_then(|(_, doc)| statement_json(doc, statement_index)),
            )
        }
        None => (None, None),
    };
    CheckResult {
        decision: verdict.decision.as_str(),
        reason,
        source,
        statement,
        error: None,
    }
}

/// The JSON of statement `index` of a policy document.
fn statement_json(document: &str, index: usize) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(document).ok()?;
    let statement = match value.get("Statement")? {
        serde_json::Value::Array(list) => list.get(index)?.clone(),
        single if index == 0 => single.clone(),
        _ => return None,
    };
    serde_json::to_string_pretty(&statement).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_lines() {
        let parsed =
            parse_context("aws:RequestedRegion = eu-west-1\n\ns3:prefix=a/\ns3:prefix=b/").unwrap();
        assert_eq!(parsed["aws:RequestedRegion"], vec!["eu-west-1"]);
        assert_eq!(parsed["s3:prefix"], vec!["a/", "b/"]);
        assert!(parse_context("no equals sign").is_err());
        assert!(parse_context("aws:PrincipalTag/team=x").is_err());
        assert!(parse_context("aws:username=root").is_err());
    }

    #[test]
    fn statements_by_index() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow"},{"Sid":"B","Effect":"Deny"}]}"#;
        assert!(statement_json(doc, 1).unwrap().contains("\"B\""));
        assert!(statement_json(doc, 2).is_none());
        let single = r#"{"Statement":{"Sid":"S","Effect":"Allow"}}"#;
        assert!(statement_json(single, 0).unwrap().contains("\"S\""));
    }
}
