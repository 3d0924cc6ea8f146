//! The accounts and roles rules may grant: what the evaluator resolves `"*"`
//! accounts and templated names against, and what save-time reference checks use.

use std::collections::BTreeMap;

use crate::iam::{AccountId, RoleName};

/// A role the catalog knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRole {
    pub name: RoleName,
    /// The role's maximum session duration; session settings are capped to it.
    pub max_session_seconds: i64,
}

/// Accounts and their roles. Role names are looked up ignoring case, as IAM keeps
/// them unique ignoring case; the catalog's spelling is the one reported.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    accounts: BTreeMap<String, CatalogAccount>,
}

#[derive(Debug, Clone)]
struct CatalogAccount {
    id: AccountId,
    /// By lower-cased role name.
    roles: BTreeMap<String, CatalogRole>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_account(&mut self, account: AccountId) {
        self.accounts
            .entry(account.as_str().to_owned())
            .or_insert_with(|| CatalogAccount {
                id: account,
                roles: BTreeMap::new(),
            });
    }

    /// Adds a role (and its account, if new); a role of the same name (ignoring
    /// case) is replaced.
    pub fn add_role(&mut self, account: AccountId, role: RoleName, max_session_seconds: i64) {
        let key = account.as_str().to_owned();
        let entry = self.accounts.entry(key).or_insert_with(|| CatalogAccount {
            id: account,
            roles: BTreeMap::new(),
        });
        entry.roles.insert(
            role.as_str().to_ascii_lowercase(),
            CatalogRole {
                name: role,
                max_session_seconds,
            },
        );
    }

    pub fn has_account(&self, account: &str) -> bool {
        self.accounts.contains_key(account)
    }

    pub fn account(&self, account: &str) -> Option<&AccountId> {
        self.accounts.get(account).map(|a| &a.id)
    }

    /// The role named `role` (ignoring case) in `account`.
    pub fn role(&self, account: &str, role: &str) -> Option<&CatalogRole> {
        self.accounts
            .get(account)?
            .roles
            .get(&role.to_ascii_lowercase())
    }

    /// Every account with a role named `role` (ignoring case), in account order.
    pub fn accounts_with_role<'a>(
        &'a self,
        role: &'a str,
    ) -> impl Iterator<Item = (&'a AccountId, &'a CatalogRole)> + 'a {
        let key = role.to_ascii_lowercase();
        self.accounts
            .values()
            .filter_map(move |a| a.roles.get(&key).map(|r| (&a.id, r)))
    }

    /// Whether any account has a role named `role` (ignoring case).
    pub fn has_role_anywhere(&self, role: &str) -> bool {
        self.accounts_with_role(role).next().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_found_ignoring_case_and_across_accounts() {
        let mut catalog = Catalog::new();
        let a = AccountId::parse("111111111111").unwrap();
        let b = AccountId::parse("222222222222").unwrap();
        catalog.add_account(b.clone());
        catalog.add_role(a.clone(), RoleName::parse("Developer").unwrap(), 7200);
        assert!(catalog.has_account("111111111111") && catalog.has_account("222222222222"));
        assert!(!catalog.has_account("333333333333"));
        let role = catalog.role("111111111111", "developer").unwrap();
        assert_eq!(
            (role.name.as_str(), role.max_session_seconds),
            ("Developer", 7200)
        );
        assert!(catalog.role("222222222222", "Developer").is_none());
        catalog.add_role(b, RoleName::parse("DEVELOPER").unwrap(), 3600);
        let accounts: Vec<_> = catalog
            .accounts_with_role("Developer")
            .map(|(a, r)| (a.as_str(), r.name.as_str()))
            .collect();
        assert_eq!(
            accounts,
            [("111111111111", "Developer"), ("222222222222", "DEVELOPER")]
        );
        assert!(!catalog.has_role_anywhere("Admin"));
    }
}
