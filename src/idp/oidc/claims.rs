//! From validated claims to an [`Identity`]: names, groups and session-tag attributes.

use super::*;

/// A claim by name; a dotted name also finds a nested claim.
pub(super) fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if name.is_empty() {
        return None;
    }
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

pub(super) fn text_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    let value = claim(claims, name)?.as_str()?.trim();
    if value.is_empty() || value.chars().any(char::is_control) {
        return None;
    }
    Some(value.chars().take(MAX_NAME_LEN).collect())
}

/// Group names from an array (of strings) or one delimited string.
pub fn groups_from(value: Option<&Value>, delimiter: &str) -> Result<Vec<String>, OidcError> {
    let raw: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(delimiter).map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(_) => {
            return Err(OidcError::Claims(
                "the groups claim is neither an array nor a string".into(),
            ));
        }
    };
    let mut seen = BTreeSet::new();
    let mut groups = Vec::new();
    for group in raw {
        let group = group.trim();
        if group.is_empty() || group.chars().any(char::is_control) {
            continue;
        }
        if seen.insert(group.to_lowercase()) {
            groups.push(group.to_owned());
        }
    }
    if groups.len() > MAX_GROUPS {
        return Err(OidcError::Claims(format!(
            "{} groups; at most {MAX_GROUPS} are accepted",
            groups.len()
        )));
    }
    Ok(groups)
}

/// Maps validated claims to a portal identity with the source's claim names.
pub fn map_identity(
    source_id: &str,
    claims: &Map<String, Value>,
    names: &ClaimNames,
) -> Result<Identity, OidcError> {
    let subject =
        text_claim(claims, "sub").ok_or_else(|| OidcError::Claims("no sub claim".into()))?;
    // An address the provider says it has not verified is not an identity.
    let verified = claims
        .get("email_verified")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let email = text_claim(claims, &names.email).filter(|_| verified);
    let user_name = text_claim(claims, &names.user_name)
        .or_else(|| email.clone())
        .unwrap_or_else(|| subject.clone());
    let display_name = text_claim(claims, &names.display_name).unwrap_or_else(|| user_name.clone());
    let groups = groups_from(claim(claims, &names.groups), &names.groups_delimiter)?;
    let other_claims = claims
        .iter()
        .filter(|(name, _)| !TOKEN_CLAIMS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()));
    Ok(Identity {
        source_id: source_id.to_owned(),
        subject,
        user_name,
        display_name,
        email,
        groups,
        attributes: BTreeMap::new(),
        claims: bounded_claims(source_id, other_claims),
    })
}

/// Claims about the token rather than the person: not kept in the identity.
pub(super) const TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "at_hash",
    "c_hash",
    "azp",
    "auth_time",
    "jti",
    "sid",
];

/// A claim as a session-tag value: strings, numbers and booleans.
pub(super) fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claim(claims, name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The session-tag attributes of a sign-in, by the source's `session_tags`
/// (tag key → claim name); skipped tags are logged.
pub fn claim_attributes(
    source_id: &str,
    user_name: &str,
    claims: &Map<String, Value>,
    session_tags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let (tags, skipped) =
        crate::sts::portal::select_attributes(session_tags, |name| claim_text(claims, name));
    crate::sts::portal::log_skipped_tags(source_id, user_name, &skipped);
    tags
}

// ---------------------------------------------------------------------------
// RP-initiated logout
// ---------------------------------------------------------------------------
