//! Who gets which role: the entitlement rule, pure (no I/O, no clock). Every place
//! that lists or checks a person's roles (the portal, the SSO portal API, console
//! sign-in, role sessions for portal identities) asks here, so the rule engine of
//! the mapping-rules issue replaces this module's body, not its callers.
//!
//! The interim rule: a role lists the groups it is granted to in its
//! `rolegate:groups` tag (names separated by spaces or commas, matched ignoring case).

use crate::idp::identity::PortalIdentity;
use crate::store::Role;

/// The tag through which a role names the groups it is granted to.
pub const GROUPS_TAG: &str = "rolegate:groups";

/// A role granted to an identity, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The group (as the role's tag spells it) that grants the role.
    pub because_of_group: String,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "member of group {:?}, listed in the role's {GROUPS_TAG} tag",
            self.because_of_group
        )
    }
}

/// Whether `identity` is granted `role`, and why.
pub fn grant(identity: &PortalIdentity, role: &Role) -> Option<Grant> {
    let listed = role.tags.get(GROUPS_TAG)?;
    listed
        .split([' ', ','])
        .filter(|group| !group.is_empty())
        .find(|group| {
            identity
                .groups
                .iter()
                .any(|mine| mine.eq_ignore_ascii_case(group))
        })
        .map(|group| Grant {
            because_of_group: group.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::{AccountId, IamPath, MaxSessionDuration, RoleName, Tag, Tags};

    fn role(groups: Option<&str>) -> Role {
        let tags = match groups {
            Some(groups) => Tags::new(vec![Tag::parse(GROUPS_TAG, groups).unwrap()]).unwrap(),
            None => Tags::default(),
        };
        Role {
            id: "r".into(),
            arn: "arn:aws:iam::123456789012:role/Developer".into(),
            account_id: AccountId::parse("123456789012").unwrap(),
            path: IamPath::default(),
            name: RoleName::parse("Developer").unwrap(),
            description: String::new(),
            trust_policy: String::new(),
            max_session_duration: MaxSessionDuration::default(),
            permissions_boundary_arn: None,
            tags,
            revoke_sessions_before: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn identity(groups: &[&str]) -> PortalIdentity {
        PortalIdentity {
            source_id: "directory".into(),
            user_name: "bob".into(),
            display_name: "Bob".into(),
            email: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn a_listed_group_grants_and_says_which() {
        let developer = role(Some("admins Developers"));
        let grant = grant(&identity(&["staff", "developers"]), &developer).unwrap();
        assert_eq!(grant.because_of_group, "Developers");
        assert!(grant.to_string().contains("Developers"), "{grant}");
    }

    #[test]
    fn no_listed_group_or_no_tag_grants_nothing() {
        assert_eq!(
            grant(&identity(&["staff"]), &role(Some("admins developers"))),
            None
        );
        assert_eq!(grant(&identity(&["admins"]), &role(None)), None);
        assert_eq!(grant(&identity(&[]), &role(Some("  "))), None);
    }
}
