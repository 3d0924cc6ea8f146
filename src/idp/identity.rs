//! The one shape every identity source gives a signed-in person: the directory and
//! OIDC build it today, SAML will. Sessions, device grants and SSO tokens store it
//! (in the cache, as JSON), so fields added later must read as empty from what was
//! stored before.

use std::collections::BTreeMap;

/// Someone signed in to the portal, as their identity source describes them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortalIdentity {
    pub source_id: String,
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
}
