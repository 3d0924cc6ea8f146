//! Role sessions for people signed in to the portal: their session names and tags.
//! The broker itself vouches for the identity, so the gate is the entitlement, as in
//! IAM Identity Center; which roles an identity is granted is [`crate::mapping`]'s to
//! decide, and the issuance service issues.
//!
//! Session tags from user attributes: an identity source's `session_tags` setting
//! (tag key → attribute or claim name, in the source's `config` JSON) selects which
//! of the user's attributes become session tags; they are picked at sign-in into
//! [`Identity::attributes`] and every role session issued for the identity
//! carries them, so policies can use `${aws:PrincipalTag/<key>}`. A value that breaks
//! IAM's tag rules is skipped (and logged), never a reason to refuse the sign-in.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::iam::Tag;
use crate::idp::identity::Identity;
use crate::store::User;

/// IAM's longest tag value.
const MAX_TAG_VALUE: usize = 256;

/// Checks a `session_tags` setting (tag key → attribute name): at most 50 entries,
/// keys valid IAM tag keys (not `aws:`), unique ignoring case; names not empty.
pub fn check_session_tags(mapping: &BTreeMap<String, String>) -> Result<(), String> {
    if mapping.len() > super::assume::MAX_SESSION_TAGS {
        return Err(format!(
            "session_tags has {} entries; at most {} are allowed",
            mapping.len(),
            super::assume::MAX_SESSION_TAGS
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (key, attribute) in mapping {
        Tag::parse(key.clone(), "").map_err(|e| format!("session_tags: {e}"))?;
        if !seen.insert(key.to_lowercase()) {
            return Err(format!(
                "session_tags: tag key {key:?} appears twice (keys are case-insensitive)"
            ));
        }
        if attribute.trim().is_empty() {
            return Err(format!(
                "session_tags: tag {key:?} names no attribute or claim"
            ));
        }
    }
    Ok(())
}

/// A session-tag value from an attribute: trimmed and cut to 256 characters; `None`
/// when empty or when it holds characters IAM does not allow in tag values.
pub fn session_tag_value(raw: &str) -> Option<String> {
    let value: String = raw.trim().chars().take(MAX_TAG_VALUE).collect();
    let value = value.trim_end().to_owned();
    if value.is_empty() || Tag::parse("k", value.as_str()).is_err() {
        return None;
    }
    Some(value)
}

/// Applies a `session_tags` setting: for each (tag key, attribute name), the value
/// `lookup` finds for the attribute. Returns the tags and, for the log, each tag that
/// was skipped with why (missing attribute, invalid key or value).
pub fn select_attributes(
    mapping: &BTreeMap<String, String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> (BTreeMap<String, String>, Vec<(String, &'static str)>) {
    let mut tags = BTreeMap::new();
    let mut skipped = Vec::new();
    for (key, attribute) in mapping {
        if tags.len() >= super::assume::MAX_SESSION_TAGS {
            skipped.push((key.clone(), "more than 50 session tags"));
        } else if Tag::parse(key.clone(), "").is_err() {
            skipped.push((key.clone(), "invalid tag key"));
        } else if tags.keys().any(|k: &String| k.eq_ignore_ascii_case(key)) {
            skipped.push((key.clone(), "duplicate tag key"));
        } else {
            match lookup(attribute.trim()) {
                None => skipped.push((key.clone(), "the user has no such attribute")),
                Some(raw) => match session_tag_value(&raw) {
                    Some(value) => {
                        tags.insert(key.clone(), value);
                    }
                    None => skipped.push((
                        key.clone(),
                        "value empty or with characters IAM tags do not allow",
                    )),
                },
            }
        }
    }
    (tags, skipped)
}

/// Logs the tags [`select_attributes`] skipped for a sign-in.
pub fn log_skipped_tags(source_id: &str, user_name: &str, skipped: &[(String, &'static str)]) {
    for (key, why) in skipped {
        tracing::warn!(
            source = source_id,
            user = user_name,
            tag = key.as_str(),
            reason = why,
            "session tag skipped"
        );
    }
}

/// The settings of the built-in directory that this module reads from the source's
/// `config` JSON (other fields belong to other readers and are ignored here).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DirectorySettings {
    /// Tag key → `user_name`, `display_name` or `email`.
    #[serde(default)]
    pub session_tags: BTreeMap<String, String>,
}

/// The attribute names a directory user has.
pub const DIRECTORY_ATTRIBUTES: &[&str] = &["user_name", "display_name", "email"];

/// A directory user's attribute by name (see [`DIRECTORY_ATTRIBUTES`]).
pub fn directory_attribute(user: &User, name: &str) -> Option<String> {
    match name {
        "user_name" => Some(user.user_name.to_string()),
        "display_name" => Some(user.display_name.clone()).filter(|d| !d.trim().is_empty()),
        "email" => user.email.clone(),
        _ => None,
    }
}

/// The session tags of a portal identity's role sessions: its attributes, checked
/// again against IAM's tag rules (a session stored by an older version, or edited
/// in the cache, cannot smuggle in invalid tags); invalid ones are logged and left
/// out.
pub fn session_tags_of(identity: &Identity) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for (key, value) in &identity.attributes {
        let fine = tags.len() < super::assume::MAX_SESSION_TAGS
            && Tag::parse(key.clone(), value.clone()).is_ok()
            && !tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key));
        if fine {
            tags.push((key.clone(), value.clone()));
        } else {
            tracing::warn!(
                source = identity.source_id.as_str(),
                user = identity.user_name.as_str(),
                tag = key.as_str(),
                "session tag left out of a role session: invalid, duplicate or over 50"
            );
        }
    }
    tags
}

/// The settings of a role session issued for a portal identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub name: String,
    pub source_identity: String,
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    /// Seconds.
    pub duration: i64,
}

/// A portal identity's role session: what the mapping rules chose (already checked
/// against STS limits by the engine), else the defaults: the identity's name as
/// session name and source identity, its attributes as tags, the role's maximum
/// duration. Tags from rules replace attribute tags of the same key (ignoring case).
pub fn portal_session(
    identity: &Identity,
    chosen: &crate::mapping::SessionSettings,
    role_max_seconds: i64,
) -> PortalSession {
    let name = chosen
        .name
        .clone()
        .unwrap_or_else(|| session_name(identity));
    let source_identity = chosen
        .source_identity
        .clone()
        .unwrap_or_else(|| name.clone());
    let mut tags: Vec<(String, String)> = session_tags_of(identity)
        .into_iter()
        .filter(|(key, _)| !chosen.tags.keys().any(|k| k.eq_ignore_ascii_case(key)))
        .collect();
    tags.extend(chosen.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags.truncate(super::assume::MAX_SESSION_TAGS);
    let transitive_tag_keys = chosen
        .transitive_tag_keys
        .iter()
        .filter(|key| tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)))
        .cloned()
        .collect();
    let duration = chosen
        .max_duration_seconds
        .map_or(role_max_seconds, |d| d.min(role_max_seconds));
    PortalSession {
        name,
        source_identity,
        tags,
        transitive_tag_keys,
        duration,
    }
}

/// A role session name from a user name or email: IAM's `[\w+=,.@-]`, 2–64 chars.
pub fn session_name(identity: &Identity) -> String {
    let raw = identity.email.as_deref().unwrap_or(&identity.user_name);
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while name.len() < 2 {
        name.push('-');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn session_tag_settings_are_checked() {
        assert!(check_session_tags(&mapping(&[("Department", "department")])).is_ok());
        for bad in [
            mapping(&[("aws:x", "a")]),
            mapping(&[("bad key!", "a")]),
            mapping(&[("", "a")]),
            mapping(&[("Team", " ")]),
            mapping(&[("Team", "a"), ("team", "b")]),
        ] {
            assert!(check_session_tags(&bad).is_err(), "{bad:?}");
        }
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("k{i}"), "a".to_owned())).collect();
        assert!(check_session_tags(&many).is_err());
    }

    #[test]
    fn attributes_become_tags_or_are_skipped() {
        let settings = mapping(&[
            ("Department", "department"),
            ("Email", "email"),
            ("Missing", "nothing"),
            ("Quote", "quote"),
            ("Long", "long"),
        ]);
        let long = "x".repeat(300);
        let (tags, skipped) = select_attributes(&settings, |name| match name {
            "department" => Some(" Engineering ".to_owned()),
            "email" => Some("a@x.io".to_owned()),
            "quote" => Some("O'Brien".to_owned()),
            "long" => Some(long.clone()),
            _ => None,
        });
        assert_eq!(tags["Department"], "Engineering");
        assert_eq!(tags["Email"], "a@x.io");
        assert_eq!(tags["Long"].len(), 256, "cut to IAM's limit");
        let skipped: Vec<&str> = skipped.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(skipped, ["Missing", "Quote"]);
    }

    #[test]
    fn sessions_stored_without_attributes_still_read() {
        let old = r#"{"source_id":"directory","user_name":"bob","display_name":"Bob","email":null,"groups":["developers"]}"#;
        let identity: Identity = serde_json::from_str(old).unwrap();
        assert!(identity.attributes.is_empty());
        let mut tagged = identity.clone();
        tagged
            .attributes
            .insert("Email".into(), "bob@example.com".into());
        tagged.attributes.insert("bad!".into(), "x".into());
        assert_eq!(
            session_tags_of(&tagged),
            [("Email".to_owned(), "bob@example.com".to_owned())]
        );
    }
}
