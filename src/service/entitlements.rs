//! Who gets which role, at every request: the published ruleset (compiled once per
//! version, checked against the store's head on each call so a change applies at the
//! next request on every replica), the catalog of accounts and roles, and the
//! identity's claims go to the pure engine in [`crate::mapping`]. Also keeps each
//! person's latest sign-in for dry runs, impact reports and the access views.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::Clock;
use crate::iam::{AccountId, RoleArn, RoleName};
use crate::idp::identity::Identity;
use crate::mapping::{
    Catalog, ClaimsHygiene, CompiledRuleset, Evaluation, GrantedBy, Rule, SessionSettings,
    SourceClaims,
};
use crate::store::{RecentSignIn, Store, StoreError};

/// The ruleset in force, compiled.
pub struct Published {
    /// 0 before any ruleset was published (no rules: nobody is granted anything).
    pub version: i64,
    pub content_hash: String,
    pub ruleset: CompiledRuleset,
}

/// A role granted to an identity by the published ruleset, and why. Only this
/// service makes one, so a grant in hand is something the rules granted.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    role: RoleArn,
    description: String,
    account_name: String,
    granted_by: Vec<GrantedBy>,
    session: SessionSettings,
    ruleset_version: i64,
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

    /// The name of the role's account, for the lists that show grants.
    pub fn account_name(&self) -> &str {
        &self.account_name
    }

    /// The rules that granted it, with the claim values that matched.
    pub fn granted_by(&self) -> &[GrantedBy] {
        &self.granted_by
    }

    /// The session settings the rules chose (name, tags, duration).
    pub fn session(&self) -> &SessionSettings {
        &self.session
    }

    /// The ruleset version that decided.
    pub fn ruleset_version(&self) -> i64 {
        self.ruleset_version
    }

    /// An issued session's audit `details` with the decision added: the ruleset
    /// version and the ids of the rules that granted the role.
    pub fn audited(&self, mut details: serde_json::Value) -> serde_json::Value {
        if let Some(object) = details.as_object_mut() {
            object.insert("ruleset_version".into(), self.ruleset_version.into());
            object.insert(
                "granted_by".into(),
                self.granted_by.iter().map(|g| g.rule.clone()).collect(),
            );
        }
        details
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EntitlementError {
    /// The identity's claims break a source's hygiene limit (too many groups): the
    /// sign-in is refused rather than decided on a silently cut list.
    #[error("{message}")]
    Claims { code: &'static str, message: String },
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    /// A stored ruleset no longer compiles: data damage, never a user error.
    #[error("the published ruleset version {0} does not compile")]
    Damaged(i64),
}

/// An evaluation and the catalog it ran against.
pub struct Decision {
    pub version: i64,
    pub evaluation: Evaluation,
    /// What lists show of each role, by (account, role).
    descriptions: BTreeMap<(String, String), RoleFacts>,
}

impl Decision {
    /// The entitlements as grants (roles that vanished meanwhile are left out).
    pub fn grants(&self) -> Vec<Grant> {
        self.evaluation
            .entitlements
            .iter()
            .filter_map(|entitlement| {
                let key = (
                    entitlement.account.as_str().to_owned(),
                    entitlement.role.as_str().to_owned(),
                );
                let facts = self.descriptions.get(&key)?;
                Some(Grant {
                    role: facts.arn.clone(),
                    description: facts.description.clone(),
                    account_name: facts.account_name.clone(),
                    granted_by: entitlement.granted_by.clone(),
                    session: entitlement.session.clone(),
                    ruleset_version: self.version,
                })
            })
            .collect()
    }
}

/// The accounts and roles rules can name, with each role's ARN and description.
pub struct CatalogView {
    pub catalog: Catalog,
    descriptions: BTreeMap<(String, String), RoleFacts>,
}

/// A role as the lists of grants show it.
struct RoleFacts {
    arn: RoleArn,
    description: String,
    account_name: String,
}

pub struct Entitlements {
    store: Arc<dyn Store>,
    clock: Clock,
    compiled: RwLock<Option<Arc<Published>>>,
    /// How long a person's latest sign-in is kept for dry runs and impact.
    sign_in_retention: Duration,
}

/// How long recent sign-ins are kept by default (Identity Center keeps 90 days of
/// sign-in history in CloudTrail's default view).
pub const DEFAULT_SIGN_IN_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// The most recent sign-ins an impact report or access view evaluates.
pub const RECENT_SIGN_INS_LIMIT: i64 = 10_000;

impl Entitlements {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let clock = store.clock().clone();
        Self {
            store,
            clock,
            compiled: RwLock::new(None),
            sign_in_retention: DEFAULT_SIGN_IN_RETENTION,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The ruleset in force, compiled: recompiled only when the store's head moved.
    pub async fn published(&self) -> Result<Arc<Published>, EntitlementError> {
        let head = self.store.current_ruleset_head().await?;
        let (version, hash) = head
            .as_ref()
            .map_or((0, String::new()), |h| (h.version, h.content_hash.clone()));
        if let Some(current) = self.cached()
            && current.version == version
            && current.content_hash == hash
        {
            return Ok(current);
        }
        let rules: Vec<Rule> = match head {
            None => Vec::new(),
            Some(_) => {
                let stored = self.store.get_ruleset_version(version).await?;
                serde_json::from_value(stored.rules).map_err(|error| {
                    tracing::error!(version, %error, "stored ruleset does not parse");
                    EntitlementError::Damaged(version)
                })?
            }
        };
        let ruleset = CompiledRuleset::compile(&rules).map_err(|errors| {
            tracing::error!(version, ?errors, "stored ruleset does not compile");
            EntitlementError::Damaged(version)
        })?;
        Ok(self.adopt(Published {
            version,
            content_hash: hash,
            ruleset,
        }))
    }

    /// Keeps `published` as the compiled ruleset in force (the publisher compiled it
    /// already, so the next request need not), unless a newer one is kept.
    pub fn adopt(&self, published: Published) -> Arc<Published> {
        let published = Arc::new(published);
        let mut slot = match self.compiled.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Never step back: a slower request may have compiled an older head.
        if slot.as_ref().is_none_or(|c| c.version <= published.version) {
            *slot = Some(published.clone());
        }
        published
    }

    fn cached(&self) -> Option<Arc<Published>> {
        match self.compiled.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Every account and role, as the engine and the grants need them.
    pub async fn catalog(&self) -> Result<CatalogView, EntitlementError> {
        let mut catalog = Catalog::new();
        let mut descriptions = BTreeMap::new();
        // Two queries whatever the number of accounts.
        let accounts = self.store.list_accounts().await?;
        let names: BTreeMap<&AccountId, &str> = accounts
            .iter()
            .map(|account| (&account.id, account.name.as_str()))
            .collect();
        for account in &accounts {
            catalog.add_account(account.id.clone());
        }
        for role in self.store.list_all_roles().await? {
            let account_name = names.get(&role.account_id).copied().unwrap_or_default();
            catalog.add_role(
                role.account_id.clone(),
                role.name.clone(),
                role.max_session_duration.seconds(),
            );
            descriptions.insert(
                (
                    role.account_id.as_str().to_owned(),
                    role.name.as_str().to_owned(),
                ),
                RoleFacts {
                    arn: role.arn.clone(),
                    description: role.description.clone(),
                    account_name: account_name.to_owned(),
                },
            );
        }
        Ok(CatalogView {
            catalog,
            descriptions,
        })
    }

    /// The claims hygiene of identity source `source`: its config's `mapping`
    /// settings, read at every call like the rules (a change applies at once); the
    /// defaults for a source without them (or one that no longer exists).
    pub async fn hygiene(&self, source: &str) -> Result<ClaimsHygiene, EntitlementError> {
        let stored = match self.store.get_identity_source(source).await {
            Ok(stored) => stored,
            Err(StoreError::NotFound { .. }) => return Ok(ClaimsHygiene::default()),
            Err(error) => return Err(error.into()),
        };
        Ok(match stored.config.get("mapping") {
            None => ClaimsHygiene::default(),
            Some(settings) => serde_json::from_value(settings.clone()).unwrap_or_else(|error| {
                // Validated when the source was saved; unreadable now means damage.
                tracing::error!(source, %error, "identity source mapping settings unreadable; using defaults");
                ClaimsHygiene::default()
            }),
        })
    }

    /// The identity's claims as the rules see them.
    pub async fn claims_of(&self, identity: &Identity) -> Result<SourceClaims, EntitlementError> {
        let hygiene = self.hygiene(&identity.source_id).await?;
        SourceClaims::from_identity(identity, &hygiene).map_err(|e| EntitlementError::Claims {
            code: e.code,
            message: e.message,
        })
    }

    /// Evaluates the published ruleset for `identity` now.
    pub async fn decide(&self, identity: &Identity) -> Result<Decision, EntitlementError> {
        let published = self.published().await?;
        self.decide_under(&published, identity).await
    }

    /// [`Self::decide`] under the ruleset `published`.
    async fn decide_under(
        &self,
        published: &Published,
        identity: &Identity,
    ) -> Result<Decision, EntitlementError> {
        let claims = self.claims_of(identity).await?;
        let view = self.catalog().await?;
        Ok(Decision {
            version: published.version,
            evaluation: published
                .ruleset
                .evaluate(&claims, &view.catalog, self.clock.now()),
            descriptions: view.descriptions,
        })
    }

    /// Every role granted to `identity` now, each with why.
    pub async fn grants(&self, identity: &Identity) -> Result<Vec<Grant>, EntitlementError> {
        Ok(self.decide(identity).await?.grants())
    }

    /// The grant of `role` in `account` to `identity`, if the rules grant it now.
    pub async fn grant(
        &self,
        identity: &Identity,
        account: &AccountId,
        role: &RoleName,
    ) -> Result<Option<Grant>, EntitlementError> {
        Ok(self
            .grants(identity)
            .await?
            .into_iter()
            .find(|g| g.account() == account && g.role_name() == role))
    }

    /// Keeps `identity` as its person's latest sign-in (claims only: an identity
    /// holds no secrets or tokens), dropping sign-ins past the retention limit.
    pub async fn record_sign_in(&self, identity: &Identity) -> Result<(), EntitlementError> {
        let now = self.clock.now();
        let retention = chrono::Duration::from_std(self.sign_in_retention)
            .unwrap_or(chrono::Duration::days(90));
        // The rules that fired for this sign-in (every rule the evaluation did not
        // list as not applied): the admin UI's hit counts. A failed evaluation
        // records the sign-in without hits rather than not at all.
        let mut matched_rules = Vec::new();
        if let Ok(published) = self.published().await
            && let Ok(decision) = self.decide_under(&published, identity).await
        {
            let skipped: std::collections::HashSet<&str> = decision
                .evaluation
                .not_applied
                .iter()
                .map(|n| n.rule.as_str())
                .collect();
            matched_rules.extend(
                published
                    .ruleset
                    .rules()
                    .iter()
                    .filter(|rule| !skipped.contains(rule.id.as_str()))
                    .map(|rule| rule.id.clone()),
            );
        }
        let sign_in = RecentSignIn {
            source_id: identity.source_id.clone(),
            subject: subject_of(identity).to_owned(),
            user_name: identity.user_name.clone(),
            identity: serde_json::to_value(identity).unwrap_or_default(),
            signed_in_at: now,
        };
        self.store
            .record_sign_in(&sign_in, &matched_rules, now - retention)
            .await?;
        Ok(())
    }

    /// The people who signed in recently, with their claims as the rules see them;
    /// each source's hygiene is read once, and people whose claims the rules cannot
    /// take (over a source's groups cap) are left out, as their sign-in would be.
    pub async fn recent_claims(&self) -> Result<Vec<(Identity, SourceClaims)>, EntitlementError> {
        let mut hygiene: std::collections::HashMap<String, ClaimsHygiene> = Default::default();
        let mut recent = Vec::new();
        for sign_in in self.store.recent_sign_ins(RECENT_SIGN_INS_LIMIT).await? {
            let Ok(identity) = serde_json::from_value::<Identity>(sign_in.identity) else {
                continue;
            };
            if !hygiene.contains_key(&identity.source_id) {
                let settings = self.hygiene(&identity.source_id).await?;
                hygiene.insert(identity.source_id.clone(), settings);
            }
            let settings = &hygiene[&identity.source_id];
            if let Ok(claims) = SourceClaims::from_identity(&identity, settings) {
                recent.push((identity, claims));
            }
        }
        Ok(recent)
    }
}

/// The person's stable key within their source: the subject, or the user name for
/// identities stored before subjects were kept.
pub fn subject_of(identity: &Identity) -> &str {
    if identity.subject.is_empty() {
        &identity.user_name
    } else {
        &identity.subject
    }
}
