//! Checks a rule list and compiles it once per ruleset version: conditions become
//! hash lookups and per-claim regex sets, templates are parsed, rules are ordered
//! by (priority, id). Every problem is reported, each with a code and a JSON
//! pointer into the submitted list (`/0/grant/0/role`).

use std::collections::{HashMap, HashSet};

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::catalog::Catalog;
use super::rules::{Case, Condition, Effect, Leaf, Op, Rule, Selector, Sources, Validity};
use super::template::{Namespace, Template};
use crate::iam::{AccountId, RoleName, Tag};

/// The longest regex pattern, in bytes.
pub const MAX_REGEX_BYTES: usize = 1024;
/// The largest compiled regex (the `regex` crate's size limit), in bytes. Unicode
/// classes under bounded repetition are what costs: the issue's example
/// `[\w+=,.@-]{1,64}` compiles to about 3.2 MB, `\w{200}` to about 10 MB.
pub const REGEX_SIZE_LIMIT: usize = 4 << 20;
/// The largest compiled regex set; a claim's patterns that do not fit in one set
/// are split over several.
const REGEX_SET_SIZE_LIMIT: usize = 32 << 20;
/// The deepest condition tree (a lone leaf is depth 1).
pub const MAX_CONDITION_DEPTH: usize = 8;
/// The most nodes in one rule's condition tree.
pub const MAX_CONDITION_NODES: usize = 256;
/// The most values one condition leaf may list.
pub const MAX_LEAF_VALUES: usize = 1000;
/// The most rules in a ruleset.
pub const MAX_RULES: usize = 5000;
/// STS: at most 50 session tags.
pub const MAX_SESSION_TAGS: usize = 50;
/// STS: shortest and longest DurationSeconds.
pub const MIN_DURATION_SECONDS: i64 = 900;
pub const MAX_DURATION_SECONDS: i64 = 43_200;

/// A problem with a submitted rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleError {
    pub code: &'static str,
    pub message: String,
    /// A JSON pointer into the submitted rule list, e.g. `/0/grant/0/role`.
    pub pointer: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}: {}", self.code, self.pointer, self.message)
    }
}

/// A rule list ready to evaluate. Compile once per ruleset version and share.
#[derive(Debug, Clone)]
pub struct CompiledRuleset {
    rules: Vec<Rule>,
    /// In evaluation order: (priority, id).
    pub(crate) order: Vec<CompiledRule>,
    pub(crate) leaves: Vec<CompiledLeaf>,
    pub(crate) claims: Vec<ClaimPatterns>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) id: String,
    pub(crate) effect: Effect,
    pub(crate) sources: Sources,
    pub(crate) priority: i32,
    pub(crate) enabled: bool,
    pub(crate) when: Option<Cond>,
    pub(crate) for_each: Option<CompiledForEach>,
    pub(crate) grants: Vec<CompiledGrant>,
    pub(crate) target: Option<CompiledTarget>,
    pub(crate) session: Option<CompiledSession>,
    pub(crate) valid: Option<Validity>,
    /// Whether some comparison could be case-sensitive (a "differs only by case"
    /// near miss is possible).
    pub(crate) case_matters: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Leaf(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledLeaf {
    /// Index into `CompiledRuleset::claims`.
    pub(crate) claim: usize,
    pub(crate) op: Op,
    pub(crate) case: Option<Case>,
    pub(crate) kind: LeafKind,
    /// The values as the rule wrote them.
    pub(crate) values: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum LeafKind {
    Exists,
    /// equals, in, contains_any, contains_all, none_of: `lower` holds the values
    /// lower-cased, in the same order.
    Set {
        lower: Vec<String>,
    },
    /// starts_with, ends_with, glob, regex: one pattern slot per value.
    Pattern {
        slots: Vec<usize>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledForEach {
    pub(crate) claim: usize,
    pub(crate) slot: usize,
    pub(crate) case: Option<Case>,
}

#[derive(Debug, Clone)]
pub(crate) enum AccountRef {
    All,
    Literal(String),
    Template(Template),
}

#[derive(Debug, Clone)]
pub(crate) enum RoleRef {
    Literal(String),
    Template(Template),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledGrant {
    pub(crate) account: AccountRef,
    pub(crate) role: RoleRef,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledTarget {
    /// None: every account.
    pub(crate) accounts: Option<HashSet<String>>,
    /// None: every role; otherwise lower-cased names.
    pub(crate) roles: Option<HashSet<String>>,
}

impl CompiledTarget {
    pub(crate) fn covers(&self, account: &str, role: &str) -> bool {
        self.accounts.as_ref().is_none_or(|a| a.contains(account))
            && self
                .roles
                .as_ref()
                .is_none_or(|r| r.contains(&role.to_ascii_lowercase()))
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledSession {
    pub(crate) name: Option<Template>,
    pub(crate) source_identity: Option<Template>,
    pub(crate) tags: Vec<(String, Template)>,
    pub(crate) transitive_tag_keys: Vec<String>,
    pub(crate) max_duration_seconds: Option<i64>,
}

/// The pattern slots of one claim, compiled in both case modes.
#[derive(Debug, Clone)]
pub(crate) struct ClaimPatterns {
    pub(crate) name: String,
    /// `[sensitive, insensitive]`.
    pub(crate) modes: [PatternIndex; 2],
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PatternIndex {
    pub(crate) regexes: Vec<Regex>,
    /// Sets of slots matched in one pass, each with the slots it holds (set index
    /// → slot).
    pub(crate) sets: Vec<(RegexSet, Vec<usize>)>,
    /// Slots in no set, matched one by one.
    pub(crate) loose: Vec<usize>,
}

impl CompiledRuleset {
    /// Checks and compiles `rules`; every problem is returned.
    pub fn compile(rules: &[Rule]) -> Result<CompiledRuleset, Vec<RuleError>> {
        let mut compiler = Compiler::default();
        if rules.len() > MAX_RULES {
            compiler.error(
                "TOO_MANY_RULES",
                "",
                format!(
                    "{} rules given; a ruleset holds at most {MAX_RULES}",
                    rules.len()
                ),
            );
        }
        let mut ids = HashSet::new();
        let mut order = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            if !ids.insert(rule.id.as_str()) {
                compiler.error(
                    "DUPLICATE_RULE_ID",
                    format!("/{i}/id"),
                    format!("rule id {:?} is used by an earlier rule", rule.id),
                );
            }
            if let Some(compiled) = compiler.rule(i, rule) {
                order.push(compiled);
            }
        }
        if !compiler.errors.is_empty() {
            return Err(compiler.errors);
        }
        order.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
        let claims = compiler.finish_claims();
        Ok(CompiledRuleset {
            rules: rules.to_vec(),
            order,
            leaves: compiler.leaves,
            claims,
        })
    }

    /// The rules as submitted.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The ruleset's content hash (see [`content_hash`]).
    pub fn content_hash(&self) -> String {
        content_hash(&self.rules)
    }
}

/// The hex SHA-256 of the rule list's canonical JSON.
pub fn content_hash(rules: &[Rule]) -> String {
    let bytes = serde_json::to_vec(rules).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// Literal accounts and roles the catalog does not have (UNKNOWN_ACCOUNT,
/// UNKNOWN_ROLE): the save-time check. Templated names are checked at evaluation.
pub fn check_references(rules: &[Rule], catalog: &Catalog) -> Vec<RuleError> {
    let mut errors = Vec::new();
    let mut unknown = |code, pointer: String, message: String| {
        errors.push(RuleError {
            code,
            message,
            pointer,
        });
    };
    for (i, rule) in rules.iter().enumerate() {
        for (j, grant) in rule.grant.iter().enumerate() {
            let account_literal = !grant.account.contains("${") && grant.account != "*";
            let role_literal = !grant.role.contains("${");
            if account_literal && !catalog.has_account(&grant.account) {
                unknown(
                    "UNKNOWN_ACCOUNT",
                    format!("/{i}/grant/{j}/account"),
                    format!("account {} does not exist", grant.account),
                );
                continue;
            }
            if !role_literal {
                continue;
            }
            if grant.account == "*" {
                if !catalog.has_role_anywhere(&grant.role) {
                    unknown(
                        "UNKNOWN_ROLE",
                        format!("/{i}/grant/{j}/role"),
                        format!("no account has a role named {}", grant.role),
                    );
                }
            } else if account_literal && catalog.role(&grant.account, &grant.role).is_none() {
                unknown(
                    "UNKNOWN_ROLE",
                    format!("/{i}/grant/{j}/role"),
                    format!("account {} has no role named {}", grant.account, grant.role),
                );
            }
        }
        if let Some(target) = &rule.target {
            if let Selector::Only(accounts) = &target.accounts {
                for (k, account) in accounts.iter().enumerate() {
                    if !catalog.has_account(account) {
                        unknown(
                            "UNKNOWN_ACCOUNT",
                            format!("/{i}/target/accounts/{k}"),
                            format!("account {account} does not exist"),
                        );
                    }
                }
            }
            if let Selector::Only(roles) = &target.roles {
                for (k, role) in roles.iter().enumerate() {
                    if !catalog.has_role_anywhere(role) {
                        unknown(
                            "UNKNOWN_ROLE",
                            format!("/{i}/target/roles/{k}"),
                            format!("no account has a role named {role}"),
                        );
                    }
                }
            }
        }
    }
    errors
}

/// A pattern of one claim, before the claim's sets are built.
struct PendingPattern {
    pattern: String,
    regexes: [Regex; 2],
}

#[derive(Default)]
struct Compiler {
    errors: Vec<RuleError>,
    leaves: Vec<CompiledLeaf>,
    claim_ids: HashMap<String, usize>,
    claim_patterns: Vec<(String, Vec<PendingPattern>)>,
}

/// Checks that a rule id is 1–64 characters of `[A-Za-z0-9_.-]`.
fn valid_rule_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// STS RoleSessionName and SourceIdentity: `[\w+=,.@-]{2,64}`.
pub(crate) fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
        })
}

/// Escapes one JSON pointer segment.
fn segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Compiler {
    fn error(
        &mut self,
        code: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(RuleError {
            code,
            message: message.into(),
            pointer: pointer.into(),
        });
    }

    fn claim(&mut self, name: &str) -> usize {
        if let Some(id) = self.claim_ids.get(name) {
            return *id;
        }
        let id = self.claim_patterns.len();
        self.claim_patterns.push((name.to_owned(), Vec::new()));
        self.claim_ids.insert(name.to_owned(), id);
        id
    }

    fn rule(&mut self, i: usize, rule: &Rule) -> Option<CompiledRule> {
        let before = self.errors.len();
        let at = |rest: &str| format!("/{i}{rest}");
        if !valid_rule_id(&rule.id) {
            self.error(
                "INVALID_RULE_ID",
                at("/id"),
                format!(
                    "rule id {:?} must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
                    rule.id
                ),
            );
        }
        if rule.name.chars().count() > 256 {
            self.error(
                "INVALID_NAME",
                at("/name"),
                "the name is longer than 256 characters",
            );
        }
        if rule
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2000)
        {
            self.error(
                "INVALID_DESCRIPTION",
                at("/description"),
                "the description is longer than 2000 characters",
            );
        }
        self.sources(i, rule);
        self.effect_fields(i, rule);
        if let Some(Validity {
            not_before: Some(from),
            not_after: Some(until),
        }) = &rule.valid
            && from > until
        {
            self.error(
                "INVALID_VALIDITY",
                at("/valid"),
                "not_before is after not_after: the rule would never apply",
            );
        }

        let when = rule.when.as_ref().and_then(|c| {
            let mut nodes = 0;
            self.condition(c, &at("/when"), 1, &mut nodes)
        });
        let (for_each, captures) = match &rule.for_each {
            Some(fe) => self.for_each(fe, &at("/for_each")),
            None => (None, Vec::new()),
        };
        let has_for_each = rule.for_each.is_some();
        let grants = rule
            .grant
            .iter()
            .enumerate()
            .filter_map(|(j, g)| {
                let account = match g.account.as_str() {
                    "*" => Some(AccountRef::All),
                    a if a.contains("${") => self
                        .template(
                            a,
                            &at(&format!("/grant/{j}/account")),
                            has_for_each,
                            &captures,
                        )
                        .map(AccountRef::Template),
                    a => {
                        if AccountId::parse(a).is_err() {
                            self.error(
                                "INVALID_ACCOUNT",
                                at(&format!("/grant/{j}/account")),
                                format!("account {a:?} must be 12 digits, \"*\" or a template"),
                            );
                        }
                        Some(AccountRef::Literal(a.to_owned()))
                    }
                };
                let role = if g.role.contains("${") {
                    self.template(
                        &g.role,
                        &at(&format!("/grant/{j}/role")),
                        has_for_each,
                        &captures,
                    )
                    .map(RoleRef::Template)
                } else {
                    if let Err(e) = RoleName::parse(g.role.as_str()) {
                        self.error(
                            "INVALID_ROLE",
                            at(&format!("/grant/{j}/role")),
                            e.to_string(),
                        );
                    }
                    Some(RoleRef::Literal(g.role.clone()))
                };
                Some(CompiledGrant {
                    account: account?,
                    role: role?,
                })
            })
            .collect();
        let target = rule.target.as_ref().map(|t| {
            let accounts = match &t.accounts {
                Selector::All => None,
                Selector::Only(list) => {
                    for (k, a) in list.iter().enumerate() {
                        if AccountId::parse(a.as_str()).is_err() {
                            self.error(
                                "INVALID_ACCOUNT",
                                at(&format!("/target/accounts/{k}")),
                                format!("account {a:?} must be 12 digits"),
                            );
                        }
                    }
                    Some(list.iter().cloned().collect())
                }
            };
            let roles = match &t.roles {
                Selector::All => None,
                Selector::Only(list) => {
                    for (k, r) in list.iter().enumerate() {
                        if let Err(e) = RoleName::parse(r.as_str()) {
                            self.error(
                                "INVALID_ROLE",
                                at(&format!("/target/roles/{k}")),
                                e.to_string(),
                            );
                        }
                    }
                    Some(list.iter().map(|r| r.to_ascii_lowercase()).collect())
                }
            };
            CompiledTarget { accounts, roles }
        });
        let session = rule
            .session
            .as_ref()
            .map(|s| self.session(s, &at("/session"), has_for_each, &captures));

        if self.errors.len() > before {
            return None;
        }
        let case_matters = self.case_matters(when.as_ref());
        Some(CompiledRule {
            id: rule.id.clone(),
            effect: rule.effect,
            sources: rule.source.clone(),
            priority: rule.priority,
            enabled: rule.enabled,
            when,
            for_each,
            grants,
            target,
            session,
            valid: rule.valid.clone(),
            case_matters,
        })
    }

    fn case_matters(&self, cond: Option<&Cond>) -> bool {
        match cond {
            None => false,
            Some(Cond::All(c) | Cond::Any(c)) => c.iter().any(|c| self.case_matters(Some(c))),
            Some(Cond::Not(c)) => self.case_matters(Some(c)),
            Some(Cond::Leaf(l)) => self.leaves.get(*l).is_some_and(|leaf| {
                leaf.case != Some(Case::Insensitive) && !matches!(leaf.kind, LeafKind::Exists)
            }),
        }
    }

    fn sources(&mut self, i: usize, rule: &Rule) {
        match &rule.source {
            Sources::Any if rule.effect != Effect::Deny => self.error(
                "SOURCE_ANY_NOT_ALLOWED",
                format!("/{i}/source"),
                "only deny rules may apply to any source; list the source ids",
            ),
            Sources::Any => {}
            Sources::Ids(ids) if ids.is_empty() => self.error(
                "SOURCE_REQUIRED",
                format!("/{i}/source"),
                "a rule must name the identity sources it applies to",
            ),
            Sources::Ids(ids) => {
                for (k, id) in ids.iter().enumerate() {
                    if id == "any" {
                        self.error(
                            "SOURCE_ANY_NOT_ALLOWED",
                            format!("/{i}/source/{k}"),
                            "\"any\" must stand alone, and only in deny rules",
                        );
                    } else if id.trim().is_empty() || id.len() > 128 {
                        self.error(
                            "INVALID_SOURCE",
                            format!("/{i}/source/{k}"),
                            "a source id is 1 to 128 characters",
                        );
                    }
                }
            }
        }
    }

    fn effect_fields(&mut self, i: usize, rule: &Rule) {
        let not_allowed = |field: &str, effect: &str| {
            (
                format!("/{i}/{field}"),
                format!("{effect} rules have no {field}"),
            )
        };
        let mut refuse = Vec::new();
        match rule.effect {
            Effect::Grant => {
                if rule.grant.is_empty() {
                    self.error(
                        "GRANT_REQUIRED",
                        format!("/{i}/grant"),
                        "a grant rule lists at least one grant",
                    );
                }
                if rule.target.is_some() {
                    refuse.push(not_allowed("target", "grant"));
                }
            }
            Effect::Deny => {
                if rule.target.is_none() {
                    self.error(
                        "TARGET_REQUIRED",
                        format!("/{i}/target"),
                        "a deny rule names what it removes: {\"accounts\": [...] | \"*\", \"roles\": [...] | \"*\"}",
                    );
                }
                if !rule.grant.is_empty() {
                    refuse.push(not_allowed("grant", "deny"));
                }
                if rule.session.is_some() {
                    refuse.push(not_allowed("session", "deny"));
                }
                if rule.for_each.is_some() {
                    refuse.push(not_allowed("for_each", "deny"));
                }
            }
            Effect::Session => {
                if rule.session.is_none() {
                    self.error(
                        "SESSION_REQUIRED",
                        format!("/{i}/session"),
                        "a session rule has session settings",
                    );
                }
                if !rule.grant.is_empty() {
                    refuse.push(not_allowed("grant", "session"));
                }
                if rule.for_each.is_some() {
                    refuse.push(not_allowed("for_each", "session"));
                }
            }
        }
        for (pointer, message) in refuse {
            self.error("FIELD_NOT_ALLOWED", pointer, message);
        }
    }

    fn condition(
        &mut self,
        cond: &Condition,
        at: &str,
        depth: usize,
        nodes: &mut usize,
    ) -> Option<Cond> {
        *nodes += 1;
        if *nodes == MAX_CONDITION_NODES + 1 {
            self.error(
                "CONDITION_TOO_LARGE",
                at,
                format!("a rule's conditions hold at most {MAX_CONDITION_NODES} nodes"),
            );
        }
        if *nodes > MAX_CONDITION_NODES {
            return None;
        }
        if depth > MAX_CONDITION_DEPTH {
            self.error(
                "CONDITION_TOO_DEEP",
                at,
                format!("conditions nest at most {MAX_CONDITION_DEPTH} deep"),
            );
            return None;
        }
        let mut list = |this: &mut Self, children: &[Condition], key: &str| {
            if children.is_empty() {
                this.error(
                    "INVALID_CONDITION",
                    format!("{at}/{key}"),
                    format!("\"{key}\" needs at least one condition"),
                );
            }
            let compiled: Vec<Option<Cond>> = children
                .iter()
                .enumerate()
                .map(|(k, c)| this.condition(c, &format!("{at}/{key}/{k}"), depth + 1, nodes))
                .collect();
            compiled.into_iter().collect::<Option<Vec<Cond>>>()
        };
        match cond {
            Condition::All { all } => list(self, all, "all").map(Cond::All),
            Condition::Any { any } => list(self, any, "any").map(Cond::Any),
            Condition::Not { not } => self
                .condition(not, &format!("{at}/not"), depth + 1, nodes)
                .map(|c| Cond::Not(Box::new(c))),
            Condition::Leaf(leaf) => self.leaf(leaf, at).map(Cond::Leaf),
        }
    }

    fn leaf(&mut self, leaf: &Leaf, at: &str) -> Option<usize> {
        if leaf.claim.trim().is_empty() {
            self.error(
                "INVALID_CONDITION",
                format!("{at}/claim"),
                "name the claim to compare",
            );
            return None;
        }
        let op = leaf.op;
        // The values, each with its pointer.
        let values: Vec<(String, String)> = match (op, &leaf.value, &leaf.values) {
            (Op::Exists, None, None) => Vec::new(),
            (Op::Exists, _, _) => {
                self.error("INVALID_CONDITION", at, "exists takes no value");
                return None;
            }
            (_, Some(_), Some(_)) => {
                self.error("INVALID_CONDITION", at, "give value or values, not both");
                return None;
            }
            (Op::Equals, None, Some(_)) => {
                self.error(
                    "INVALID_CONDITION",
                    format!("{at}/values"),
                    "equals takes one value; use in for several",
                );
                return None;
            }
            (_, Some(v), None) => vec![(v.clone(), format!("{at}/value"))],
            (_, None, Some(vs)) if !vs.is_empty() => vs
                .iter()
                .enumerate()
                .map(|(k, v)| (v.clone(), format!("{at}/values/{k}")))
                .collect(),
            (_, None, _) => {
                self.error(
                    "INVALID_CONDITION",
                    at,
                    format!("{} needs a value or a non-empty values list", op.as_str()),
                );
                return None;
            }
        };
        if values.len() > MAX_LEAF_VALUES {
            self.error(
                "CONDITION_TOO_LARGE",
                format!("{at}/values"),
                format!("a condition lists at most {MAX_LEAF_VALUES} values"),
            );
            return None;
        }
        let claim = self.claim(&leaf.claim);
        let kind = match op {
            Op::Exists => LeafKind::Exists,
            Op::Equals | Op::In | Op::ContainsAny | Op::ContainsAll | Op::NoneOf => LeafKind::Set {
                lower: values.iter().map(|(v, _)| v.to_lowercase()).collect(),
            },
            Op::StartsWith | Op::EndsWith | Op::Glob | Op::Regex => {
                let mut slots = Vec::with_capacity(values.len());
                for (value, pointer) in &values {
                    let pattern = match op {
                        Op::StartsWith => format!("{}(?s:.*)", regex::escape(value)),
                        Op::EndsWith => format!("(?s:.*){}", regex::escape(value)),
                        Op::Glob => glob_to_regex(value),
                        _ => value.clone(),
                    };
                    if let Some(slot) = self.pattern(claim, &pattern, value, pointer) {
                        slots.push(slot);
                    }
                }
                if slots.len() != values.len() {
                    return None;
                }
                LeafKind::Pattern { slots }
            }
        };
        self.leaves.push(CompiledLeaf {
            claim,
            op,
            case: leaf.case,
            kind,
            values: values.into_iter().map(|(v, _)| v).collect(),
        });
        Some(self.leaves.len() - 1)
    }

    fn for_each(
        &mut self,
        for_each: &super::rules::ForEach,
        at: &str,
    ) -> (Option<CompiledForEach>, Vec<String>) {
        if for_each.claim.trim().is_empty() {
            self.error(
                "INVALID_FOR_EACH",
                format!("{at}/claim"),
                "name the claim to iterate",
            );
            return (None, Vec::new());
        }
        let claim = self.claim(&for_each.claim);
        let Some(slot) = self.pattern(
            claim,
            &for_each.regex,
            &for_each.regex,
            &format!("{at}/regex"),
        ) else {
            return (None, Vec::new());
        };
        let captures = self
            .claim_patterns
            .get(claim)
            .and_then(|(_, p)| p.get(slot))
            .map(|p| {
                p.regexes[0]
                    .capture_names()
                    .flatten()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        (
            Some(CompiledForEach {
                claim,
                slot,
                case: for_each.case,
            }),
            captures,
        )
    }

    /// Compiles one anchored pattern of `claim` in both case modes; its slot.
    fn pattern(&mut self, claim: usize, pattern: &str, written: &str, at: &str) -> Option<usize> {
        if written.len() > MAX_REGEX_BYTES {
            self.error(
                "REGEX_TOO_LONG",
                at,
                format!(
                    "a pattern is at most {MAX_REGEX_BYTES} bytes; this one is {}",
                    written.len()
                ),
            );
            return None;
        }
        let regexes = match compile_anchored(pattern) {
            Ok(r) => r,
            Err((code, message)) => {
                self.error(code, at, message);
                return None;
            }
        };
        let list = &mut self.claim_patterns.get_mut(claim)?.1;
        list.push(PendingPattern {
            pattern: pattern.to_owned(),
            regexes,
        });
        Some(list.len() - 1)
    }

    fn template(
        &mut self,
        text: &str,
        at: &str,
        has_for_each: bool,
        captures: &[String],
    ) -> Option<Template> {
        let template = match Template::parse(text) {
            Ok(t) => t,
            Err(message) => {
                self.error("INVALID_TEMPLATE", at, message);
                return None;
            }
        };
        let mut ok = true;
        for (namespace, name) in template.variables() {
            if namespace != Namespace::Match {
                continue;
            }
            let message = if !has_for_each {
                format!("${{match.{name}}} needs a for_each regex in the rule")
            } else if !captures.iter().any(|c| c == name) {
                format!("the for_each regex has no capture named {name:?}")
            } else {
                continue;
            };
            self.error("INVALID_TEMPLATE", at, message);
            ok = false;
        }
        ok.then_some(template)
    }

    fn session(
        &mut self,
        session: &super::rules::SessionTemplate,
        at: &str,
        has_for_each: bool,
        captures: &[String],
    ) -> CompiledSession {
        let mut out = CompiledSession::default();
        for (field, text, slot) in [
            ("name", &session.name, &mut out.name),
            (
                "source_identity",
                &session.source_identity,
                &mut out.source_identity,
            ),
        ] {
            let Some(text) = text else { continue };
            let pointer = format!("{at}/{field}");
            let Some(template) = self.template(text, &pointer, has_for_each, captures) else {
                continue;
            };
            if let Some(literal) = template.literal()
                && !valid_session_name(&literal)
            {
                self.error(
                    "INVALID_SESSION_NAME",
                    pointer,
                    format!("{field} {literal:?} must be 2 to 64 characters of letters, digits and _+=,.@-"),
                );
                continue;
            }
            *slot = Some(template);
        }
        if session.tags.len() > MAX_SESSION_TAGS {
            self.error(
                "TOO_MANY_TAGS",
                format!("{at}/tags"),
                format!("at most {MAX_SESSION_TAGS} session tags"),
            );
        }
        let mut seen = HashSet::new();
        for (key, value) in &session.tags {
            let pointer = format!("{at}/tags/{}", segment(key));
            if let Err(e) = Tag::parse(key.as_str(), "") {
                self.error("INVALID_TAG_KEY", pointer, e.to_string());
                continue;
            }
            if !seen.insert(key.to_ascii_lowercase()) {
                self.error(
                    "DUPLICATE_TAG_KEY",
                    pointer,
                    format!("tag key {key:?} differs from another only by case"),
                );
                continue;
            }
            if let Some(template) = self.template(value, &pointer, has_for_each, captures) {
                if let Some(literal) = template.literal()
                    && let Err(e) = Tag::parse(key.as_str(), literal)
                {
                    self.error("INVALID_TAG_VALUE", pointer, e.to_string());
                    continue;
                }
                out.tags.push((key.clone(), template));
            }
        }
        for (k, key) in session.transitive_tag_keys.iter().enumerate() {
            if !session.tags.contains_key(key) {
                self.error(
                    "INVALID_TRANSITIVE_TAG_KEY",
                    format!("{at}/transitive_tag_keys/{k}"),
                    format!("transitive tag key {key:?} is not one of this rule's tags"),
                );
            }
        }
        out.transitive_tag_keys = session.transitive_tag_keys.clone();
        if let Some(seconds) = session.max_duration_seconds {
            if (MIN_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(&seconds) {
                out.max_duration_seconds = Some(seconds);
            } else {
                self.error(
                    "INVALID_DURATION",
                    format!("{at}/max_duration_seconds"),
                    format!(
                        "a session lasts {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS} seconds"
                    ),
                );
            }
        }
        out
    }

    fn finish_claims(&mut self) -> Vec<ClaimPatterns> {
        std::mem::take(&mut self.claim_patterns)
            .into_iter()
            .map(|(name, pending)| {
                let modes = [false, true].map(|insensitive| {
                    let regexes: Vec<Regex> = pending
                        .iter()
                        .map(|p| p.regexes[usize::from(insensitive)].clone())
                        .collect();
                    let slots: Vec<usize> = (0..pending.len()).collect();
                    let mut index = PatternIndex {
                        regexes,
                        ..PatternIndex::default()
                    };
                    build_sets(&pending, &slots, insensitive, &mut index);
                    index
                });
                ClaimPatterns { name, modes }
            })
            .collect()
    }
}

/// Puts `slots` into as few regex sets as fit under the size limit (halving on
/// failure); a slot that fits nowhere with others stays loose.
fn build_sets(
    pending: &[PendingPattern],
    slots: &[usize],
    insensitive: bool,
    index: &mut PatternIndex,
) {
    if slots.len() < 2 {
        index.loose.extend_from_slice(slots);
        return;
    }
    let patterns = slots
        .iter()
        .filter_map(|s| pending.get(*s))
        .map(|p| anchored(&p.pattern));
    match RegexSetBuilder::new(patterns)
        .case_insensitive(insensitive)
        .size_limit(REGEX_SET_SIZE_LIMIT)
        .build()
    {
        Ok(set) => index.sets.push((set, slots.to_vec())),
        Err(_) => {
            let (left, right) = slots.split_at(slots.len() / 2);
            build_sets(pending, left, insensitive, index);
            build_sets(pending, right, insensitive, index);
        }
    }
}

fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// `*` any run of characters, `?` one character, everything else literal.
fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("(?s:");
    let mut literal = String::new();
    for c in glob.chars() {
        match c {
            '*' | '?' => {
                out.push_str(&regex::escape(&literal));
                literal.clear();
                out.push_str(if c == '*' { ".*" } else { "." });
            }
            c => literal.push(c),
        }
    }
    out.push_str(&regex::escape(&literal));
    out.push(')');
    out
}

/// The pattern anchored to the whole value, case-sensitive and insensitive, or the
/// error code and message.
fn compile_anchored(pattern: &str) -> Result<[Regex; 2], (&'static str, String)> {
    // Parsed alone first, so that a pattern such as `a)|(b` cannot escape the
    // anchoring group. A tiny size limit stops right after parsing.
    if let Err(regex::Error::Syntax(message)) = RegexBuilder::new(pattern).size_limit(1).build() {
        return Err(syntax_error(&message));
    }
    let build = |insensitive| {
        RegexBuilder::new(&anchored(pattern))
            .case_insensitive(insensitive)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| match e {
                regex::Error::Syntax(message) => syntax_error(&message),
                regex::Error::CompiledTooBig(limit) => (
                    "REGEX_TOO_COMPLEX",
                    format!("the pattern compiles to more than {limit} bytes; simplify it (bounded repetitions of large classes such as \\w{{1,64}} cost most)"),
                ),
                other => ("INVALID_REGEX", other.to_string()),
            })
    };
    Ok([build(false)?, build(true)?])
}

fn syntax_error(message: &str) -> (&'static str, String) {
    let unsupported = message.contains("look-around") || message.contains("backreference");
    if unsupported {
        (
            "REGEX_UNSUPPORTED_SYNTAX",
            format!(
                "look-around and backreferences are not supported (patterns run in linear time): {message}"
            ),
        )
    } else {
        ("INVALID_REGEX", message.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::{AccountId, RoleName};
    use serde_json::{Value, json};

    fn rules(list: Value) -> Vec<Rule> {
        serde_json::from_value(list).unwrap()
    }

    fn grant(id: &str, when: Value) -> Value {
        json!({"id": id, "name": id, "effect": "grant", "source": ["corp"], "when": when,
               "grant": [{"account": "111111111111", "role": "Developer"}]})
    }

    /// The (code, pointer) pairs compiling `list` reports.
    fn errors(list: Value) -> Vec<(&'static str, String)> {
        match CompiledRuleset::compile(&rules(list)) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.code, e.pointer)).collect(),
        }
    }

    fn has(list: Value, code: &str, pointer: &str) {
        let found = errors(list);
        assert!(
            found.iter().any(|(c, p)| *c == code && p == pointer),
            "expected {code} at {pointer}, got {found:?}"
        );
    }

    #[test]
    fn regex_problems_are_refused_with_pointers() {
        let long = "a".repeat(MAX_REGEX_BYTES + 1);
        has(
            json!([grant(
                "r",
                json!({"claim": "groups", "op": "regex", "values": ["ok", long]})
            )]),
            "REGEX_TOO_LONG",
            "/0/when/values/1",
        );
        for unsupported in ["(?=x)x", "(?<!a)b", r"(a)\1"] {
            has(
                json!([grant(
                    "r",
                    json!({"claim": "groups", "op": "regex", "value": unsupported})
                )]),
                "REGEX_UNSUPPORTED_SYNTAX",
                "/0/when/value",
            );
        }
        has(
            json!([grant(
                "r",
                json!({"claim": "groups", "op": "regex", "value": r"\w{1000}"})
            )]),
            "REGEX_TOO_COMPLEX",
            "/0/when/value",
        );
        // A pattern cannot close the anchoring group early.
        has(
            json!([grant(
                "r",
                json!({"claim": "groups", "op": "regex", "value": "a)|(b"})
            )]),
            "INVALID_REGEX",
            "/0/when/value",
        );
        let mut for_each = grant("r", Value::Null);
        for_each["for_each"] = json!({"claim": "groups", "regex": "(?=x)"});
        has(
            json!([for_each]),
            "REGEX_UNSUPPORTED_SYNTAX",
            "/0/for_each/regex",
        );
    }

    #[test]
    fn realistic_and_pathological_patterns_compile() {
        let mut rule = grant(
            "r",
            json!({"claim": "groups", "op": "regex", "value": "(a+)+$"}),
        );
        rule["for_each"] = json!({"claim": "groups",
            "regex": r"aws#(?P<account>[0-9]{12})#(?P<role>[\w+=,.@-]{1,64})"});
        rule["grant"] = json!([{"account": "${match.account}", "role": "${match.role}"}]);
        assert_eq!(errors(json!([rule])), vec![]);
    }

    #[test]
    fn templates_are_checked() {
        for (template, pointer) in [
            ("${claims.email|shout}", "/0/session/name"),
            ("${claims.email", "/0/session/name"),
            ("${user.email}", "/0/session/name"),
            ("${match.role}", "/0/session/name"),
        ] {
            has(
                json!([{"id": "s", "name": "", "effect": "session", "source": ["corp"],
                        "session": {"name": template}}]),
                "INVALID_TEMPLATE",
                pointer,
            );
        }
        has(
            json!([{"id": "s", "name": "", "effect": "session", "source": ["corp"],
                    "session": {"tags": {"cost/center": "${claims.x|truncate:0}"}}}]),
            "INVALID_TEMPLATE",
            "/0/session/tags/cost~1center",
        );
        let mut rule = grant("r", Value::Null);
        rule["for_each"] = json!({"claim": "groups", "regex": "aws-(?P<role>.+)"});
        rule["grant"] = json!([{"account": "111111111111", "role": "${match.rol}"}]);
        has(json!([rule]), "INVALID_TEMPLATE", "/0/grant/0/role");
        has(
            json!([{"id": "s", "name": "", "effect": "session", "source": ["corp"],
                    "session": {"name": "x", "max_duration_seconds": 60,
                                "tags": {"aws:reserved": "v"}, "transitive_tag_keys": ["nope"]}}]),
            "INVALID_SESSION_NAME",
            "/0/session/name",
        );
        let bad_session = json!([{"id": "s", "name": "", "effect": "session", "source": ["corp"],
                "session": {"max_duration_seconds": 60, "tags": {"aws:reserved": "v"},
                            "transitive_tag_keys": ["nope"]}}]);
        has(
            bad_session.clone(),
            "INVALID_DURATION",
            "/0/session/max_duration_seconds",
        );
        has(
            bad_session.clone(),
            "INVALID_TAG_KEY",
            "/0/session/tags/aws:reserved",
        );
        has(
            bad_session,
            "INVALID_TRANSITIVE_TAG_KEY",
            "/0/session/transitive_tag_keys/0",
        );
    }

    #[test]
    fn structure_problems_are_refused_with_pointers() {
        let mut no_source = grant("r", Value::Null);
        no_source.as_object_mut().unwrap().remove("source");
        has(json!([no_source]), "SOURCE_REQUIRED", "/0/source");
        let mut empty_source = grant("r", Value::Null);
        empty_source["source"] = json!([]);
        has(json!([empty_source]), "SOURCE_REQUIRED", "/0/source");
        let mut any_grant = grant("r", Value::Null);
        any_grant["source"] = json!("any");
        has(json!([any_grant]), "SOURCE_ANY_NOT_ALLOWED", "/0/source");
        let deny_any = json!({"id": "d", "name": "", "effect": "deny", "source": ["any"],
                              "target": {"accounts": "*", "roles": ["Admin"]}});
        assert_eq!(errors(json!([deny_any])), vec![]);

        has(
            json!([
                grant("a", Value::Null),
                grant("b", Value::Null),
                grant("a", Value::Null)
            ]),
            "DUPLICATE_RULE_ID",
            "/2/id",
        );
        has(
            json!([grant("bad id!", Value::Null)]),
            "INVALID_RULE_ID",
            "/0/id",
        );
        has(
            json!([grant(&"x".repeat(65), Value::Null)]),
            "INVALID_RULE_ID",
            "/0/id",
        );
        has(
            json!([{"id": "d", "name": "", "effect": "deny", "source": ["corp"]}]),
            "TARGET_REQUIRED",
            "/0/target",
        );
        let mut bad_names = grant("r", Value::Null);
        bad_names["grant"] =
            json!([{"account": "1234", "role": "Dev"}, {"account": "*", "role": "a b"}]);
        has(
            json!([bad_names.clone()]),
            "INVALID_ACCOUNT",
            "/0/grant/0/account",
        );
        has(json!([bad_names]), "INVALID_ROLE", "/0/grant/1/role");
        has(
            json!([grant(
                "r",
                json!({"claim": "groups", "op": "equals", "values": ["a", "b"]})
            )]),
            "INVALID_CONDITION",
            "/0/when/values",
        );
        has(
            json!([grant(
                "r",
                json!({"claim": "groups", "op": "exists", "value": "a"})
            )]),
            "INVALID_CONDITION",
            "/0/when",
        );
    }

    #[test]
    fn condition_trees_are_bounded() {
        let mut deep = json!({"claim": "groups", "op": "exists"});
        for _ in 0..MAX_CONDITION_DEPTH {
            deep = json!({"not": deep});
        }
        // Eight nots and the leaf: nine deep.
        has(
            json!([grant("r", deep.clone())]),
            "CONDITION_TOO_DEEP",
            &format!("/0/when{}", "/not".repeat(MAX_CONDITION_DEPTH)),
        );
        let ok = deep["not"].clone();
        assert_eq!(errors(json!([grant("r", ok)])), vec![]);

        let leaves: Vec<Value> = (0..MAX_CONDITION_NODES)
            .map(|i| json!({"claim": "groups", "op": "equals", "value": format!("g{i}")}))
            .collect();
        has(
            json!([grant("r", json!({"any": leaves}))]),
            "CONDITION_TOO_LARGE",
            "/0/when/any/255",
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut second = grant(
            "b",
            json!({"claim": "groups", "op": "regex", "value": "(?=x)"}),
        );
        second["source"] = json!([]);
        let found = errors(json!([
            grant("a", Value::Null),
            second,
            grant("a", Value::Null)
        ]));
        let codes: Vec<&str> = found.iter().map(|(c, _)| *c).collect();
        assert!(codes.contains(&"SOURCE_REQUIRED"), "{found:?}");
        assert!(codes.contains(&"REGEX_UNSUPPORTED_SYNTAX"), "{found:?}");
        assert!(codes.contains(&"DUPLICATE_RULE_ID"), "{found:?}");
    }

    #[test]
    fn content_hash_is_stable_and_follows_content() {
        let list = rules(json!([grant(
            "a",
            json!({"claim": "groups", "op": "equals", "value": "x"})
        )]));
        let hash = content_hash(&list);
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, content_hash(&list.clone()));
        let reread: Vec<Rule> =
            serde_json::from_str(&serde_json::to_string(&list).unwrap()).unwrap();
        assert_eq!(hash, content_hash(&reread));
        let mut changed = list.clone();
        changed[0].priority = 99;
        assert_ne!(hash, content_hash(&changed));
        let compiled = CompiledRuleset::compile(&list).unwrap();
        assert_eq!(compiled.content_hash(), hash);
        assert_eq!(compiled.rules(), list.as_slice());
    }

    #[test]
    fn literal_references_are_checked_against_the_catalog() {
        let mut catalog = Catalog::new();
        catalog.add_role(
            AccountId::parse("111111111111").unwrap(),
            RoleName::parse("Developer").unwrap(),
            3600,
        );
        let mut r = grant("r", Value::Null);
        r["grant"] = json!([
            {"account": "111111111111", "role": "developer"},
            {"account": "222222222222", "role": "Developer"},
            {"account": "111111111111", "role": "Admin"},
            {"account": "*", "role": "Ghost"},
            {"account": "${claims.account}", "role": "Anything"}
        ]);
        let deny = json!({"id": "d", "name": "", "effect": "deny", "source": "any",
                          "target": {"accounts": ["333333333333"], "roles": ["Developer"]}});
        let found: Vec<(&str, String)> = check_references(&rules(json!([r, deny])), &catalog)
            .into_iter()
            .map(|e| (e.code, e.pointer))
            .collect();
        assert_eq!(
            found,
            vec![
                ("UNKNOWN_ACCOUNT", "/0/grant/1/account".to_owned()),
                ("UNKNOWN_ROLE", "/0/grant/2/role".to_owned()),
                ("UNKNOWN_ROLE", "/0/grant/3/role".to_owned()),
                ("UNKNOWN_ACCOUNT", "/1/target/accounts/0".to_owned()),
            ]
        );
    }
}
