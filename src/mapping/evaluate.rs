//! Evaluates a compiled ruleset against one identity's claims: the entitlements,
//! what deny rules removed, warnings, and why every other rule did not apply.
//!
//! - Rules run in (priority, id) order; grants add up, and any matching deny rule
//!   removes the grants it targets whatever the priorities.
//! - Session settings come from session rules (optionally scoped by `target`)
//!   and from a grant rule's own `session`; per setting the lowest priority
//!   number wins, and a different value from another rule is a SESSION_CONFLICT
//!   warning naming both.
//! - Rendered settings are checked against the STS limits; one that fails (or whose
//!   claim is missing) is omitted with a warning, never sent half-rendered.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::catalog::{Catalog, CatalogRole};
use super::claims::SourceClaims;
use super::compile::{
    AccountRef, CompiledRule, CompiledRuleset, CompiledSession, CompiledTarget, Cond, LeafKind,
    MAX_SESSION_TAGS, RoleRef, valid_session_name,
};
use super::rules::{Case, Effect, Op, Sources};
use super::template::{Captures, Template};
use crate::iam::{AccountId, RoleName, Tag};

/// STS: the longest session tag value, in characters.
const MAX_TAG_VALUE_CHARS: usize = 256;

/// The outcome of evaluating the rules for one identity.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Evaluation {
    /// Sorted by (account, role).
    pub entitlements: Vec<Entitlement>,
    /// Granted, then removed by a deny rule; sorted by (account, role).
    pub removed: Vec<Removed>,
    pub warnings: Vec<Warning>,
    /// Rules that did not fire, in evaluation order.
    pub not_applied: Vec<NotApplied>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entitlement {
    pub account: AccountId,
    pub role: RoleName,
    pub session: SessionSettings,
    pub granted_by: Vec<GrantedBy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantedBy {
    pub rule: String,
    /// The claim values that matched, as `claim=value` (e.g. `groups=developers`).
    pub matched: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SessionSettings {
    pub name: Option<String>,
    pub source_identity: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub transitive_tag_keys: Vec<String>,
    /// Already capped at the role's maximum.
    pub max_duration_seconds: Option<i64>,
    /// The rules that set something, in priority order.
    pub from_rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub account: AccountId,
    pub role: RoleName,
    pub denied_by: Vec<String>,
    pub granted_by: Vec<GrantedBy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub code: &'static str,
    pub rule: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotApplied {
    pub rule: String,
    /// `disabled`, `expired`, `not yet valid`, `rule is scoped to source …`,
    /// `conditions not met` or `for_each matched no value`.
    pub reason: String,
    /// What nearly matched, such as "differs only by case: …".
    pub near_miss: Option<String>,
}

impl Evaluation {
    /// The entitlement for `account` and `role` (exact spelling), if granted.
    pub fn entitlement(&self, account: &str, role: &str) -> Option<&Entitlement> {
        self.entitlements
            .iter()
            .find(|e| e.account.as_str() == account && e.role.as_str() == role)
    }

    /// Why `rule` did not apply, if it did not.
    pub fn not_applied(&self, rule: &str) -> Option<&NotApplied> {
        self.not_applied.iter().find(|n| n.rule == rule)
    }

    /// Whether a warning with `code` was given.
    pub fn warned(&self, code: &str) -> bool {
        self.warnings.iter().any(|w| w.code == code)
    }
}

impl CompiledRuleset {
    /// Evaluates the rules for `claims` at `now`.
    pub fn evaluate(
        &self,
        claims: &SourceClaims,
        catalog: &Catalog,
        now: DateTime<Utc>,
    ) -> Evaluation {
        let ctx = Context::new(self, claims);
        let mut run = Run::default();
        let mut trail = Vec::new();
        for rule in &self.order {
            ctx.rule(rule, catalog, now, &mut run, &mut trail);
        }
        run.finish()
    }
}

/// How each condition of one rule fared for some claims: the admin UI's test
/// panel. Every node is evaluated (no short cut), so each says whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionReport {
    /// `all`, `any`, `not`, or the leaf's operator (`contains_any`, ...).
    pub kind: String,
    /// Where the node is in the rule (`/when/all/1`).
    pub pointer: String,
    pub held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// The claim's values the leaf held on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// For a leaf that did not hold: what it would take (a case difference, or the
    /// values the claim has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near_miss: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ConditionReport>,
}

impl CompiledRuleset {
    /// Each condition of rule `id` for `claims`, or `None` if the ruleset has no
    /// such rule or the rule has no conditions (it always matches).
    pub fn explain(&self, id: &str, claims: &SourceClaims) -> Option<ConditionReport> {
        let rule = self.order.iter().find(|r| r.id == id)?;
        let ctx = Context::new(self, claims);
        Some(ctx.report(rule.when.as_ref()?, "/when".into()))
    }
}

impl Context<'_> {
    fn report(&self, cond: &Cond, pointer: String) -> ConditionReport {
        let node = |kind: &str, held: bool, children: Vec<ConditionReport>| ConditionReport {
            kind: kind.to_owned(),
            pointer: pointer.clone(),
            held,
            claim: None,
            values: Vec::new(),
            matched: Vec::new(),
            near_miss: None,
            children,
        };
        let list = |children: &[Cond], key: &str| -> Vec<ConditionReport> {
            children
                .iter()
                .enumerate()
                .map(|(i, c)| self.report(c, format!("{pointer}/{key}/{i}")))
                .collect()
        };
        match cond {
            Cond::All(children) => {
                let reports = list(children, "all");
                let held = reports.iter().all(|r| r.held);
                node("all", held, reports)
            }
            Cond::Any(children) => {
                let reports = list(children, "any");
                let held = reports.iter().any(|r| r.held);
                node("any", held, reports)
            }
            Cond::Not(child) => {
                let inner = self.report(child, format!("{pointer}/not"));
                node("not", !inner.held, vec![inner])
            }
            Cond::Leaf(index) => {
                let Some(leaf) = self.rules.leaves.get(*index) else {
                    return node("unknown", false, Vec::new());
                };
                let mut trail = Vec::new();
                let held = self.leaf(*index, Mode::Normal, &mut trail);
                let claim = self.claim_name(leaf.claim).to_owned();
                let has = self.states.get(leaf.claim).map_or(&[][..], |s| s.values);
                let near_miss = (!held).then(|| {
                    let mut ignoring_case = Vec::new();
                    if self.leaf(*index, Mode::IgnoreCase, &mut ignoring_case) {
                        "holds if case is ignored (set \"case\": \"insensitive\")".to_owned()
                    } else if has.is_empty() {
                        format!("the identity has no {claim} claim")
                    } else {
                        format!("{claim} has {}", preview(has))
                    }
                });
                ConditionReport {
                    claim: Some(claim),
                    values: leaf.values.clone(),
                    matched: trail
                        .iter()
                        .map(|hit| self.value(leaf.claim, hit.value).to_owned())
                        .collect(),
                    near_miss,
                    ..node(leaf.op.as_str(), held, Vec::new())
                }
            }
        }
    }
}

/// Up to five values, quoted, and how many more.
fn preview(values: &[String]) -> String {
    let shown: Vec<String> = values.iter().take(5).map(|v| format!("{v:?}")).collect();
    match values.len().saturating_sub(5) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// A leaf that held, and the claim value (and rule value) it held on.
#[derive(Debug, Clone, Copy)]
struct Hit {
    leaf: usize,
    value: usize,
    rule_value: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Every comparison ignores case: for "differs only by case" near misses.
    IgnoreCase,
}

struct ClaimState<'a> {
    values: &'a [String],
    exact: OnceCell<HashMap<&'a str, usize>>,
    lower: OnceCell<HashMap<String, usize>>,
    /// Per case mode, per pattern slot: the indices of the values it matches.
    hits: [OnceCell<Vec<Vec<usize>>>; 2],
}

struct Context<'a> {
    rules: &'a CompiledRuleset,
    claims: &'a SourceClaims,
    states: Vec<ClaimState<'a>>,
}

impl<'a> Context<'a> {
    fn new(rules: &'a CompiledRuleset, claims: &'a SourceClaims) -> Self {
        let states = rules
            .claims
            .iter()
            .map(|c| ClaimState {
                values: claims.get(&c.name),
                exact: OnceCell::new(),
                lower: OnceCell::new(),
                hits: [OnceCell::new(), OnceCell::new()],
            })
            .collect();
        Self {
            rules,
            claims,
            states,
        }
    }

    fn insensitive(&self, case: Option<Case>, mode: Mode) -> bool {
        mode == Mode::IgnoreCase
            || match case {
                Some(Case::Insensitive) => true,
                Some(Case::Sensitive) => false,
                None => !self.claims.case_sensitive,
            }
    }

    fn exact(&self, claim: usize) -> Option<&HashMap<&'a str, usize>> {
        let state = self.states.get(claim)?;
        Some(state.exact.get_or_init(|| {
            let mut map = HashMap::with_capacity(state.values.len());
            for (i, v) in state.values.iter().enumerate() {
                map.entry(v.as_str()).or_insert(i);
            }
            map
        }))
    }

    fn lower(&self, claim: usize) -> Option<&HashMap<String, usize>> {
        let state = self.states.get(claim)?;
        Some(state.lower.get_or_init(|| {
            let mut map = HashMap::with_capacity(state.values.len());
            for (i, v) in state.values.iter().enumerate() {
                map.entry(v.to_lowercase()).or_insert(i);
            }
            map
        }))
    }

    /// Per pattern slot of `claim`, the values it matches.
    fn hits(&self, claim: usize, insensitive: bool) -> Option<&Vec<Vec<usize>>> {
        let state = self.states.get(claim)?;
        let mode = usize::from(insensitive);
        let index = self.rules.claims.get(claim)?.modes.get(mode)?;
        Some(state.hits.get(mode)?.get_or_init(|| {
            let mut hits = vec![Vec::new(); index.regexes.len()];
            for (i, value) in state.values.iter().enumerate() {
                for (set, slots) in &index.sets {
                    if set.is_match(value) {
                        for k in set.matches(value).iter() {
                            if let Some(h) = slots.get(k).and_then(|s| hits.get_mut(*s)) {
                                h.push(i);
                            }
                        }
                    }
                }
                for slot in &index.loose {
                    if index.regexes.get(*slot).is_some_and(|r| r.is_match(value))
                        && let Some(h) = hits.get_mut(*slot)
                    {
                        h.push(i);
                    }
                }
            }
            hits
        }))
    }

    fn eval(&self, cond: &Cond, mode: Mode, trail: &mut Vec<Hit>) -> bool {
        match cond {
            Cond::All(children) => {
                let mark = trail.len();
                for child in children {
                    if !self.eval(child, mode, trail) {
                        trail.truncate(mark);
                        return false;
                    }
                }
                true
            }
            Cond::Any(children) => {
                for child in children {
                    let mark = trail.len();
                    if self.eval(child, mode, trail) {
                        return true;
                    }
                    trail.truncate(mark);
                }
                false
            }
            Cond::Not(child) => {
                let mark = trail.len();
                let inner = self.eval(child, mode, trail);
                trail.truncate(mark);
                !inner
            }
            Cond::Leaf(leaf) => self.leaf(*leaf, mode, trail),
        }
    }

    fn leaf(&self, index: usize, mode: Mode, trail: &mut Vec<Hit>) -> bool {
        let Some(leaf) = self.rules.leaves.get(index) else {
            return false;
        };
        let Some(state) = self.states.get(leaf.claim) else {
            return false;
        };
        let insensitive = self.insensitive(leaf.case, mode);
        let hit = |value, rule_value| Hit {
            leaf: index,
            value,
            rule_value,
        };
        match &leaf.kind {
            LeafKind::Exists => {
                let present = !state.values.is_empty();
                if present {
                    trail.push(hit(0, None));
                }
                present
            }
            LeafKind::Set { lower } => {
                let found = |k: usize| -> Option<usize> {
                    if insensitive {
                        self.lower(leaf.claim)?.get(lower.get(k)?).copied()
                    } else {
                        self.exact(leaf.claim)?
                            .get(leaf.values.get(k)?.as_str())
                            .copied()
                    }
                };
                let mut matches = (0..leaf.values.len()).filter_map(|k| found(k).map(|v| (k, v)));
                match leaf.op {
                    Op::ContainsAll => {
                        let mark = trail.len();
                        let mut all = true;
                        for k in 0..leaf.values.len() {
                            match found(k) {
                                Some(v) => trail.push(hit(v, Some(k))),
                                None => {
                                    all = false;
                                    break;
                                }
                            }
                        }
                        if !all {
                            trail.truncate(mark);
                        }
                        all
                    }
                    Op::NoneOf => matches.next().is_none(),
                    _ => match matches.next() {
                        Some((k, v)) => {
                            trail.push(hit(v, Some(k)));
                            true
                        }
                        None => false,
                    },
                }
            }
            LeafKind::Pattern { slots } => {
                let Some(hits) = self.hits(leaf.claim, insensitive) else {
                    return false;
                };
                for (k, slot) in slots.iter().enumerate() {
                    if let Some(&v) = hits.get(*slot).and_then(|h| h.first()) {
                        trail.push(hit(v, Some(k)));
                        return true;
                    }
                }
                false
            }
        }
    }

    fn claim_name(&self, claim: usize) -> &str {
        self.rules.claims.get(claim).map_or("", |c| c.name.as_str())
    }

    fn value(&self, claim: usize, value: usize) -> &str {
        self.states
            .get(claim)
            .and_then(|s| s.values.get(value))
            .map_or("", String::as_str)
    }

    /// `claim=value` for each hit.
    fn matched(&self, trail: &[Hit]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(trail.len());
        for hit in trail {
            let Some(leaf) = self.rules.leaves.get(hit.leaf) else {
                continue;
            };
            let text = format!(
                "{}={}",
                self.claim_name(leaf.claim),
                self.value(leaf.claim, hit.value)
            );
            if !out.contains(&text) {
                out.push(text);
            }
        }
        out
    }

    /// Whether the rule's conditions would hold ignoring case, and how.
    fn case_near_miss(&self, rule: &CompiledRule) -> Option<String> {
        let cond = rule.when.as_ref()?;
        let mut trail = Vec::new();
        if !rule.case_matters || !self.eval(cond, Mode::IgnoreCase, &mut trail) {
            return None;
        }
        let mut parts = Vec::new();
        for hit in &trail {
            let Some(leaf) = self.rules.leaves.get(hit.leaf) else {
                continue;
            };
            if self.insensitive(leaf.case, Mode::Normal) {
                continue;
            }
            let claim = self.claim_name(leaf.claim);
            let value = self.value(leaf.claim, hit.value);
            let said = hit
                .rule_value
                .and_then(|k| leaf.values.get(k))
                .map_or(String::new(), |w| {
                    format!(", the rule says {} {w:?}", leaf.op.as_str())
                });
            parts.push(format!("{claim} has {value:?}{said}"));
        }
        Some(format!(
            "differs only by case: {} (set \"case\": \"insensitive\" to match)",
            parts.join("; ")
        ))
    }

    fn rule(
        &self,
        rule: &CompiledRule,
        catalog: &Catalog,
        now: DateTime<Utc>,
        run: &mut Run,
        trail: &mut Vec<Hit>,
    ) {
        let skip = |run: &mut Run, reason: String, near_miss: Option<String>| {
            run.not_applied.push(NotApplied {
                rule: rule.id.clone(),
                reason,
                near_miss,
            });
        };
        if !rule.enabled {
            return skip(run, "disabled".into(), None);
        }
        if let Some(valid) = &rule.valid {
            if valid.not_before.is_some_and(|t| now < t) {
                return skip(run, "not yet valid".into(), None);
            }
            if valid.not_after.is_some_and(|t| now > t) {
                return skip(run, "expired".into(), None);
            }
        }
        trail.clear();
        let holds = rule
            .when
            .as_ref()
            .is_none_or(|c| self.eval(c, Mode::Normal, trail));
        if !rule.sources.includes(&self.claims.source) {
            let scope = match &rule.sources {
                Sources::Any => "any".to_owned(),
                Sources::Ids(ids) => ids.join(", "),
            };
            let near = holds.then(|| {
                format!(
                    "the conditions match, but the identity comes from source {}",
                    self.claims.source
                )
            });
            return skip(run, format!("rule is scoped to source {scope}"), near);
        }
        if !holds {
            return skip(run, "conditions not met".into(), self.case_near_miss(rule));
        }
        let matched = self.matched(trail);

        // for_each: one binding per matching value.
        let bindings: Vec<Option<(Captures, String)>> = match &rule.for_each {
            None => vec![None],
            Some(fe) => {
                let insensitive = self.insensitive(fe.case, Mode::Normal);
                let regex = self
                    .rules
                    .claims
                    .get(fe.claim)
                    .and_then(|c| c.modes.get(usize::from(insensitive)))
                    .and_then(|m| m.regexes.get(fe.slot));
                let indices = self
                    .hits(fe.claim, insensitive)
                    .and_then(|h| h.get(fe.slot))
                    .cloned()
                    .unwrap_or_default();
                let mut out = Vec::new();
                for i in indices {
                    let value = self.value(fe.claim, i);
                    let Some(caps) = regex.and_then(|r| r.captures(value)) else {
                        continue;
                    };
                    let mut captures = Captures::new();
                    if let Some(regex) = regex {
                        for name in regex.capture_names().flatten() {
                            if let Some(m) = caps.name(name) {
                                captures.insert(name.to_owned(), m.as_str().to_owned());
                            }
                        }
                    }
                    out.push(Some((
                        captures,
                        format!("{}={value}", self.claim_name(fe.claim)),
                    )));
                }
                if out.is_empty() {
                    return skip(
                        run,
                        format!(
                            "for_each matched no value of claim {}",
                            self.claim_name(fe.claim)
                        ),
                        None,
                    );
                }
                out
            }
        };

        match rule.effect {
            Effect::Deny => run.denies.push(Deny {
                rule: rule.id.clone(),
                target: rule.target.clone(),
            }),
            Effect::Session => {
                if let Some(session) = &rule.session {
                    let rendered = self.render(rule, session, None, run);
                    let index = run.rendered.len();
                    run.rendered.push(rendered);
                    run.session_rules.push((index, rule.target.clone()));
                }
            }
            Effect::Grant => {
                for binding in &bindings {
                    let captures = binding.as_ref().map(|(c, _)| c);
                    let mut matched_here = matched.clone();
                    if let Some((_, value)) = binding
                        && !matched_here.contains(value)
                    {
                        matched_here.push(value.clone());
                    }
                    let session = rule.session.as_ref().map(|s| {
                        let rendered = self.render(rule, s, captures, run);
                        run.rendered.push(rendered);
                        run.rendered.len() - 1
                    });
                    for grant in &rule.grants {
                        for (account, role) in self.resolve(rule, grant, captures, catalog, run) {
                            run.grant(account, role, &rule.id, &matched_here, session);
                        }
                    }
                }
            }
        }
    }

    fn resolve(
        &self,
        rule: &CompiledRule,
        grant: &super::compile::CompiledGrant,
        captures: Option<&Captures>,
        catalog: &Catalog,
        run: &mut Run,
    ) -> Vec<(AccountId, CatalogRole)> {
        let render = |t: &Template, run: &mut Run, what: &str| match t.render(self.claims, captures)
        {
            Ok(v) => Some(v),
            Err(missing) => {
                run.warn(
                    "TEMPLATE_UNRESOLVED",
                    Some(&rule.id),
                    format!("grant skipped: the {what} template needs {missing}, which is missing"),
                );
                None
            }
        };
        let role = match &grant.role {
            RoleRef::Literal(r) => r.clone(),
            RoleRef::Template(t) => match render(t, run, "role") {
                Some(r) => r,
                None => return Vec::new(),
            },
        };
        let account = match &grant.account {
            AccountRef::All => {
                let found: Vec<_> = catalog
                    .accounts_with_role(&role)
                    .map(|(a, r)| (a.clone(), r.clone()))
                    .collect();
                if found.is_empty() {
                    run.warn(
                        "UNKNOWN_ROLE",
                        Some(&rule.id),
                        format!("no account has a role named {role:?}; grant skipped"),
                    );
                }
                return found;
            }
            AccountRef::Literal(a) => a.clone(),
            AccountRef::Template(t) => match render(t, run, "account") {
                Some(a) => a,
                None => return Vec::new(),
            },
        };
        let Some(account_id) = catalog.account(&account) else {
            run.warn(
                "UNKNOWN_ACCOUNT",
                Some(&rule.id),
                format!("account {account:?} does not exist; grant of {role:?} skipped"),
            );
            return Vec::new();
        };
        match catalog.role(&account, &role) {
            Some(found) => vec![(account_id.clone(), found.clone())],
            None => {
                run.warn(
                    "UNKNOWN_ROLE",
                    Some(&rule.id),
                    format!("account {account} has no role named {role:?}; grant skipped"),
                );
                Vec::new()
            }
        }
    }

    fn render(
        &self,
        rule: &CompiledRule,
        session: &CompiledSession,
        captures: Option<&Captures>,
        run: &mut Run,
    ) -> Rendered {
        let mut out = Rendered {
            rule: rule.id.clone(),
            priority: rule.priority,
            name: None,
            source_identity: None,
            tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            max_duration_seconds: session.max_duration_seconds,
        };
        for (field, template, slot) in [
            ("session name", &session.name, &mut out.name),
            (
                "source identity",
                &session.source_identity,
                &mut out.source_identity,
            ),
        ] {
            let Some(template) = template else { continue };
            match template.render(self.claims, captures) {
                Ok(value) if valid_session_name(&value) => *slot = Some(value),
                Ok(value) => run.warn(
                    if field == "session name" {
                        "INVALID_SESSION_NAME"
                    } else {
                        "INVALID_SOURCE_IDENTITY"
                    },
                    Some(&rule.id),
                    format!(
                        "{field} {value:?} omitted: it must be 2 to 64 characters of letters, digits and _+=,.@-"
                    ),
                ),
                Err(missing) => run.warn(
                    "MISSING_CLAIM",
                    Some(&rule.id),
                    format!("{field} omitted: {missing} is missing and has no default"),
                ),
            }
        }
        for (key, template) in &session.tags {
            match template.render(self.claims, captures) {
                Ok(value) if value.chars().count() > MAX_TAG_VALUE_CHARS => run.warn(
                    "TAG_VALUE_TOO_LONG",
                    Some(&rule.id),
                    format!(
                        "session tag {key:?} omitted: its value has {} characters, STS allows {MAX_TAG_VALUE_CHARS} (use truncate:{MAX_TAG_VALUE_CHARS})",
                        value.chars().count()
                    ),
                ),
                Ok(value) => match Tag::parse(key.as_str(), value.as_str()) {
                    Ok(_) => out.tags.push((key.clone(), value)),
                    Err(e) => run.warn(
                        "INVALID_TAG_VALUE",
                        Some(&rule.id),
                        format!("session tag {key:?} omitted: {e}"),
                    ),
                },
                Err(missing) => run.warn(
                    "MISSING_CLAIM",
                    Some(&rule.id),
                    format!("session tag {key:?} omitted: {missing} is missing and has no default"),
                ),
            }
        }
        out.transitive_tag_keys = session
            .transitive_tag_keys
            .iter()
            .filter(|k| out.tags.iter().any(|(key, _)| key == *k))
            .cloned()
            .collect();
        out
    }
}

/// One rule's rendered session settings.
#[derive(Debug, Clone)]
struct Rendered {
    rule: String,
    priority: i32,
    name: Option<String>,
    source_identity: Option<String>,
    tags: Vec<(String, String)>,
    transitive_tag_keys: Vec<String>,
    max_duration_seconds: Option<i64>,
}

struct Deny {
    rule: String,
    target: Option<CompiledTarget>,
}

struct Candidate {
    account: AccountId,
    role: CatalogRole,
    granted_by: Vec<GrantedBy>,
    /// Rendered sessions of the granting rules.
    sessions: Vec<usize>,
}

#[derive(Default)]
struct Run {
    candidates: BTreeMap<(String, String), Candidate>,
    denies: Vec<Deny>,
    rendered: Vec<Rendered>,
    /// Session rules that fired: rendered settings and target.
    session_rules: Vec<(usize, Option<CompiledTarget>)>,
    warnings: Vec<Warning>,
    warned: HashSet<(&'static str, Option<String>, String)>,
    not_applied: Vec<NotApplied>,
}

impl Run {
    fn warn(&mut self, code: &'static str, rule: Option<&str>, message: String) {
        let key = (code, rule.map(str::to_owned), message);
        if self.warned.insert(key.clone()) {
            self.warnings.push(Warning {
                code,
                rule: key.1,
                message: key.2,
            });
        }
    }

    fn grant(
        &mut self,
        account: AccountId,
        role: CatalogRole,
        rule: &str,
        matched: &[String],
        session: Option<usize>,
    ) {
        let key = (account.as_str().to_owned(), role.name.as_str().to_owned());
        let candidate = self.candidates.entry(key).or_insert_with(|| Candidate {
            account,
            role,
            granted_by: Vec::new(),
            sessions: Vec::new(),
        });
        match candidate.granted_by.iter_mut().find(|g| g.rule == rule) {
            Some(by) => {
                for m in matched {
                    if !by.matched.contains(m) {
                        by.matched.push(m.clone());
                    }
                }
            }
            None => candidate.granted_by.push(GrantedBy {
                rule: rule.to_owned(),
                matched: matched.to_vec(),
            }),
        }
        if let Some(s) = session
            && !candidate.sessions.contains(&s)
        {
            candidate.sessions.push(s);
        }
    }

    fn finish(mut self) -> Evaluation {
        let mut out = Evaluation::default();
        let mut cache = HashMap::new();
        let candidates = std::mem::take(&mut self.candidates);
        for (_, candidate) in candidates {
            let account = candidate.account.as_str();
            let role = candidate.role.name.as_str();
            let denied_by: Vec<String> = self
                .denies
                .iter()
                .filter(|d| d.target.as_ref().is_some_and(|t| t.covers(account, role)))
                .map(|d| d.rule.clone())
                .collect();
            if !denied_by.is_empty() {
                out.removed.push(Removed {
                    account: candidate.account,
                    role: candidate.role.name,
                    denied_by,
                    granted_by: candidate.granted_by,
                });
                continue;
            }
            let session = self.session(&candidate, &mut cache);
            out.entitlements.push(Entitlement {
                account: candidate.account,
                role: candidate.role.name,
                session,
                granted_by: candidate.granted_by,
            });
        }
        out.warnings = self.warnings;
        out.not_applied = self.not_applied;
        out
    }

    /// The session settings of one entitlement: the merge of the settings that
    /// apply to it (cached per set of applicable settings, which entitlements
    /// mostly share), capped at the role's maximum duration.
    fn session(
        &mut self,
        candidate: &Candidate,
        cache: &mut HashMap<Vec<usize>, Merged>,
    ) -> SessionSettings {
        let account = candidate.account.as_str();
        let role = candidate.role.name.as_str();
        let mut applicable: Vec<usize> = candidate.sessions.clone();
        for (index, target) in &self.session_rules {
            if target.as_ref().is_none_or(|t| t.covers(account, role)) {
                applicable.push(*index);
            }
        }
        applicable.sort_by(|a, b| {
            let (a, b) = (self.rendered.get(*a), self.rendered.get(*b));
            a.map(|r| (r.priority, &r.rule))
                .cmp(&b.map(|r| (r.priority, &r.rule)))
        });
        applicable.dedup();
        let merged = match cache.get(&applicable) {
            Some(merged) => merged.clone(),
            None => {
                let merged = merge(&self.rendered, &applicable);
                for (loser, conflict) in &merged.conflicts {
                    self.warn("SESSION_CONFLICT", Some(loser), conflict.clone());
                }
                if let Some(rule) = &merged.too_many_tags {
                    self.warn(
                        "TOO_MANY_TAGS",
                        Some(rule),
                        format!(
                            "STS allows {MAX_SESSION_TAGS} session tags; tags of rule {rule} and later ones were omitted"
                        ),
                    );
                }
                cache.insert(applicable, merged.clone());
                merged
            }
        };
        let mut settings = merged.settings;
        if let Some(seconds) = settings.max_duration_seconds
            && seconds > candidate.role.max_session_seconds
        {
            self.warn(
                "MAX_DURATION_CAPPED",
                merged.duration_rule.as_deref(),
                format!(
                    "{account}/{role}: session duration {seconds} s capped at the role's maximum of {} s",
                    candidate.role.max_session_seconds
                ),
            );
            settings.max_duration_seconds = Some(candidate.role.max_session_seconds);
        }
        settings
    }
}

/// Merged session settings, before the role's duration cap.
#[derive(Debug, Clone, Default)]
struct Merged {
    settings: SessionSettings,
    /// (overridden rule, message).
    conflicts: Vec<(String, String)>,
    /// The first rule whose tags did not fit.
    too_many_tags: Option<String>,
    /// The rule that set the duration.
    duration_rule: Option<String>,
}

/// One setting's value and the rule (and priority) that set it.
struct Setter<'a> {
    value: &'a str,
    rule: &'a str,
    priority: i32,
}

impl<'a> Setter<'a> {
    fn new(value: &'a str, r: &'a Rendered) -> Self {
        Self {
            value,
            rule: &r.rule,
            priority: r.priority,
        }
    }
}

/// Merges rendered settings given in priority order: the first to set a value
/// wins; a later, different value is a conflict.
fn merge(rendered: &[Rendered], applicable: &[usize]) -> Merged {
    let mut out = Merged::default();
    let mut name: Option<Setter<'_>> = None;
    let mut source_identity: Option<Setter<'_>> = None;
    let mut duration: Option<(i64, &str, i32)> = None;
    // By lower-cased key: (key as written, setter).
    let mut tags: BTreeMap<String, (&str, Setter<'_>)> = BTreeMap::new();
    let mut transitive: Vec<&str> = Vec::new();
    let mut conflict = |field: &str, winner: &Setter<'_>, r: &Rendered, value: &str| {
        if winner.value != value && winner.rule != r.rule {
            out.conflicts.push((
                r.rule.clone(),
                format!(
                    "{field}: rule {} (priority {}) sets {:?} and wins over rule {} (priority {}) setting {value:?}",
                    winner.rule, winner.priority, winner.value, r.rule, r.priority
                ),
            ));
        }
    };
    let mut from_rules: Vec<&str> = Vec::new();
    let mut too_many = None;
    for r in applicable.iter().filter_map(|i| rendered.get(*i)) {
        let mut contributed = false;
        for (field, value, slot) in [
            ("session name", &r.name, &mut name),
            ("source identity", &r.source_identity, &mut source_identity),
        ] {
            let Some(value) = value else { continue };
            match slot {
                Some(winner) => conflict(field, winner, r, value),
                None => {
                    *slot = Some(Setter::new(value, r));
                    contributed = true;
                }
            }
        }
        if let Some(seconds) = r.max_duration_seconds {
            match duration {
                Some((winning, rule, priority)) => {
                    let (w, v) = (winning.to_string(), seconds.to_string());
                    let winner = Setter {
                        value: &w,
                        rule,
                        priority,
                    };
                    conflict("max duration", &winner, r, &v);
                }
                None => {
                    duration = Some((seconds, r.rule.as_str(), r.priority));
                    contributed = true;
                }
            }
        }
        for (key, value) in &r.tags {
            let lower = key.to_ascii_lowercase();
            if let Some((_, winner)) = tags.get(&lower) {
                conflict(&format!("tag {lower:?}"), winner, r, value);
                continue;
            }
            if tags.len() >= MAX_SESSION_TAGS {
                too_many.get_or_insert_with(|| r.rule.clone());
                continue;
            }
            tags.insert(lower, (key.as_str(), Setter::new(value, r)));
            contributed = true;
        }
        for key in &r.transitive_tag_keys {
            let owned = tags
                .get(&key.to_ascii_lowercase())
                .is_some_and(|(written, _)| written == key);
            if owned && !transitive.contains(&key.as_str()) {
                transitive.push(key);
            }
        }
        if contributed {
            from_rules.push(&r.rule);
        }
    }
    let settings = &mut out.settings;
    settings.name = name.map(|s| s.value.to_owned());
    settings.source_identity = source_identity.map(|s| s.value.to_owned());
    settings.max_duration_seconds = duration.map(|(seconds, _, _)| seconds);
    settings.tags = tags
        .into_values()
        .map(|(key, s)| (key.to_owned(), s.value.to_owned()))
        .collect();
    transitive.sort_unstable();
    settings.transitive_tag_keys = transitive.into_iter().map(str::to_owned).collect();
    settings.from_rules = from_rules.into_iter().map(str::to_owned).collect();
    out.duration_rule = duration.map(|(_, rule, _)| rule.to_owned());
    out.too_many_tags = too_many;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::claims::ClaimsHygiene;
    use crate::mapping::rules::Rule;
    use serde_json::{Value, json};

    const A: &str = "111111111111";
    const B: &str = "222222222222";

    fn catalog() -> Catalog {
        let mut catalog = Catalog::new();
        for (account, role, max) in [
            (A, "Developer", 3600),
            (A, "Admin", 3600),
            (A, "ReadOnly", 43_200),
            (B, "Developer", 7200),
            (B, "ReadOnly", 3600),
        ] {
            catalog.add_role(
                AccountId::parse(account).unwrap(),
                RoleName::parse(role).unwrap(),
                max,
            );
        }
        catalog
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn claims_from(source: &str, claims: Value, case_sensitive: bool) -> SourceClaims {
        let Value::Object(map) = claims else {
            panic!("object expected")
        };
        let hygiene = ClaimsHygiene {
            case_sensitive,
            ..ClaimsHygiene::default()
        };
        SourceClaims::from_json(source, &map, &hygiene).unwrap()
    }

    fn evaluate_with(rules: Value, claims: &SourceClaims) -> Evaluation {
        let rules: Vec<Rule> = serde_json::from_value(rules).unwrap();
        let compiled = CompiledRuleset::compile(&rules)
            .unwrap_or_else(|e| panic!("{}", serde_json::to_string(&e).unwrap()));
        compiled.evaluate(claims, &catalog(), now())
    }

    fn evaluate(rules: Value, claims: Value) -> Evaluation {
        evaluate_with(rules, &claims_from("corp", claims, true))
    }

    fn grant_when(id: &str, when: Value) -> Value {
        json!({"id": id, "name": id, "effect": "grant", "source": ["corp"], "when": when,
               "grant": [{"account": A, "role": "Developer"}]})
    }

    fn holds(when: Value, claims: Value) -> bool {
        let out = evaluate(json!([grant_when("r", when)]), claims);
        out.entitlement(A, "Developer").is_some()
    }

    fn alice() -> Value {
        json!({"groups": ["staff", "developers", "Ops-Team"], "email": "alice@example.com"})
    }

    #[test]
    fn explain_reports_every_condition_with_near_misses() {
        let rules = CompiledRuleset::compile(
            &serde_json::from_value::<Vec<Rule>>(json!([grant_when(
                "r",
                json!({"all": [
                    {"claim": "groups", "op": "contains_any", "values": ["developers"]},
                    {"claim": "department", "op": "in", "values": ["Platform"]},
                    {"not": {"claim": "groups", "op": "contains_any", "values": ["contractors"]}}
                ]})
            )]))
            .unwrap(),
        )
        .unwrap();
        let claims = claims_from(
            "corp",
            json!({"groups": ["developers", "ops"], "department": ["platform"]}),
            true,
        );
        let report = rules.explain("r", &claims).unwrap();
        assert!(!report.held);
        assert_eq!(report.kind, "all");
        let [groups, department, not] = &report.children[..] else {
            panic!("{report:?}")
        };
        assert!(groups.held);
        assert_eq!(groups.matched, ["developers"]);
        assert_eq!(groups.pointer, "/when/all/0");
        assert!(!department.held);
        assert!(
            department
                .near_miss
                .as_deref()
                .unwrap()
                .contains("case is ignored")
        );
        assert!(not.held && !not.children[0].held);
        assert_eq!(not.children[0].pointer, "/when/all/2/not");
        assert!(
            not.children[0]
                .near_miss
                .as_deref()
                .unwrap()
                .contains("\"developers\", \"ops\"")
        );
        assert!(rules.explain("missing", &claims).is_none());
    }

    #[test]
    fn every_operator() {
        let leaf = |op: &str, v: Value| {
            let mut leaf = json!({"claim": "groups", "op": op});
            let key = if v.is_array() { "values" } else { "value" };
            leaf[key] = v;
            leaf
        };
        let cases = [
            (leaf("equals", json!("developers")), true),
            (leaf("equals", json!("dev")), false),
            (leaf("in", json!(["x", "developers"])), true),
            (leaf("in", json!(["x", "y"])), false),
            (leaf("contains_any", json!(["nope", "staff"])), true),
            (leaf("contains_any", json!(["nope"])), false),
            (leaf("contains_all", json!(["staff", "developers"])), true),
            (leaf("contains_all", json!(["staff", "admins"])), false),
            (leaf("none_of", json!(["admins", "contractors"])), true),
            (leaf("none_of", json!(["admins", "staff"])), false),
            (leaf("starts_with", json!("dev")), true),
            (leaf("starts_with", json!(["x", "Ops-"])), true),
            (leaf("starts_with", json!("eloper")), false),
            (leaf("ends_with", json!("-Team")), true),
            (leaf("ends_with", json!("dev")), false),
            (leaf("glob", json!("dev*rs")), true),
            (leaf("glob", json!("st?ff")), true),
            (leaf("glob", json!("dev")), false),
            (leaf("glob", json!("Ops.Team")), false),
            (leaf("regex", json!("dev.*")), true),
            (leaf("regex", json!("dev")), false),
            (leaf("regex", json!("velop")), false),
            (leaf("regex", json!("[a-z]+|x")), true),
            (json!({"claim": "email", "op": "exists"}), true),
            (json!({"claim": "phone", "op": "exists"}), false),
            (
                json!({"claim": "email", "op": "ends_with", "value": "@example.com"}),
                true,
            ),
            (
                json!({"claim": "phone", "op": "none_of", "values": ["1"]}),
                true,
            ),
            (
                json!({"claim": "phone", "op": "contains_any", "values": ["1"]}),
                false,
            ),
            (
                json!({"all": [leaf("equals", json!("staff")), {"not": leaf("equals", json!("admins"))}]}),
                true,
            ),
            (
                json!({"all": [leaf("equals", json!("staff")), leaf("equals", json!("admins"))]}),
                false,
            ),
            (
                json!({"any": [leaf("equals", json!("admins")), leaf("glob", json!("*ops*"))]}),
                false,
            ),
            (
                json!({"any": [leaf("equals", json!("admins")), leaf("glob", json!("*Ops*"))]}),
                true,
            ),
            (json!({"not": leaf("equals", json!("staff"))}), false),
        ];
        for (when, expected) in cases {
            assert_eq!(holds(when.clone(), alice()), expected, "{when}");
        }
    }

    #[test]
    fn case_follows_the_rule_then_the_source() {
        let leaf = |case: Option<&str>| {
            let mut leaf =
                json!({"claim": "groups", "op": "contains_any", "values": ["DEVELOPERS"]});
            if let Some(case) = case {
                leaf["case"] = json!(case);
            }
            leaf
        };
        let rules = |case| json!([grant_when("r", leaf(case))]);
        let sensitive_source = claims_from("corp", alice(), true);
        let insensitive_source = claims_from("corp", alice(), false);
        let granted = |rules: Value, claims: &SourceClaims| {
            evaluate_with(rules, claims)
                .entitlement(A, "Developer")
                .is_some()
        };
        assert!(!granted(rules(None), &sensitive_source));
        assert!(granted(rules(None), &insensitive_source));
        assert!(granted(rules(Some("insensitive")), &sensitive_source));
        assert!(!granted(rules(Some("sensitive")), &insensitive_source));
        // Patterns too.
        let regex = json!([grant_when(
            "r",
            json!({"claim": "groups", "op": "regex",
            "value": "ops-.*", "case": "insensitive"})
        )]);
        assert!(granted(regex, &sensitive_source));
        let glob = json!([grant_when(
            "r",
            json!({"claim": "groups", "op": "glob", "value": "OPS-*"})
        )]);
        assert!(granted(glob.clone(), &insensitive_source));
        assert!(!granted(glob, &sensitive_source));
    }

    #[test]
    fn near_misses_explain_case_and_source() {
        let out = evaluate(
            json!([grant_when(
                "r",
                json!({"claim": "groups", "op": "contains_any", "values": ["Developers"]})
            )]),
            alice(),
        );
        let miss = out.not_applied("r").unwrap();
        assert_eq!(miss.reason, "conditions not met");
        let near = miss.near_miss.as_deref().unwrap();
        assert!(near.contains("differs only by case"), "{near}");
        assert!(
            near.contains("\"developers\"") && near.contains("\"Developers\""),
            "{near}"
        );

        // A plain miss has no near miss.
        let out = evaluate(
            json!([grant_when(
                "r",
                json!({"claim": "groups", "op": "equals", "value": "admins"})
            )]),
            alice(),
        );
        assert_eq!(out.not_applied("r").unwrap().near_miss, None);

        // The same group name from another source does not match.
        let rules = json!([grant_when(
            "r",
            json!({"claim": "groups", "op": "equals", "value": "developers"})
        )]);
        let out = evaluate_with(rules, &claims_from("other-idp", alice(), true));
        assert!(out.entitlements.is_empty());
        let miss = out.not_applied("r").unwrap();
        assert_eq!(miss.reason, "rule is scoped to source corp");
        assert!(miss.near_miss.as_deref().unwrap().contains("other-idp"));
    }

    #[test]
    fn deny_wins_whatever_the_priority() {
        let rules = json!([
            {"id": "g", "name": "", "effect": "grant", "source": ["corp"], "priority": 1,
             "when": {"claim": "groups", "op": "equals", "value": "staff"},
             "grant": [{"account": A, "role": "Admin"}, {"account": A, "role": "Developer"}]},
            {"id": "d", "name": "", "effect": "deny", "source": "any", "priority": 1000,
             "when": {"claim": "email", "op": "glob", "value": "*@example.com"},
             "target": {"accounts": [A], "roles": ["admin"]}}
        ]);
        let out = evaluate(rules.clone(), alice());
        assert!(out.entitlement(A, "Admin").is_none());
        assert!(out.entitlement(A, "Developer").is_some());
        let [removed] = out.removed.as_slice() else {
            panic!("{:?}", out.removed)
        };
        assert_eq!(
            (removed.account.as_str(), removed.role.as_str()),
            (A, "Admin")
        );
        assert_eq!(removed.denied_by, ["d"]);
        assert_eq!(removed.granted_by[0].rule, "g");
        assert_eq!(removed.granted_by[0].matched, ["groups=staff"]);

        // "any" reaches identities from every source; the grant is scoped to corp.
        let mut other = rules;
        other[0]["source"] = json!(["corp", "other"]);
        let out = evaluate_with(other, &claims_from("other", alice(), true));
        assert_eq!(out.removed.len(), 1);
    }

    #[test]
    fn for_each_yields_one_grant_per_matching_value() {
        let rules = json!([{"id": "fe", "name": "", "effect": "grant", "source": ["corp"],
            "for_each": {"claim": "groups", "regex": r"aws#(?P<account>[0-9]{12})#(?P<role>[\w+=,.@-]{1,64})"},
            "grant": [{"account": "${match.account}", "role": "${match.role}"}]}]);
        let groups = json!({"groups": [
            format!("aws#{A}#Developer"), format!("aws#{B}#readonly"), "aws#333333333333#Developer",
            format!("aws#{A}#Ghost"), format!("x-aws#{A}#Admin"), "staff"]});
        let out = evaluate(rules, groups);
        let granted: Vec<(&str, &str)> = out
            .entitlements
            .iter()
            .map(|e| (e.account.as_str(), e.role.as_str()))
            .collect();
        assert_eq!(granted, [(A, "Developer"), (B, "ReadOnly")]);
        assert_eq!(
            out.entitlement(B, "ReadOnly").unwrap().granted_by[0].matched,
            [format!("groups=aws#{B}#readonly")]
        );
        assert!(
            out.warned("UNKNOWN_ACCOUNT") && out.warned("UNKNOWN_ROLE"),
            "{:?}",
            out.warnings
        );

        let none = evaluate(
            json!([{"id": "fe", "name": "", "effect": "grant", "source": ["corp"],
                "for_each": {"claim": "groups", "regex": "aws#(?P<role>.+)"},
                "grant": [{"account": A, "role": "${match.role}"}]}]),
            alice(),
        );
        assert!(
            none.not_applied("fe")
                .unwrap()
                .reason
                .contains("for_each matched no value")
        );
    }

    #[test]
    fn unknown_grants_are_skipped_and_the_rest_apply() {
        let rules = json!([{"id": "g", "name": "", "effect": "grant", "source": ["corp"],
            "grant": [{"account": A, "role": "Ghost"}, {"account": "999999999999", "role": "Developer"},
                      {"account": A, "role": "developer"}, {"account": "*", "role": "ReadOnly"},
                      {"account": "*", "role": "Nobody"}]}]);
        let out = evaluate(rules, alice());
        let granted: Vec<(&str, &str)> = out
            .entitlements
            .iter()
            .map(|e| (e.account.as_str(), e.role.as_str()))
            .collect();
        assert_eq!(
            granted,
            [(A, "Developer"), (A, "ReadOnly"), (B, "ReadOnly")]
        );
        let codes: Vec<&str> = out.warnings.iter().map(|w| w.code).collect();
        assert_eq!(codes, ["UNKNOWN_ROLE", "UNKNOWN_ACCOUNT", "UNKNOWN_ROLE"]);
        assert!(out.warnings.iter().all(|w| w.rule.as_deref() == Some("g")));
    }

    #[test]
    fn entitlements_merge_and_rules_run_in_priority_then_id_order() {
        let rules = json!([
            grant_when("z", json!({"claim": "groups", "op": "equals", "value": "staff"})),
            grant_when("b", json!({"claim": "groups", "op": "equals", "value": "developers"})),
            {"id": "a", "name": "", "effect": "grant", "source": ["corp"], "priority": 100, "enabled": false,
             "grant": [{"account": A, "role": "Admin"}]},
            {"id": "c", "name": "", "effect": "grant", "source": ["corp"], "priority": 5,
             "when": {"claim": "groups", "op": "equals", "value": "nobody"},
             "grant": [{"account": A, "role": "Admin"}]},
        ]);
        let out = evaluate(rules, alice());
        let [e] = out.entitlements.as_slice() else {
            panic!("{:?}", out.entitlements)
        };
        let by: Vec<&str> = e.granted_by.iter().map(|g| g.rule.as_str()).collect();
        assert_eq!(by, ["b", "z"]);
        let skipped: Vec<(&str, &str)> = out
            .not_applied
            .iter()
            .map(|n| (n.rule.as_str(), n.reason.as_str()))
            .collect();
        assert_eq!(skipped, [("c", "conditions not met"), ("a", "disabled")]);
    }

    #[test]
    fn validity_windows_use_the_given_time() {
        let windowed = |valid: Value| {
            let mut rule = grant_when("r", Value::Null);
            rule.as_object_mut().unwrap().remove("when");
            rule["valid"] = valid;
            evaluate(json!([rule]), alice())
        };
        let out = windowed(json!({"not_after": "2026-05-31T00:00:00Z"}));
        assert_eq!(out.not_applied("r").unwrap().reason, "expired");
        let out = windowed(json!({"not_before": "2026-06-02T00:00:00Z"}));
        assert_eq!(out.not_applied("r").unwrap().reason, "not yet valid");
        let out = windowed(
            json!({"not_before": "2026-05-01T00:00:00Z", "not_after": "2026-07-01T00:00:00Z"}),
        );
        assert!(out.entitlement(A, "Developer").is_some());
    }

    fn session_rule(id: &str, priority: i32, session: Value) -> Value {
        json!({"id": id, "name": "", "effect": "session", "source": ["corp"], "priority": priority,
               "session": session})
    }

    fn developer_session(rules: Value, claims: Value) -> (SessionSettings, Evaluation) {
        let mut list = rules.as_array().unwrap().clone();
        list.push(grant_when(
            "grant",
            json!({"claim": "groups", "op": "equals", "value": "staff"}),
        ));
        let out = evaluate(Value::Array(list), claims);
        let session = out.entitlement(A, "Developer").unwrap().session.clone();
        (session, out)
    }

    #[test]
    fn session_templates_render_within_sts_limits() {
        let claims = json!({"groups": ["staff"], "email": "Alice.Smith@Example.com",
            "department": "eng", "bio": "x".repeat(300), "nickname": "has space"});
        let (session, out) = developer_session(
            json!([session_rule(
                "s",
                10,
                json!({
                "name": "${claims.email|lower|truncate:64}",
                "source_identity": "${claims.nickname}",
                "tags": {"department": "${claims.department|upper}", "cost-center": "${claims.cost_center|default:none}",
                         "team": "${claims.team}", "bio": "${claims.bio}", "short-bio": "${claims.bio|truncate:256}"},
                "transitive_tag_keys": ["department", "team"],
                "max_duration_seconds": 7200})
            )]),
            claims,
        );
        assert_eq!(session.name.as_deref(), Some("alice.smith@example.com"));
        assert_eq!(session.source_identity, None);
        assert_eq!(
            session.tags.get("department").map(String::as_str),
            Some("ENG")
        );
        assert_eq!(
            session.tags.get("cost-center").map(String::as_str),
            Some("none")
        );
        assert_eq!(session.tags.get("short-bio").map(|v| v.len()), Some(256));
        assert!(!session.tags.contains_key("team") && !session.tags.contains_key("bio"));
        assert_eq!(session.transitive_tag_keys, ["department"]);
        // Capped at the role's maximum (Developer in A: 3600 s).
        assert_eq!(session.max_duration_seconds, Some(3600));
        assert_eq!(session.from_rules, ["s"]);
        for code in [
            "MISSING_CLAIM",
            "TAG_VALUE_TOO_LONG",
            "INVALID_SOURCE_IDENTITY",
            "MAX_DURATION_CAPPED",
        ] {
            assert!(out.warned(code), "{code}: {:?}", out.warnings);
        }
        assert!(!serde_json::to_string(&out).unwrap().contains("\"${"));

        let (session, out) = developer_session(
            json!([session_rule(
                "s",
                10,
                json!({"name": "${claims.email|replace:@:#}"})
            )]),
            json!({"groups": ["staff"], "email": "a@b.c"}),
        );
        assert_eq!(session.name, None);
        assert!(out.warned("INVALID_SESSION_NAME"));
    }

    #[test]
    fn priority_settles_session_conflicts_and_says_so() {
        let (session, out) = developer_session(
            json!([
                session_rule(
                    "late",
                    20,
                    json!({"name": "late-name", "tags": {"team": "b", "only-late": "x"}})
                ),
                session_rule(
                    "early",
                    10,
                    json!({"name": "early-name", "tags": {"Team": "a"}})
                ),
                session_rule("same", 30, json!({"name": "early-name"})),
            ]),
            json!({"groups": ["staff"]}),
        );
        assert_eq!(session.name.as_deref(), Some("early-name"));
        assert_eq!(session.tags.get("Team").map(String::as_str), Some("a"));
        assert!(!session.tags.contains_key("team"));
        assert_eq!(session.tags.get("only-late").map(String::as_str), Some("x"));
        assert_eq!(session.from_rules, ["early", "late"]);
        let conflicts: Vec<&Warning> = out
            .warnings
            .iter()
            .filter(|w| w.code == "SESSION_CONFLICT")
            .collect();
        assert_eq!(conflicts.len(), 2, "{conflicts:?}");
        assert!(conflicts.iter().all(|w| w.rule.as_deref() == Some("late")
            && w.message.contains("early")
            && w.message.contains("late")));
    }

    #[test]
    fn at_most_fifty_session_tags() {
        let tags = |prefix: &str| -> Value {
            (0..30)
                .map(|i| (format!("{prefix}{i:02}"), json!("v")))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let (session, out) = developer_session(
            json!([
                session_rule("a", 10, json!({"tags": tags("a")})),
                session_rule("b", 20, json!({"tags": tags("b")}))
            ]),
            json!({"groups": ["staff"]}),
        );
        assert_eq!(session.tags.len(), MAX_SESSION_TAGS);
        assert!(session.tags.contains_key("a29") && !session.tags.contains_key("b29"));
        assert!(out.warned("TOO_MANY_TAGS"));
    }

    #[test]
    fn session_scope_and_grant_rule_sessions() {
        let rules = json!([
            {"id": "admins-only", "name": "", "effect": "session", "source": ["corp"],
             "target": {"roles": ["Admin"]}, "session": {"name": "admin-session"}},
            {"id": "fe", "name": "", "effect": "grant", "source": ["corp"],
             "for_each": {"claim": "groups", "regex": "team-(?P<team>[a-z]+)"},
             "grant": [{"account": B, "role": "Developer"}],
             "session": {"tags": {"team": "${match.team}"}}}
        ]);
        let out = evaluate(rules, json!({"groups": ["team-blue"]}));
        let e = out.entitlement(B, "Developer").unwrap();
        assert_eq!(e.session.name, None);
        assert_eq!(e.session.tags.get("team").map(String::as_str), Some("blue"));
        assert_eq!(e.granted_by[0].matched, ["groups=team-blue"]);
    }

    #[test]
    fn catastrophic_patterns_run_in_linear_time() {
        let rules = json!([grant_when(
            "r",
            json!({"claim": "blob", "op": "regex", "value": "(a+)+$"})
        )]);
        let long = "a".repeat(100_000);
        assert!(
            evaluate(rules.clone(), json!({"blob": long}))
                .entitlement(A, "Developer")
                .is_some()
        );
        let almost = format!("{}b", "a".repeat(100_000));
        assert!(
            evaluate(rules, json!({"blob": almost}))
                .entitlement(A, "Developer")
                .is_none()
        );
    }

    #[test]
    fn identities_evaluate_through_their_hygiene() {
        let identity = crate::idp::identity::Identity {
            source_id: "entra".into(),
            subject: "s".into(),
            user_name: "bob".into(),
            display_name: "Bob".into(),
            email: None,
            groups: vec!["3F2A9C1E-5B7D-4E8F-9A0B-1C2D3E4F5A6B".into()],
            attributes: Default::default(),
            claims: Default::default(),
        };
        let claims = SourceClaims::from_identity(&identity, &ClaimsHygiene::default()).unwrap();
        let mut rule = grant_when(
            "r",
            json!({"claim": "groups", "op": "equals",
            "value": "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"}),
        );
        rule["source"] = json!(["entra"]);
        let out = evaluate_with(json!([rule]), &claims);
        assert!(out.entitlement(A, "Developer").is_some(), "{out:?}");
    }
}
