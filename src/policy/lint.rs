//! Warnings about a valid policy: what IAM accepts but an author most likely did
//! not mean. Advice only; nothing is refused for them.

use serde::Serialize;
use serde_json::Value;

use super::document::{Policy, PolicyVersion};
use super::locate::position_of;

/// One warning, with the element it is about and where that starts in the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// `NO_VERSION`, `FULL_ACCESS` or `ALLOW_NOT_ACTION`.
    pub code: &'static str,
    pub message: String,
    pub pointer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// The warnings about `policy`, in document order.
pub fn warnings(policy: &Policy) -> Vec<Warning> {
    let text = policy.source_json();
    let mut found = Vec::new();
    if policy.version() != PolicyVersion::V2012_10_17 {
        found.push((
            "NO_VERSION",
            "The policy is not \"Version\": \"2012-10-17\", so policy variables such as ${aws:username} are taken as literal text.".to_owned(),
            if policy.version() == PolicyVersion::Unspecified { "" } else { "/Version" }.to_owned(),
        ));
    }
    let document: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let statements: Vec<(String, &Value)> = match document.get("Statement") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("/Statement/{i}"), v))
            .collect(),
        Some(single) => vec![("/Statement".to_owned(), single)],
        None => Vec::new(),
    };
    for (pointer, statement) in statements {
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let every = |element: &str| match statement.get(element) {
            Some(Value::String(s)) => s == "*" || s == "*:*",
            Some(Value::Array(items)) => items
                .iter()
                .any(|i| i.as_str().is_some_and(|s| s == "*" || s == "*:*")),
            _ => false,
        };
        if every("Action") && every("Resource") {
            found.push((
                "FULL_ACCESS",
                "This statement allows every action on every resource.".to_owned(),
                pointer.clone(),
            ));
        }
        if statement.get("NotAction").is_some() {
            found.push((
                "ALLOW_NOT_ACTION",
                "Allow with NotAction allows every action not listed, including actions added later.".to_owned(),
                format!("{pointer}/NotAction"),
            ));
        }
    }
    found
        .into_iter()
        .map(|(code, message, pointer)| {
            let position = position_of(text, &pointer);
            Warning {
                code,
                message,
                line: position.map(|p| p.0),
                column: position.map(|p| p.1),
                pointer,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ParseOptions, PolicyKind};

    #[test]
    fn full_access_and_missing_version_are_warned_about() {
        let text =
            "{\"Statement\": [\n {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}]}";
        let policy = Policy::parse(text, ParseOptions::new(PolicyKind::Identity)).unwrap();
        let codes: Vec<_> = warnings(&policy)
            .iter()
            .map(|w| (w.code, w.pointer.clone(), w.line))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("NO_VERSION", String::new(), Some(1)),
                ("FULL_ACCESS", "/Statement/0".to_owned(), Some(2)),
            ]
        );
    }
}
