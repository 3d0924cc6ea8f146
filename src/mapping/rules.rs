//! The mapping rules as users write them: the JSON of the admin API, the export
//! document and `content_hash`. These types only carry the wire shape; every
//! check (ids, sources, operators, regexes, templates, limits) happens in
//! [`super::compile`], which reports each problem with a JSON pointer.
//!
//! ```json
//! {"id": "r-devs", "name": "Developers", "effect": "grant", "source": ["directory"],
//!  "priority": 100, "enabled": true,
//!  "when": {"claim": "groups", "op": "contains_any", "values": ["developers"]},
//!  "grant": [{"account": "123456789012", "role": "Developer"}]}
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One mapping rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// 1–64 characters of `[A-Za-z0-9_.-]`, unique in the ruleset.
    pub id: String,
    pub name: String,
    pub effect: Effect,
    /// The identity sources the rule applies to. Required: a missing or empty
    /// list reads as empty here and is refused by the compiler (SOURCE_REQUIRED).
    #[serde(default)]
    pub source: Sources,
    /// Evaluation order and, between session settings, the winner: lowest first.
    #[serde(default = "default_priority")]
    pub priority: i32,
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Absent: the rule always matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<ForEach>,
    /// Grant rules: what they grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant: Vec<GrantTemplate>,
    /// Deny rules (required) and session rules (optional): which entitlements the
    /// rule applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Session rules (required) and grant rules (optional, for their own grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<Validity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The default rule priority.
pub const DEFAULT_PRIORITY: i32 = 100;

fn default_priority() -> i32 {
    DEFAULT_PRIORITY
}

fn default_enabled() -> bool {
    true
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Adds entitlements.
    Grant,
    /// Removes matching entitlements, whatever the priorities.
    Deny,
    /// Sets session settings only.
    Session,
}

/// The identity sources a rule is scoped to: a list of source ids, or `"any"`
/// (written `"any"` or `["any"]`; deny rules only). A single string other than
/// `"any"` reads as a one-element list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sources {
    Any,
    Ids(Vec<String>),
}

impl Default for Sources {
    fn default() -> Self {
        Self::Ids(Vec::new())
    }
}

impl Sources {
    /// Whether the rule applies to identities from `source`.
    pub fn includes(&self, source: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Ids(ids) => ids.iter().any(|id| id == source),
        }
    }
}

impl Serialize for Sources {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Any => serializer.serialize_str(ANY),
            Self::Ids(ids) => ids.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Sources {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            One(String),
            Many(Vec<String>),
        }
        let ids = match Wire::deserialize(deserializer).map_err(|_| {
            D::Error::custom("source must be a source id, a list of them, or \"any\"")
        })? {
            Wire::One(id) => vec![id],
            Wire::Many(ids) => ids,
        };
        Ok(match ids.as_slice() {
            [only] if only == ANY => Self::Any,
            _ => Self::Ids(ids),
        })
    }
}

const ANY: &str = "any";
const ALL: &str = "*";

/// A condition tree: `{"all": [...]}`, `{"any": [...]}`, `{"not": {...}}` or a leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Condition {
    All { all: Vec<Condition> },
    Any { any: Vec<Condition> },
    Not { not: Box<Condition> },
    Leaf(Leaf),
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::deserialize(deserializer)?;
        for key in ["all", "any", "not"] {
            let Some(inner) = map.remove(key) else {
                continue;
            };
            if let Some(other) = map.keys().next() {
                return Err(D::Error::custom(format!(
                    "a condition with {key:?} may not also have {other:?}"
                )));
            }
            return match key {
                "not" => serde_json::from_value(inner)
                    .map(|c| Self::Not { not: Box::new(c) })
                    .map_err(D::Error::custom),
                _ => {
                    let list: Vec<Condition> =
                        serde_json::from_value(inner).map_err(D::Error::custom)?;
                    Ok(if key == "all" {
                        Self::All { all: list }
                    } else {
                        Self::Any { any: list }
                    })
                }
            };
        }
        serde_json::from_value(serde_json::Value::Object(map))
            .map(Self::Leaf)
            .map_err(D::Error::custom)
    }
}

/// A comparison of one claim: `{"claim": "groups", "op": "contains_any", "values": [..]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leaf {
    pub claim: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// Absent: the identity source's setting (itself `sensitive` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<Case>,
}

/// A comparison. On a multi-valued claim (such as `groups`) an operator holds when
/// any value satisfies it, except `contains_all` (every listed value is present)
/// and `none_of` (no listed value is present; holds when the claim is missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Equals,
    In,
    ContainsAny,
    ContainsAll,
    NoneOf,
    StartsWith,
    EndsWith,
    Glob,
    Regex,
    Exists,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equals => "equals",
            Self::In => "in",
            Self::ContainsAny => "contains_any",
            Self::ContainsAll => "contains_all",
            Self::NoneOf => "none_of",
            Self::StartsWith => "starts_with",
            Self::EndsWith => "ends_with",
            Self::Glob => "glob",
            Self::Regex => "regex",
            Self::Exists => "exists",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    Sensitive,
    Insensitive,
}

/// One grant per value of `claim` that the (anchored) `regex` matches; its named
/// captures are `${match.NAME}` in the rule's grants and session templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForEach {
    pub claim: String,
    pub regex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<Case>,
}

/// `{"account": ID | "*" | "${match.x}", "role": NAME | "${match.x}"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantTemplate {
    pub account: String,
    pub role: String,
}

/// The entitlements a deny or session rule applies to. A missing field means `"*"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub accounts: Selector,
    #[serde(default)]
    pub roles: Selector,
}

/// `"*"` or a list of names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Selector {
    #[default]
    All,
    Only(Vec<String>),
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::All => serializer.serialize_str(ALL),
            Self::Only(names) => names.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            One(String),
            Many(Vec<String>),
        }
        match Wire::deserialize(deserializer)
            .map_err(|_| D::Error::custom("expected \"*\" or a list of names"))?
        {
            Wire::One(star) if star == ALL => Ok(Self::All),
            Wire::One(other) => Err(D::Error::custom(format!(
                "expected \"*\" or a list of names, found {other:?}"
            ))),
            Wire::Many(names) => Ok(Self::Only(names)),
        }
    }
}

/// Session settings; every string is a template (`${claims.email|lower}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// Session tag key (literal) → value template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_seconds: Option<i64>,
}

/// A time box: the rule applies from `not_before` (inclusive) until `not_after`
/// (inclusive), both RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_issue_example_reads_and_round_trips() {
        let text = json!({"id": "r-devs", "name": "Developers", "effect": "grant", "source": ["directory"],
            "priority": 100, "enabled": true,
            "when": {"claim": "groups", "op": "contains_any", "values": ["developers"]},
            "grant": [{"account": "123456789012", "role": "Developer"}]});
        let rule: Rule = serde_json::from_value(text.clone()).unwrap();
        assert_eq!(rule.effect, Effect::Grant);
        assert_eq!(rule.source, Sources::Ids(vec!["directory".into()]));
        assert!(matches!(&rule.when, Some(Condition::Leaf(l)) if l.op == Op::ContainsAny));
        assert_eq!(serde_json::to_value(&rule).unwrap(), text);
    }

    #[test]
    fn defaults_any_sources_trees_and_unknown_fields() {
        let rule: Rule = serde_json::from_value(json!({"id": "d", "name": "", "effect": "deny",
            "source": "any", "target": {"roles": ["Admin"]},
            "when": {"all": [{"not": {"claim": "email", "op": "exists"}},
                             {"any": [{"claim": "groups", "op": "equals", "value": "x"}]}]}}))
        .unwrap();
        assert_eq!((rule.priority, rule.enabled), (DEFAULT_PRIORITY, true));
        assert_eq!(rule.source, Sources::Any);
        assert_eq!(rule.target.as_ref().unwrap().accounts, Selector::All);
        assert!(matches!(&rule.when, Some(Condition::All { all }) if all.len() == 2));

        let listed: Sources = serde_json::from_value(json!(["any"])).unwrap();
        assert_eq!(listed, Sources::Any);
        let missing: Rule =
            serde_json::from_value(json!({"id": "g", "name": "", "effect": "grant"})).unwrap();
        assert_eq!(missing.source, Sources::Ids(vec![]));

        let unknown = serde_json::from_value::<Rule>(
            json!({"id": "g", "name": "", "effect": "grant", "colour": "red"}),
        );
        assert!(unknown.is_err());
        let mixed = serde_json::from_value::<Condition>(
            json!({"all": [], "claim": "groups", "op": "exists"}),
        );
        assert!(mixed.is_err());
        let bad_leaf =
            serde_json::from_value::<Condition>(json!({"claim": "groups", "op": "matches"}));
        assert!(bad_leaf.is_err());
    }
}
