//! What the rules see of a signed-in person: every claim as a list of strings,
//! after the identity source's hygiene settings (`[identity_sources.mapping]`).
//!
//! Groups: taken from the configured claim, split on the delimiter, Unicode NFC,
//! trimmed, GUID-looking values lower-cased, kept only when they carry the prefix,
//! de-duplicated (first spelling kept), and capped: more than `max_groups` refuses
//! the sign-in (GROUPS_LIMIT_EXCEEDED) rather than dropping any silently. Every
//! other claim value is NFC-normalised and trimmed; empty values are dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::{IsNormalized, is_nfc_quick};

use crate::idp::identity::Identity;

/// The claim the rules call `groups`, whatever the source names it.
pub const GROUPS: &str = "groups";

/// Per-source claim settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimsHygiene {
    /// The claim holding the groups (for `from_json`, and for `from_identity` when
    /// it is not `groups`: then the identity's claim of that name, falling back to
    /// its groups when the claim is absent).
    pub groups_claim: String,
    /// A delimiter splitting each groups value (`"a,b"` → `a`, `b`).
    pub split: Option<String>,
    /// Only groups starting with this prefix are kept (kept whole).
    pub prefix: Option<String>,
    /// Lower-case GUID-looking groups (Entra object ids).
    pub lowercase_guids: bool,
    /// More groups than this (after the steps above) refuses the sign-in.
    pub max_groups: usize,
    /// The default of every condition's `case`.
    pub case_sensitive: bool,
}

/// The default cap on groups.
pub const DEFAULT_MAX_GROUPS: usize = 5_000;

impl Default for ClaimsHygiene {
    fn default() -> Self {
        Self {
            groups_claim: GROUPS.to_owned(),
            split: None,
            prefix: None,
            lowercase_guids: true,
            max_groups: DEFAULT_MAX_GROUPS,
            case_sensitive: true,
        }
    }
}

impl ClaimsHygiene {
    /// The most groups a source may allow.
    pub const MAX_GROUPS_LIMIT: usize = 100_000;

    /// Refuses settings that cannot work: an empty groups claim or delimiter, a cap
    /// of zero or above [`Self::MAX_GROUPS_LIMIT`].
    pub fn check(&self) -> Result<(), String> {
        if self.groups_claim.trim().is_empty() {
            return Err("groups_claim is empty".into());
        }
        if self.split.as_deref().is_some_and(str::is_empty) {
            return Err("split is empty (leave it out to keep values whole)".into());
        }
        if !(1..=Self::MAX_GROUPS_LIMIT).contains(&self.max_groups) {
            return Err(format!(
                "max_groups must be 1 to {}",
                Self::MAX_GROUPS_LIMIT
            ));
        }
        Ok(())
    }
}

/// The claims the rules are evaluated against.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SourceClaims {
    /// The identity source id the claims come from.
    pub source: String,
    pub values: BTreeMap<String, Vec<String>>,
    /// The default of every condition's `case`.
    pub case_sensitive: bool,
}

/// Claims the engine refuses to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ClaimsError {
    pub code: &'static str,
    pub message: String,
}

impl SourceClaims {
    /// The claims of a signed-in identity: `groups`, `email`, `user_name`,
    /// `subject`, `display_name` (each when non-empty) and the identity's other
    /// claims (strings, numbers, booleans and arrays of those; the named fields
    /// win over claims of the same name).
    pub fn from_identity(
        identity: &Identity,
        hygiene: &ClaimsHygiene,
    ) -> Result<SourceClaims, ClaimsError> {
        let mut values = BTreeMap::new();
        for (name, value) in &identity.claims {
            if name == GROUPS || *name == hygiene.groups_claim {
                continue;
            }
            insert(&mut values, name, json_strings(value));
        }
        let groups_raw = match identity.claims.get(&hygiene.groups_claim) {
            Some(value) if hygiene.groups_claim != GROUPS => json_strings(value),
            _ => identity.groups.clone(),
        };
        let named = [
            ("email", identity.email.clone().unwrap_or_default()),
            ("user_name", identity.user_name.clone()),
            ("subject", identity.subject.clone()),
            ("display_name", identity.display_name.clone()),
        ];
        for (name, value) in named {
            values.remove(name);
            insert(&mut values, name, vec![value]);
        }
        values.insert(GROUPS.to_owned(), groups(groups_raw, hygiene)?);
        Ok(Self {
            source: identity.source_id.clone(),
            values,
            case_sensitive: hygiene.case_sensitive,
        })
    }

    /// Claims given as JSON (the rule test tool): the groups from
    /// `hygiene.groups_claim`, every other claim as in [`Self::from_identity`].
    pub fn from_json(
        source: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
        hygiene: &ClaimsHygiene,
    ) -> Result<SourceClaims, ClaimsError> {
        let mut values = BTreeMap::new();
        for (name, value) in claims {
            if name == GROUPS || *name == hygiene.groups_claim {
                continue;
            }
            insert(&mut values, name, json_strings(value));
        }
        let raw = claims
            .get(&hygiene.groups_claim)
            .map(json_strings)
            .unwrap_or_default();
        values.insert(GROUPS.to_owned(), groups(raw, hygiene)?);
        Ok(Self {
            source: source.to_owned(),
            values,
            case_sensitive: hygiene.case_sensitive,
        })
    }

    /// The values of `claim` (empty when absent).
    pub fn get(&self, claim: &str) -> &[String] {
        self.values.get(claim).map_or(&[], Vec::as_slice)
    }
}

fn insert(values: &mut BTreeMap<String, Vec<String>>, name: &str, raw: Vec<String>) {
    let cleaned: Vec<String> = raw
        .into_iter()
        .map(|v| normalise(&v))
        .filter(|v| !v.is_empty())
        .collect();
    if !cleaned.is_empty() {
        values.insert(name.to_owned(), cleaned);
    }
}

/// Strings, numbers and booleans, alone or in an array; anything else is ignored.
fn json_strings(value: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    fn scalar(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Array(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// NFC, then trimmed.
fn normalise(value: &str) -> String {
    if is_nfc_quick(value.chars()) == IsNormalized::Yes {
        value.trim().to_owned()
    } else {
        value.nfc().collect::<String>().trim().to_owned()
    }
}

fn groups(raw: Vec<String>, hygiene: &ClaimsHygiene) -> Result<Vec<String>, ClaimsError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let split = hygiene.split.as_deref().filter(|d| !d.is_empty());
    for value in &raw {
        let parts: Vec<&str> = match split {
            Some(delimiter) => value.split(delimiter).collect(),
            None => vec![value.as_str()],
        };
        for part in parts {
            let mut group = normalise(part);
            if group.is_empty() {
                continue;
            }
            if hygiene.lowercase_guids && is_guid(&group) {
                group.make_ascii_lowercase();
            }
            if let Some(prefix) = &hygiene.prefix
                && !group.starts_with(prefix.as_str())
            {
                continue;
            }
            if seen.insert(group.clone()) {
                out.push(group);
                if out.len() > hygiene.max_groups {
                    return Err(ClaimsError {
                        code: "GROUPS_LIMIT_EXCEEDED",
                        message: format!(
                            "the identity has more than {} groups; the sign-in is refused rather than evaluated on a partial list",
                            hygiene.max_groups
                        ),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hex digits.
fn is_guid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from(
        claims: serde_json::Value,
        hygiene: &ClaimsHygiene,
    ) -> Result<SourceClaims, ClaimsError> {
        let serde_json::Value::Object(map) = claims else {
            panic!("object expected")
        };
        SourceClaims::from_json("corp", &map, hygiene)
    }

    #[test]
    fn groups_are_split_trimmed_normalised_and_deduplicated() {
        let hygiene = ClaimsHygiene {
            split: Some(",".into()),
            ..ClaimsHygiene::default()
        };
        let claims = from(
            json!({"groups": [" admins , devs", "3F2A9C1E-5B7D-4E8F-9A0B-1C2D3E4F5A6B", "devs", "Cafe\u{301}", ""]}),
            &hygiene,
        )
        .unwrap();
        assert_eq!(
            claims.get("groups"),
            [
                "admins",
                "devs",
                "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
                "Caf\u{e9}"
            ]
        );
        assert_eq!(claims.source, "corp");
        assert!(claims.case_sensitive);

        let keep_case = ClaimsHygiene {
            lowercase_guids: false,
            ..ClaimsHygiene::default()
        };
        let claims = from(
            json!({"groups": "3F2A9C1E-5B7D-4E8F-9A0B-1C2D3E4F5A6B"}),
            &keep_case,
        )
        .unwrap();
        assert_eq!(
            claims.get("groups"),
            ["3F2A9C1E-5B7D-4E8F-9A0B-1C2D3E4F5A6B"]
        );
    }

    #[test]
    fn prefix_filter_and_groups_claim_name() {
        let hygiene = ClaimsHygiene {
            groups_claim: "roles".into(),
            prefix: Some("aws-".into()),
            ..ClaimsHygiene::default()
        };
        let claims = from(
            json!({"roles": ["aws-dev", "staff", "aws-ops"], "groups": ["ignored"], "email": " a@example.com "}),
            &hygiene,
        )
        .unwrap();
        assert_eq!(claims.get("groups"), ["aws-dev", "aws-ops"]);
        assert_eq!(claims.get("email"), ["a@example.com"]);
        assert!(claims.get("roles").is_empty());
    }

    #[test]
    fn more_groups_than_the_cap_refuse_the_sign_in() {
        let many: Vec<String> = (0..5_001).map(|i| format!("g{i}")).collect();
        let err = from(json!({"groups": many}), &ClaimsHygiene::default()).unwrap_err();
        assert_eq!(err.code, "GROUPS_LIMIT_EXCEEDED");
        let exactly: Vec<String> = (0..5_000).map(|i| format!("g{i}")).collect();
        let ok = from(json!({"groups": exactly}), &ClaimsHygiene::default()).unwrap();
        assert_eq!(ok.get("groups").len(), 5_000);
        let small_cap = ClaimsHygiene {
            max_groups: 2,
            ..ClaimsHygiene::default()
        };
        assert!(from(json!({"groups": ["a", "b", "c"]}), &small_cap).is_err());
        // Duplicates do not count twice.
        assert!(from(json!({"groups": ["a", "b", "a", " b"]}), &small_cap).is_ok());
    }

    #[test]
    fn identities_give_named_fields_and_scalar_claims() {
        let identity = Identity {
            source_id: "directory".into(),
            subject: "u-1".into(),
            user_name: "bob".into(),
            display_name: "Bob B".into(),
            email: Some("Bob@Example.com".into()),
            groups: vec!["devs".into(), " ops ".into()],
            attributes: Default::default(),
            claims: [
                ("department".to_owned(), json!("eng")),
                ("level".to_owned(), json!(3)),
                ("amr".to_owned(), json!(["pwd", "mfa"])),
                ("address".to_owned(), json!({"city": "x"})),
                ("email".to_owned(), json!("spoofed@example.com")),
            ]
            .into_iter()
            .collect(),
        };
        let hygiene = ClaimsHygiene {
            case_sensitive: false,
            ..ClaimsHygiene::default()
        };
        let claims = SourceClaims::from_identity(&identity, &hygiene).unwrap();
        assert_eq!(claims.source, "directory");
        assert!(!claims.case_sensitive);
        assert_eq!(claims.get("groups"), ["devs", "ops"]);
        assert_eq!(claims.get("email"), ["Bob@Example.com"]);
        assert_eq!(claims.get("user_name"), ["bob"]);
        assert_eq!(claims.get("subject"), ["u-1"]);
        assert_eq!(claims.get("level"), ["3"]);
        assert_eq!(claims.get("amr"), ["pwd", "mfa"]);
        assert!(claims.get("address").is_empty());
    }

    #[test]
    fn hygiene_reads_from_config_with_defaults() {
        let hygiene: ClaimsHygiene = serde_json::from_value(json!({"split": ";"})).unwrap();
        assert_eq!(hygiene.split.as_deref(), Some(";"));
        assert_eq!(hygiene.max_groups, DEFAULT_MAX_GROUPS);
        assert!(hygiene.case_sensitive && hygiene.lowercase_guids);
        assert_eq!(hygiene.groups_claim, GROUPS);
    }
}
