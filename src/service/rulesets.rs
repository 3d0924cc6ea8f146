//! Publishing mapping rules: every change validates the whole candidate list
//! (syntax, regex limits, templates, literal references to accounts and roles),
//! publishes it as the next immutable version only while its base is still the
//! version in force, and is audited with the before and after. Dry runs, impact
//! reports and the access views evaluate over the recent sign-ins.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::idp::identity::Identity;
use crate::mapping::{
    self, CompiledRuleset, ConditionReport, Evaluation, GrantedBy, Rule, RuleError, SourceClaims,
    Warning,
};
use crate::store::{NewRulesetVersion, RuleHit, RulesetVersion, StoreError};

use super::entitlements::{EntitlementError, Entitlements, Published, subject_of};

#[derive(Debug, thiserror::Error)]
pub enum RulesetError {
    /// The candidate rules do not validate; each error points into the list.
    #[error("the rules do not validate")]
    Invalid(Vec<RuleError>),
    /// The change was made against a version that is no longer in force.
    #[error("the ruleset is at version {current}, not {base}")]
    Stale { base: i64, current: i64 },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Duplicate(String),
    #[error(transparent)]
    Entitlements(#[from] EntitlementError),
}

impl From<StoreError> for RulesetError {
    fn from(error: StoreError) -> Self {
        Self::Entitlements(EntitlementError::Store(error))
    }
}

/// The ruleset in force, for `GET /ruleset` (version 0 with no rules before the
/// first publication).
#[derive(Debug, Clone, Serialize)]
pub struct CurrentRuleset {
    pub version: i64,
    pub content_hash: String,
    pub rules: Vec<Rule>,
}

/// A dry run's answer: the evaluation, and how each condition of the rule asked
/// about fared.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    #[serde(flatten)]
    pub evaluation: Evaluation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<ConditionReport>,
}

/// A person whose entitlements a candidate changes.
#[derive(Debug, Clone, Serialize)]
pub struct PersonImpact {
    pub source: String,
    pub subject: String,
    pub user_name: String,
    pub gains: Vec<AccountRole>,
    pub loses: Vec<AccountRole>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AccountRole {
    pub account: String,
    pub role: String,
}

/// Who holds a role, and through which rules and claim values.
#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    pub source: String,
    pub subject: String,
    pub user_name: String,
    pub granted_by: Vec<GrantedBy>,
}

pub struct Rulesets {
    entitlements: Arc<Entitlements>,
}

impl Rulesets {
    pub fn new(entitlements: Arc<Entitlements>) -> Self {
        Self { entitlements }
    }

    pub async fn current(&self) -> Result<CurrentRuleset, RulesetError> {
        let store = self.entitlements.store();
        Ok(match store.current_ruleset().await? {
            None => CurrentRuleset {
                version: 0,
                content_hash: mapping::content_hash(&[]),
                rules: Vec::new(),
            },
            Some(stored) => to_current(stored)?,
        })
    }

    pub async fn version(&self, number: i64) -> Result<CurrentRuleset, RulesetError> {
        let stored = self
            .entitlements
            .store()
            .get_ruleset_version(number)
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => {
                    RulesetError::NotFound(format!("ruleset version {number} does not exist"))
                }
                other => other.into(),
            })?;
        to_current(stored)
    }

    /// Checks a candidate list: it compiles and every literal account and role exists.
    pub async fn validate(&self, rules: &[Rule]) -> Result<CompiledRuleset, RulesetError> {
        let compiled = CompiledRuleset::compile(rules).map_err(RulesetError::Invalid)?;
        let view = self.entitlements.catalog().await?;
        let missing = mapping::check_references(rules, &view.catalog);
        if !missing.is_empty() {
            return Err(RulesetError::Invalid(missing));
        }
        Ok(compiled)
    }

    /// How often each rule fired at sign-in and when it last did, by rule id.
    pub async fn hits(&self) -> Result<std::collections::HashMap<String, RuleHit>, RulesetError> {
        Ok(self
            .entitlements
            .store()
            .rule_hits()
            .await?
            .into_iter()
            .map(|hit| (hit.rule_id.clone(), hit))
            .collect())
    }

    /// The published rules' references to accounts and roles that no longer exist
    /// (deleted after the rules were published), each with its pointer.
    pub async fn broken_references(&self) -> Result<Vec<RuleError>, RulesetError> {
        let published = self.entitlements.published().await?;
        let view = self.entitlements.catalog().await?;
        Ok(mapping::check_references(
            published.ruleset.rules(),
            &view.catalog,
        ))
    }

    /// Publishes `rules` as the next version on top of `base`, with the
    /// publisher's `reason` if they gave one.
    pub async fn publish(
        &self,
        base: i64,
        rules: &[Rule],
        actor: &str,
        restored_from: Option<i64>,
        reason: Option<&str>,
    ) -> Result<CurrentRuleset, RulesetError> {
        let compiled = self.validate(rules).await?;
        let document = serde_json::to_value(rules).map_err(|error| {
            RulesetError::Invalid(vec![RuleError {
                code: "INVALID_RULE",
                message: error.to_string(),
                pointer: String::new(),
            }])
        })?;
        let published = self
            .entitlements
            .store()
            .publish_ruleset(&NewRulesetVersion {
                base,
                content_hash: mapping::content_hash(rules),
                rules: document,
                published_by: actor.to_owned(),
                restored_from,
                reason: reason.map(str::to_owned),
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => RulesetError::Stale {
                    base,
                    current: base + 1,
                },
                other => other.into(),
            })?;
        self.entitlements.adopt(Published {
            version: published.summary.version,
            content_hash: published.summary.content_hash.clone(),
            ruleset: compiled,
        });
        to_current(published)
    }

    /// Evaluates `rules` (compiled here) or the published ruleset for claims given
    /// directly: the dry run of `POST /mapping-rules/test`. With `explain`, also
    /// how each condition of that rule fared.
    pub async fn test(
        &self,
        source: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
        rules: Option<&[Rule]>,
        explain: Option<&str>,
    ) -> Result<DryRun, RulesetError> {
        let hygiene = self.entitlements.hygiene(source).await?;
        let claims = match SourceClaims::from_json(source, claims, &hygiene) {
            Ok(claims) => claims,
            // What a sign-in would meet: refused, so nothing is granted.
            Err(refused) => {
                return Ok(DryRun {
                    evaluation: Evaluation {
                        warnings: vec![Warning {
                            code: refused.code,
                            rule: None,
                            message: refused.message,
                        }],
                        ..Evaluation::default()
                    },
                    conditions: None,
                });
            }
        };
        let view = self.entitlements.catalog().await?;
        let now = self.entitlements.store().clock().now();
        let run = |ruleset: &CompiledRuleset| DryRun {
            evaluation: ruleset.evaluate(&claims, &view.catalog, now),
            conditions: explain.and_then(|id| ruleset.explain(id, &claims)),
        };
        Ok(match rules {
            Some(rules) => run(&CompiledRuleset::compile(rules).map_err(RulesetError::Invalid)?),
            None => run(&self.entitlements.published().await?.ruleset),
        })
    }

    /// Over the recent sign-ins: who gains and who loses which account and role if
    /// `candidate` replaced the published ruleset.
    pub async fn impact(&self, candidate: &[Rule]) -> Result<Vec<PersonImpact>, RulesetError> {
        let proposed = self.validate(candidate).await?;
        let published = self.entitlements.published().await?;
        let view = self.entitlements.catalog().await?;
        let now = self.entitlements.store().clock().now();
        let mut report = Vec::new();
        for (identity, claims) in self.entitlements.recent_claims().await? {
            let before = held(&published.ruleset.evaluate(&claims, &view.catalog, now));
            let after = held(&proposed.evaluate(&claims, &view.catalog, now));
            let gains: Vec<AccountRole> = after.difference(&before).cloned().collect();
            let loses: Vec<AccountRole> = before.difference(&after).cloned().collect();
            if !gains.is_empty() || !loses.is_empty() {
                report.push(PersonImpact {
                    source: identity.source_id.clone(),
                    subject: subject_of(&identity).to_owned(),
                    user_name: identity.user_name.clone(),
                    gains,
                    loses,
                });
            }
        }
        Ok(report)
    }

    /// Every recently seen person the published ruleset grants `role` in `account`.
    pub async fn holders(&self, account: &str, role: &str) -> Result<Vec<Holder>, RulesetError> {
        let mut holders = Vec::new();
        for (identity, evaluation) in self.evaluate_recent().await? {
            if let Some(entitlement) = evaluation
                .entitlements
                .iter()
                .find(|e| e.account.as_str() == account && e.role.as_str() == role)
            {
                holders.push(Holder {
                    source: identity.source_id.clone(),
                    subject: subject_of(&identity).to_owned(),
                    user_name: identity.user_name.clone(),
                    granted_by: entitlement.granted_by.clone(),
                });
            }
        }
        Ok(holders)
    }

    /// The recently seen person `subject` of `source` and what the published
    /// ruleset grants them, with why.
    pub async fn person(
        &self,
        source: &str,
        subject: &str,
    ) -> Result<(Identity, Evaluation), RulesetError> {
        let (identity, claims) = self
            .entitlements
            .recent_claims()
            .await?
            .into_iter()
            .find(|(identity, _)| identity.source_id == source && subject_of(identity) == subject)
            .ok_or_else(|| {
                RulesetError::NotFound(format!(
                    "no recent sign-in of {subject} from identity source {source}"
                ))
            })?;
        let published = self.entitlements.published().await?;
        let view = self.entitlements.catalog().await?;
        let now = self.entitlements.store().clock().now();
        Ok((
            identity,
            published.ruleset.evaluate(&claims, &view.catalog, now),
        ))
    }

    async fn evaluate_recent(&self) -> Result<Vec<(Identity, Evaluation)>, RulesetError> {
        let published = self.entitlements.published().await?;
        let view = self.entitlements.catalog().await?;
        let now = self.entitlements.store().clock().now();
        let mut evaluated = Vec::new();
        for (identity, claims) in self.entitlements.recent_claims().await? {
            let evaluation = published.ruleset.evaluate(&claims, &view.catalog, now);
            evaluated.push((identity, evaluation));
        }
        Ok(evaluated)
    }
}

fn held(evaluation: &Evaluation) -> BTreeSet<AccountRole> {
    evaluation
        .entitlements
        .iter()
        .map(|e| AccountRole {
            account: e.account.as_str().to_owned(),
            role: e.role.as_str().to_owned(),
        })
        .collect()
}

fn to_current(stored: RulesetVersion) -> Result<CurrentRuleset, RulesetError> {
    let version = stored.summary.version;
    let rules: Vec<Rule> = serde_json::from_value(stored.rules).map_err(|error| {
        tracing::error!(version, %error, "stored ruleset does not parse");
        RulesetError::Entitlements(EntitlementError::Damaged(version))
    })?;
    Ok(CurrentRuleset {
        version,
        content_hash: stored.summary.content_hash,
        rules,
    })
}
