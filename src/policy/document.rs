//! Parsing, validation (with IAM's error messages) and compilation of policy
//! documents.
//!
//! Validation runs in the same order as IAM so that the first problem found
//! yields the message IAM would give: JSON syntax and structure, version,
//! "legacy parsing" (exact-case `Effect`, date values, resource ARN shape),
//! `Sid` uniqueness, presence of actions, resource format, action prefixes,
//! presence of resources, and finally the rules of the policy kind.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::action::ActionMatcher;
use super::condition::{Condition, Operator};
use super::error::{self, PolicyError};
use super::locate::{char_column, position_of, token};
use super::principal::PrincipalSpec;
use super::resource::ResourceMatcher;

/// Customer managed policy size quota (non-whitespace characters).
pub const CUSTOMER_POLICY_SIZE_LIMIT: usize = 6_144;

/// What a policy document is attached to; decides which elements it must or
/// must not have. A permissions boundary is an `Identity` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Attached to a user, group or role (also used as permissions boundary).
    Identity,
    /// Attached to a resource; needs `Principal`/`NotPrincipal`.
    Resource,
    /// A role's trust policy; needs `Principal`/`NotPrincipal`, no `Resource`.
    Trust,
    /// Passed to AssumeRole*/GetFederationToken to restrict a session.
    Session,
}

impl PolicyKind {
    /// The lower-case name (`identity`, `resource`, `trust`, `session`).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Identity => "identity",
            PolicyKind::Resource => "resource",
            PolicyKind::Trust => "trust",
            PolicyKind::Session => "session",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown [`PolicyKind`] name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPolicyKind(pub String);

impl fmt::Display for UnknownPolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown policy kind {:?} (expected identity, resource, trust or session)",
            self.0
        )
    }
}

impl std::error::Error for UnknownPolicyKind {}

impl FromStr for PolicyKind {
    type Err = UnknownPolicyKind;

    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "identity" => Ok(PolicyKind::Identity),
            "resource" => Ok(PolicyKind::Resource),
            "trust" => Ok(PolicyKind::Trust),
            "session" => Ok(PolicyKind::Session),
            _ => Err(UnknownPolicyKind(s.to_owned())),
        }
    }
}

/// How to parse a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    pub kind: PolicyKind,
    /// Validate as an IAM customer managed policy (CreatePolicy): at most
    /// 6,144 non-whitespace characters (else `LimitExceeded`) and, for
    /// identity policies, `"Version": "2012-10-17"` is required. AWS managed
    /// policies and inline documents skip both.
    pub enforce_customer_size_limit: bool,
}

impl ParseOptions {
    /// Options for `kind` without the customer managed policy rules.
    pub fn new(kind: PolicyKind) -> Self {
        ParseOptions {
            kind,
            enforce_customer_size_limit: false,
        }
    }

    /// Options for a customer managed policy of `kind`.
    pub fn customer_managed(kind: PolicyKind) -> Self {
        ParseOptions {
            kind,
            enforce_customer_size_limit: true,
        }
    }
}

/// `Effect` of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

/// The policy language version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyVersion {
    /// `2012-10-17`: policy variables are substituted.
    V2012_10_17,
    /// `2008-10-17`: `${...}` is literal text.
    V2008_10_17,
    /// No `Version` element (treated like 2008-10-17).
    Unspecified,
}

#[derive(Debug, Clone)]
pub(crate) enum PrincipalElement {
    /// Identity/session policies (and trust/resource statements can't lack one).
    None,
    Principal(PrincipalSpec),
    NotPrincipal(PrincipalSpec),
}

/// One compiled statement.
#[derive(Debug, Clone)]
pub struct Statement {
    index: usize,
    sid: Option<Box<str>>,
    effect: Effect,
    pub(crate) principal: PrincipalElement,
    pub(crate) actions: ActionMatcher,
    pub(crate) not_action: bool,
    /// `None`: no Resource/NotResource element (trust policies).
    pub(crate) resources: Option<ResourceMatcher>,
    pub(crate) not_resource: bool,
    pub(crate) conditions: Box<[Condition]>,
}

impl Statement {
    /// Position in the policy's `Statement` list (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// `Sid`, if present (an empty `Sid` is reported as `None`).
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// `Allow` or `Deny`.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Number of (operator, key) conditions.
    pub fn condition_count(&self) -> usize {
        self.conditions.len()
    }
}

#[derive(Debug)]
struct Inner {
    id: Option<String>,
    version: PolicyVersion,
    kind: PolicyKind,
    source: String,
    statements: Box<[Statement]>,
}

/// A parsed, validated and compiled policy. Immutable; cheap to clone
/// (shared), `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

impl Policy {
    /// Parses and validates `text`, returning IAM's error message for the
    /// first problem found.
    /// The error's [`location`](PolicyError::location) names the element at fault
    /// and where it starts in `text`.
    pub fn parse(text: &str, options: ParseOptions) -> Result<Policy, PolicyError> {
        parse(text, options).map_err(|error| {
            let located = error.location().line.is_some();
            match error.location().pointer.as_deref() {
                Some(pointer) if !located => match position_of(text, pointer) {
                    Some((line, column)) => error.at_position(line, column),
                    None => error,
                },
                _ => error,
            }
        })
    }

    /// The `Id` element.
    pub fn id(&self) -> Option<&str> {
        self.inner.id.as_deref()
    }

    /// The `Version` element.
    pub fn version(&self) -> PolicyVersion {
        self.inner.version
    }

    /// The kind it was validated as.
    pub fn kind(&self) -> PolicyKind {
        self.inner.kind
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.inner.statements
    }

    /// The statement at `index`.
    pub fn statement(&self, index: usize) -> Option<&Statement> {
        self.inner.statements.get(index)
    }

    /// The document exactly as given to [`parse`](Policy::parse).
    pub fn source_json(&self) -> &str {
        &self.inner.source
    }
}

/// A string or list of strings (JSON `null` list items are ignored).
struct StrList<'a> {
    items: Vec<&'a str>,
    /// The JSON pointer of each item (of the element itself when it is a string).
    pointers: Vec<String>,
    was_list: bool,
}

impl StrList<'_> {
    /// The pointer of the first item equal to `item`.
    fn pointer_of(&self, item: &str) -> Option<&str> {
        self.items
            .iter()
            .position(|i| *i == item)
            .and_then(|i| self.pointers.get(i))
            .map(String::as_str)
    }
}

/// `pointer` is the element's.
fn str_list<'a>(v: &'a Value, what: &str, pointer: &str) -> Result<StrList<'a>, PolicyError> {
    match v {
        Value::String(s) => Ok(StrList {
            items: vec![s.as_str()],
            pointers: vec![pointer.to_owned()],
            was_list: false,
        }),
        Value::Array(a) => {
            let mut items = Vec::with_capacity(a.len());
            let mut pointers = Vec::with_capacity(a.len());
            for (index, item) in a.iter().enumerate() {
                match item {
                    Value::String(s) => {
                        items.push(s.as_str());
                        pointers.push(format!("{pointer}/{index}"));
                    }
                    Value::Null => {}
                    _ => {
                        return Err(PolicyError::syntax(format!(
                            "{what} must be a string or a list of strings"
                        ))
                        .at(format!("{pointer}/{index}")));
                    }
                }
            }
            Ok(StrList {
                items,
                pointers,
                was_list: true,
            })
        }
        _ => Err(
            PolicyError::syntax(format!("{what} must be a string or a list of strings"))
                .at(pointer),
        ),
    }
}

/// A condition value converted to text.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct RawCondition<'a> {
    /// The operator block's pointer.
    pointer: String,
    operator: Operator,
    entries: Vec<(&'a str, Vec<String>)>,
}

struct RawPrincipal {
    not: bool,
    spec: PrincipalSpec,
}

struct RawStatement<'a> {
    /// The statement's JSON pointer.
    pointer: String,
    sid: Option<&'a str>,
    effect: &'a str,
    action: Option<(bool, StrList<'a>)>,
    resource: Option<(bool, StrList<'a>)>,
    principal: Option<RawPrincipal>,
    conditions: Vec<RawCondition<'a>>,
}

const STATEMENT_KEYS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn exclusive<'a>(
    st: &'a Map<String, Value>,
    positive: &str,
    negative: &str,
    base: &str,
) -> Result<Option<(bool, &'a Value)>, PolicyError> {
    match (st.get(positive), st.get(negative)) {
        (Some(_), Some(_)) => Err(PolicyError::syntax(format!(
            "a statement cannot have both {positive} and {negative}"
        ))
        .at(format!("{base}/{negative}"))),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

fn principal_syntax(v: &Value, element: &str, base: &str) -> Result<PrincipalSpec, PolicyError> {
    let pointer = format!("{base}/{element}");
    let bad = || PolicyError::syntax(format!("invalid {element} element")).at(pointer.as_str());
    match v {
        Value::String(s) if s == "*" => Ok(PrincipalSpec::Everyone),
        Value::Object(map) if !map.is_empty() => {
            let (mut aws, mut federated, mut service, mut canonical) =
                (vec![], vec![], vec![], vec![]);
            for (k, val) in map {
                let list = str_list(val, element, &format!("{pointer}/{}", token(k)))?;
                let target = match k.as_str() {
                    "AWS" => &mut aws,
                    "Federated" => &mut federated,
                    "Service" => &mut service,
                    "CanonicalUser" => &mut canonical,
                    _ => {
                        return Err(PolicyError::syntax(format!(
                            "unknown principal type {k:?} in {element}"
                        ))
                        .at(format!("{pointer}/{}", token(k))));
                    }
                };
                target.extend(list.items.iter().map(|s| (*s).to_owned()));
            }
            Ok(PrincipalSpec::new(aws, federated, service, canonical))
        }
        _ => Err(bad()),
    }
}

fn statement_syntax(v: &Value, base: String) -> Result<RawStatement<'_>, PolicyError> {
    let st = v.as_object().ok_or_else(|| {
        PolicyError::syntax("each statement must be a JSON object").at(base.as_str())
    })?;
    if let Some(k) = st.keys().find(|k| !STATEMENT_KEYS.contains(&k.as_str())) {
        return Err(
            PolicyError::syntax(format!("unknown statement element {k:?}"))
                .at(format!("{base}/{}", token(k))),
        );
    }
    let resource = exclusive(st, "Resource", "NotResource", &base)?;
    let action = exclusive(st, "Action", "NotAction", &base)?;
    let principal = exclusive(st, "Principal", "NotPrincipal", &base)?;
    let effect = match st.get("Effect") {
        Some(Value::String(e))
            if e.eq_ignore_ascii_case("allow") || e.eq_ignore_ascii_case("deny") =>
        {
            e.as_str()
        }
        Some(_) => {
            return Err(PolicyError::syntax("Effect must be \"Allow\" or \"Deny\"")
                .at(format!("{base}/Effect")));
        }
        None => return Err(PolicyError::syntax("statement is missing Effect").at(base.as_str())),
    };
    let element = |not: bool, positive: &str, negative: &str| {
        let name = if not { negative } else { positive };
        (name.to_owned(), format!("{base}/{name}"))
    };
    let action = match action {
        Some((not, v)) => {
            let (name, pointer) = element(not, "Action", "NotAction");
            Some((not, str_list(v, &name, &pointer)?))
        }
        None => None,
    };
    let resource = match resource {
        Some((not, v)) => {
            let (name, pointer) = element(not, "Resource", "NotResource");
            Some((not, str_list(v, &name, &pointer)?))
        }
        None => None,
    };
    let mut conditions = Vec::new();
    if let Some(c) = st.get("Condition") {
        let block = c.as_object().ok_or_else(|| {
            PolicyError::syntax("Condition must be a JSON object").at(format!("{base}/Condition"))
        })?;
        for (op_name, body) in block {
            let op_pointer = format!("{base}/Condition/{}", token(op_name));
            let body = body.as_object().ok_or_else(|| {
                PolicyError::syntax(format!(
                    "condition operator {op_name:?} must map to a JSON object"
                ))
                .at(op_pointer.as_str())
            })?;
            let mut entries = Vec::with_capacity(body.len());
            for (key, value) in body {
                let values = match value {
                    Value::Array(items) => {
                        items.iter().map(scalar_text).collect::<Option<Vec<_>>>()
                    }
                    other => scalar_text(other).map(|s| vec![s]),
                }
                .ok_or_else(|| {
                    PolicyError::syntax(format!(
                        "condition values for {key:?} must be strings, numbers or booleans"
                    ))
                    .at(format!("{op_pointer}/{}", token(key)))
                })?;
                entries.push((key.as_str(), values));
            }
            match Operator::parse(op_name) {
                Some(operator) => conditions.push(RawCondition {
                    pointer: op_pointer,
                    operator,
                    entries,
                }),
                None if entries.is_empty() => {}
                None => {
                    return Err(PolicyError::syntax(format!(
                        "unknown condition operator {op_name:?}"
                    ))
                    .at(op_pointer));
                }
            }
        }
    }
    let sid = match st.get("Sid") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(PolicyError::syntax("Sid must be a string").at(format!("{base}/Sid")));
        }
        None => None,
    };
    let principal = match principal {
        Some((not, v)) => Some(RawPrincipal {
            not,
            spec: principal_syntax(v, if not { "NotPrincipal" } else { "Principal" }, &base)?,
        }),
        None => None,
    };
    Ok(RawStatement {
        pointer: base,
        sid,
        effect,
        action,
        resource,
        principal,
        conditions,
    })
}

/// Python-style `str.partition(':')`.
fn partition(s: &str) -> (&str, bool, &str) {
    match s.split_once(':') {
        Some((a, b)) => (a, true, b),
        None => (s, false, ""),
    }
}

fn valid_partition(p: &str) -> bool {
    p == "aws"
        || p == "*"
        || p.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

const IAM_PATH_PREFIXES: [&str; 13] = [
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
];

fn iam_path_ok(path: &str) -> bool {
    if path == "root"
        || path.starts_with("${")
        || IAM_PATH_PREFIXES.iter().any(|p| path.starts_with(p))
    {
        return true;
    }
    // A wildcard before the type is complete (`*`, `ro*`, `user*`) may still
    // match a valid type.
    match path.find(['*', '?']) {
        Some(i) => {
            let head = &path[..i];
            IAM_PATH_PREFIXES
                .iter()
                .chain(std::iter::once(&"root"))
                .any(|p| p.starts_with(head) || head.starts_with(p))
        }
        None => false,
    }
}

/// The IAM message for a resource that is not an acceptable ARN pattern.
fn resource_format_error(resource: &str) -> Option<String> {
    if resource == "*" {
        return None;
    }
    let (_, has_colon, rest) = partition(resource);
    if !has_colon {
        return Some(format!(
            "Resource {resource} must be in ARN format or \"*\"."
        ));
    }
    let (part, has_sep, rest) = partition(rest);
    if !valid_partition(part) {
        let remaining: Vec<&str> = rest.split(':').collect();
        let n = remaining.len();
        let arn1 = if !remaining[0].is_empty() || n > 1 {
            remaining[0]
        } else {
            "*"
        };
        let arn2 = if n > 1 { remaining[1] } else { "*" };
        let arn3 = if n > 2 { remaining[2] } else { "*" };
        let arn4 = if n > 3 {
            remaining[3..].join(":")
        } else {
            "*".to_owned()
        };
        return Some(format!(
            "Partition \"{part}\" is not valid for resource \"arn:{part}:{arn1}:{arn2}:{arn3}:{arn4}\"."
        ));
    }
    if !has_sep {
        return Some(
            "Resource vendor must be fully qualified and cannot contain regexes.".to_owned(),
        );
    }
    let (service, _, after_service) = partition(rest);
    let has_region = !after_service.starts_with(':');
    let (_, _, after_region) = partition(after_service);
    let (account, _, path) = partition(after_region);
    match service {
        "iam" if has_region => {
            return Some(format!(
                "IAM resource {resource} cannot contain region information."
            ));
        }
        // Bucket and object ARNs have neither region nor account; access
        // points and jobs (with an account) do have a region.
        "s3" if has_region && account.is_empty() => {
            return Some(format!(
                "Resource {resource} can not contain region information."
            ));
        }
        "iam" if !iam_path_ok(path) => {
            return Some(format!(
                "IAM resource path must either be \"*\" or start with {}.",
                IAM_PATH_PREFIXES.join(", ")
            ));
        }
        _ => {}
    }
    None
}

/// IAM's "legacy" ARN shape checks, applied when no format error was found.
fn legacy_resources_ok(list: &StrList<'_>) -> bool {
    let shape_ok = |r: &str| r.matches(':').count() >= 5 || !r.contains("::");
    if list.was_list {
        list.items
            .iter()
            .all(|r| *r == "*" || (shape_ok(r) && r.chars().nth(2).is_some()))
    } else {
        list.items.iter().all(|r| {
            *r == "*"
                || (shape_ok(r)
                    && r.split(':')
                        .nth(2)
                        .is_some_and(|service| !service.is_empty()))
        })
    }
}

fn action_prefix_error(action: &str) -> Option<String> {
    let parts: Vec<&str> = action.split(':').collect();
    if parts.len() == 1 && parts[0] != "*" {
        return Some(error::NEEDS_VENDOR.to_owned());
    }
    if parts.len() > 2 {
        return Some(error::ONE_COLON.to_owned());
    }
    let vendor = parts[0];
    if vendor != "*"
        && vendor
            .bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return Some(format!("Vendor {vendor} is not valid"));
    }
    None
}

/// The pointer of a statement's Resource (or NotResource) element; the statement's
/// own when it has neither.
fn resource_pointer(st: &RawStatement<'_>) -> String {
    match &st.resource {
        Some((true, _)) => format!("{}/NotResource", st.pointer),
        Some((false, _)) => format!("{}/Resource", st.pointer),
        None => st.pointer.clone(),
    }
}

fn non_whitespace_chars(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

fn parse(text: &str, options: ParseOptions) -> Result<Policy, PolicyError> {
    if options.enforce_customer_size_limit
        && non_whitespace_chars(text) > CUSTOMER_POLICY_SIZE_LIMIT
    {
        return Err(PolicyError::limit_exceeded(CUSTOMER_POLICY_SIZE_LIMIT).at(""));
    }

    // 1. Syntax and structure.
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        PolicyError::syntax(format!("invalid JSON: {e}"))
            .at_position(e.line(), char_column(text, e.line(), e.column()))
    })?;
    let top = doc
        .as_object()
        .ok_or_else(|| PolicyError::syntax("the policy document must be a JSON object").at(""))?;
    if let Some(k) = top
        .keys()
        .find(|k| !matches!(k.as_str(), "Version" | "Id" | "Statement"))
    {
        return Err(
            PolicyError::syntax(format!("unknown top-level element {k:?}"))
                .at(format!("/{}", token(k))),
        );
    }
    let version = match top.get("Version") {
        None => PolicyVersion::Unspecified,
        Some(Value::String(v)) if v == "2012-10-17" => PolicyVersion::V2012_10_17,
        Some(Value::String(v)) if v == "2008-10-17" => PolicyVersion::V2008_10_17,
        Some(_) => {
            return Err(
                PolicyError::syntax("Version must be \"2012-10-17\" or \"2008-10-17\"")
                    .at("/Version"),
            );
        }
    };
    let id = match top.get("Id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(PolicyError::syntax("Id must be a string").at("/Id")),
    };
    let statement_values: Vec<(&Value, String)> = match top.get("Statement") {
        Some(v @ Value::Object(_)) => vec![(v, "/Statement".to_owned())],
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .enumerate()
            .map(|(i, v)| (v, format!("/Statement/{i}")))
            .collect(),
        Some(_) => {
            return Err(
                PolicyError::syntax("Statement must be an object or a non-empty list")
                    .at("/Statement"),
            );
        }
        None => {
            return Err(PolicyError::syntax("the policy document has no Statement").at(""));
        }
    };
    let raw: Vec<RawStatement<'_>> = statement_values
        .into_iter()
        .map(|(v, pointer)| statement_syntax(v, pointer))
        .collect::<Result<_, _>>()?;

    // 2. Version.
    if options.kind == PolicyKind::Identity
        && options.enforce_customer_size_limit
        && version != PolicyVersion::V2012_10_17
    {
        let pointer = if top.contains_key("Version") {
            "/Version"
        } else {
            ""
        };
        return Err(PolicyError::malformed(error::NEEDS_2012_VERSION).at(pointer));
    }
    let variables = version == PolicyVersion::V2012_10_17;

    // 3. Kind rules.
    for st in &raw {
        match options.kind {
            PolicyKind::Identity | PolicyKind::Session if st.principal.is_some() => {
                let not = st.principal.as_ref().is_some_and(|p| p.not);
                let element = if not { "NotPrincipal" } else { "Principal" };
                return Err(PolicyError::malformed(error::NO_PRINCIPAL_ALLOWED)
                    .at(format!("{}/{element}", st.pointer)));
            }
            PolicyKind::Resource | PolicyKind::Trust if st.principal.is_none() => {
                return Err(
                    PolicyError::malformed(error::PRINCIPAL_REQUIRED).at(st.pointer.as_str())
                );
            }
            PolicyKind::Trust if st.resource.is_some() => {
                return Err(
                    PolicyError::malformed(error::RESOURCE_PROHIBITED).at(resource_pointer(st))
                );
            }
            _ => {}
        }
    }

    // 4. Legacy parsing: exact-case Effect, condition values, ARN shapes.
    let mut conditions: Vec<Vec<Condition>> = Vec::with_capacity(raw.len());
    for st in &raw {
        if st.effect != "Allow" && st.effect != "Deny" {
            return Err(PolicyError::legacy(format!(
                "Effect must be spelled \"Allow\" or \"Deny\", not {:?}",
                st.effect
            ))
            .at(format!("{}/Effect", st.pointer)));
        }
        let mut compiled = Vec::new();
        for rc in &st.conditions {
            for (key, values) in &rc.entries {
                compiled.push(
                    Condition::compile(rc.operator, key, values, variables)
                        .map_err(|e| e.at(format!("{}/{}", rc.pointer, token(key))))?,
                );
            }
        }
        conditions.push(compiled);
    }
    // The message and the pointer of the resource at fault.
    let mut resource_error: Option<(String, String)> = None;
    for negated in [false, true] {
        for st in &raw {
            let Some((not, list)) = &st.resource else {
                continue;
            };
            if *not != negated {
                continue;
            }
            let mut sorted = list.items.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            for r in sorted {
                if let Some(e) = resource_format_error(r) {
                    let pointer = list
                        .pointer_of(r)
                        .map_or_else(|| resource_pointer(st), str::to_owned);
                    resource_error = Some((e, pointer));
                }
            }
            if resource_error.is_none() && !legacy_resources_ok(list) {
                return Err(PolicyError::legacy("resource is not a well-formed ARN")
                    .at(resource_pointer(st)));
            }
        }
    }

    // 5. Sid uniqueness.
    let mut seen: Vec<&str> = Vec::new();
    for st in &raw {
        let Some(sid) = st.sid.filter(|s| !s.is_empty()) else {
            continue;
        };
        if seen.contains(&sid) {
            return Err(PolicyError::malformed(error::SID_NOT_UNIQUE)
                .with_detail(format!("duplicate Sid {sid:?}"))
                .at(format!("{}/Sid", st.pointer)));
        }
        seen.push(sid);
    }

    // 6. Actions present.
    for st in &raw {
        match &st.action {
            Some((_, list)) if !(list.was_list && list.items.is_empty()) => {}
            Some((not, _)) => {
                let element = if *not { "NotAction" } else { "Action" };
                return Err(PolicyError::malformed(error::MUST_CONTAIN_ACTIONS)
                    .at(format!("{}/{element}", st.pointer)));
            }
            None => {
                return Err(
                    PolicyError::malformed(error::MUST_CONTAIN_ACTIONS).at(st.pointer.as_str())
                );
            }
        }
    }

    // 7. Resource format.
    if let Some((e, pointer)) = resource_error {
        return Err(PolicyError::malformed(e).at(pointer));
    }

    // 8. Action prefixes (all Action elements, then all NotAction elements).
    for negated in [false, true] {
        for st in &raw {
            if let Some((not, list)) = &st.action
                && *not == negated
                && let Some((e, pointer)) = list
                    .items
                    .iter()
                    .zip(&list.pointers)
                    .find_map(|(a, pointer)| action_prefix_error(a).map(|e| (e, pointer.clone())))
            {
                return Err(PolicyError::malformed(e).at(pointer));
            }
        }
    }

    // 9. Resources present.
    if options.kind != PolicyKind::Trust {
        for st in &raw {
            match &st.resource {
                Some((_, list)) if !(list.was_list && list.items.is_empty()) => {}
                Some(_) => {
                    return Err(PolicyError::malformed(error::MUST_CONTAIN_RESOURCES)
                        .at(resource_pointer(st)));
                }
                None => {
                    return Err(PolicyError::malformed(error::MUST_CONTAIN_RESOURCES)
                        .at(st.pointer.as_str()));
                }
            }
        }
    }

    // Compile.
    let statements: Box<[Statement]> = raw
        .into_iter()
        .zip(conditions)
        .enumerate()
        .map(|(index, (st, conditions))| {
            let (not_action, actions) = match st.action {
                Some((not, list)) => (not, ActionMatcher::new(list.items.iter().copied())),
                None => (false, ActionMatcher::default()),
            };
            let (not_resource, resources) = match st.resource {
                Some((not, list)) => (
                    not,
                    Some(ResourceMatcher::new(list.items.iter().copied(), variables)),
                ),
                None => (false, None),
            };
            Statement {
                index,
                sid: st.sid.filter(|s| !s.is_empty()).map(Into::into),
                effect: if st.effect == "Deny" {
                    Effect::Deny
                } else {
                    Effect::Allow
                },
                principal: match st.principal {
                    None => PrincipalElement::None,
                    Some(RawPrincipal { not: false, spec }) => PrincipalElement::Principal(spec),
                    Some(RawPrincipal { not: true, spec }) => PrincipalElement::NotPrincipal(spec),
                },
                actions,
                not_action,
                resources,
                not_resource,
                conditions: conditions.into_boxed_slice(),
            }
        })
        .collect();

    Ok(Policy {
        inner: Arc::new(Inner {
            id,
            version,
            kind: options.kind,
            source: text.to_owned(),
            statements,
        }),
    })
}

/// The most a resource-based policy supplied with a request may hold (20 KiB, IAM's
/// limit for the largest resource policies, S3 bucket policies).
pub const MAX_SUPPLIED_RESOURCE_POLICY: usize = 20 * 1024;

/// A resource-based policy supplied with a request (`/v1/authorize`, the console's
/// "Can I?"), bounded before it is parsed: `None` when blank, else the policy or why
/// not. One function, so both places give the same answer.
pub fn parse_supplied_resource_policy(text: &str) -> Result<Option<Policy>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_SUPPLIED_RESOURCE_POLICY {
        return Err(format!(
            "the resource policy is longer than {MAX_SUPPLIED_RESOURCE_POLICY} bytes"
        ));
    }
    Policy::parse(text, ParseOptions::new(PolicyKind::Resource))
        .map(Some)
        .map_err(|error| error.to_string())
}
