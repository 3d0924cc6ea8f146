//! The one shape every identity source gives a signed-in person: the directory and
//! OIDC build it today, SAML will. Sessions, device grants and SSO tokens store it
//! (in the cache, as JSON), so fields added later must read as empty from what was
//! stored before.

use std::collections::BTreeMap;

/// The most claims an identity keeps besides its named fields.
pub const MAX_CLAIMS: usize = 64;
/// The most bytes those claims may take, serialised as JSON.
pub const MAX_CLAIMS_BYTES: usize = 16 * 1024;

/// Someone signed in, as their identity source describes them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub source_id: String,
    /// The source's stable id for the person (the OIDC `sub`, the directory's user
    /// id): unlike the user name, it never changes. Empty in sessions stored before
    /// this field existed.
    #[serde(default)]
    pub subject: String,
    pub user_name: String,
    pub display_name: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// The user's attributes selected by the identity source's `session_tags`
    /// setting, by session-tag key (`Department` → `Engineering`): the session tags
    /// of every role session issued for this identity. Sessions stored before this
    /// field existed read as none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// The source's other claims about the person, for the mapping rules; bounded
    /// by [`bounded_claims`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, serde_json::Value>,
}

/// Keeps claims within [`MAX_CLAIMS`] entries and [`MAX_CLAIMS_BYTES`] serialised,
/// in name order; a claim that would cross either bound is dropped, with a log line
/// naming it (never its value), so that one oversized claim cannot fill sessions.
pub fn bounded_claims(
    source_id: &str,
    claims: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> BTreeMap<String, serde_json::Value> {
    let sorted: BTreeMap<String, serde_json::Value> = claims.into_iter().collect();
    let mut kept = BTreeMap::new();
    // `{}` plus, per entry, `"name":value` and a comma.
    let mut bytes: usize = 2;
    for (name, value) in sorted {
        let size = serde_json::to_string(&name).map_or(usize::MAX, |n| n.len())
            + serde_json::to_string(&value).map_or(usize::MAX, |v| v.len())
            + 2;
        if kept.len() >= MAX_CLAIMS || bytes.saturating_add(size) > MAX_CLAIMS_BYTES {
            tracing::warn!(
                source = source_id,
                claim = name.as_str(),
                "claim dropped: an identity keeps at most {MAX_CLAIMS} claims and {MAX_CLAIMS_BYTES} bytes of them"
            );
            continue;
        }
        bytes += size;
        kept.insert(name, value);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identities_stored_before_subject_and_claims_still_read() {
        let old = r#"{"source_id":"directory","user_name":"bob","display_name":"Bob","email":null,"groups":[]}"#;
        let identity: Identity = serde_json::from_str(old).unwrap();
        assert_eq!(identity.subject, "");
        assert!(identity.claims.is_empty());
    }

    #[test]
    fn claims_are_bounded_in_count_and_size() {
        let many = (0..100).map(|i| (format!("c{i:03}"), json!(i)));
        let kept = bounded_claims("corp", many);
        assert_eq!(kept.len(), MAX_CLAIMS);
        assert!(kept.contains_key("c000") && !kept.contains_key("c064"));

        let big = [
            ("a".to_owned(), json!("x".repeat(10_000))),
            ("b".to_owned(), json!("y".repeat(10_000))),
            ("c".to_owned(), json!("small")),
        ];
        let kept = bounded_claims("corp", big);
        assert!(kept.contains_key("a") && !kept.contains_key("b") && kept.contains_key("c"));
        assert!(serde_json::to_string(&kept).unwrap().len() <= MAX_CLAIMS_BYTES);
    }
}
