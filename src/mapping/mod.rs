//! Who gets which role: the entitlement rule, pure (no I/O, no clock). Every place
//! that lists or checks a person's roles (the portal, the SSO portal API, console
//! sign-in, role sessions for portal identities) asks here, so the rule engine of
//! the mapping-rules issue replaces this module's body, not its callers.
//!
//! The interim rule: a role lists the groups it is granted to in its
//! `rolegate:groups` tag (names separated by spaces or commas, matched ignoring case).
//!
//! The rule engine that replaces it lives in the submodules, all pure:
//! [`rules`] (the JSON wire and export format), [`compile`] (checks with JSON
//! pointers, compiles once per ruleset version, `content_hash`,
//! `check_references`), [`claims`] (per-source claims hygiene), [`catalog`] (the
//! accounts and roles grants resolve against) and [`evaluate`] (entitlements with
//! their explanation: who granted, what was removed, warnings, near misses).

pub mod catalog;
pub mod claims;
pub mod compile;
pub mod evaluate;
pub mod rules;
mod template;

pub use catalog::{Catalog, CatalogRole};
pub use claims::{ClaimsError, ClaimsHygiene, SourceClaims};
pub use compile::{CompiledRuleset, RuleError, check_references, content_hash};
pub use evaluate::{
    Entitlement, Evaluation, GrantedBy, NotApplied, Removed, SessionSettings, Warning,
};
pub use rules::{
    Case, Condition, Effect, ForEach, GrantTemplate, Leaf, Op, Rule, Selector, SessionTemplate,
    Sources, Target, Validity,
};

use crate::iam::{AccountId, RoleArn, RoleName};
use crate::idp::identity::Identity;
use crate::store::Role;

/// The tag through which a role names the groups it is granted to.
pub const GROUPS_TAG: &str = "rolegate:groups";

/// A role granted to an identity, and why. Only [`entitlements`] makes one, so a
/// grant in hand is something the rules granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    role: RoleArn,
    description: String,
    reason: Reason,
}

impl Grant {
    pub fn role(&self) -> &RoleArn {
        &self.role
    }

    pub fn account(&self) -> &AccountId {
        &self.role.account
    }

    pub fn role_name(&self) -> &RoleName {
        &self.role.name
    }

    /// The role's description, for the lists that show grants.
    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn reason(&self) -> &Reason {
        &self.reason
    }
}

/// Why a role is granted: the identity's group and the rule that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The group (as the rule spells it) that grants the role.
    pub group: String,
    /// The rule that lists the group.
    pub rule: String,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "member of group {:?}, listed in {}",
            self.group, self.rule
        )
    }
}

/// The roles among `roles` that `identity` is granted, in the order given, each
/// with why.
pub fn entitlements<'a>(
    identity: &Identity,
    roles: impl IntoIterator<Item = &'a Role>,
) -> Vec<Grant> {
    roles
        .into_iter()
        .filter_map(|role| {
            Some(Grant {
                role: role.arn.clone(),
                description: role.description.clone(),
                reason: reason(identity, role)?,
            })
        })
        .collect()
}

/// The interim rule: a group of the identity listed in the role's groups tag.
fn reason(identity: &Identity, role: &Role) -> Option<Reason> {
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
        .map(|group| Reason {
            group: group.to_owned(),
            rule: format!("the role's {GROUPS_TAG} tag"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::{IamPath, MaxSessionDuration, Tag, Tags};

    fn role(groups: Option<&str>) -> Role {
        let tags = match groups {
            Some(groups) => Tags::new(vec![Tag::parse(GROUPS_TAG, groups).unwrap()]).unwrap(),
            None => Tags::default(),
        };
        Role {
            id: "r".into(),
            arn: RoleArn::parse("arn:aws:iam::123456789012:role/Developer").unwrap(),
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

    fn identity(groups: &[&str]) -> Identity {
        Identity {
            source_id: "directory".into(),
            subject: "u-1".into(),
            user_name: "bob".into(),
            display_name: "Bob".into(),
            email: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            attributes: Default::default(),
            claims: Default::default(),
        }
    }

    #[test]
    fn a_listed_group_grants_and_says_which() {
        let developer = role(Some("admins Developers"));
        let grants = entitlements(&identity(&["staff", "developers"]), [&developer]);
        let [grant] = grants.as_slice() else {
            panic!("{grants:?}")
        };
        assert_eq!(grant.role(), &developer.arn);
        assert_eq!(grant.reason().group, "Developers");
        let why = grant.reason().to_string();
        assert!(
            why.contains("Developers") && why.contains(GROUPS_TAG),
            "{why}"
        );
    }

    #[test]
    fn no_listed_group_or_no_tag_grants_nothing() {
        let none: Vec<Grant> = Vec::new();
        assert_eq!(
            entitlements(&identity(&["staff"]), [&role(Some("admins developers"))]),
            none
        );
        assert_eq!(entitlements(&identity(&["admins"]), [&role(None)]), none);
        assert_eq!(entitlements(&identity(&[]), [&role(Some("  "))]), none);
    }
}
