//! A signed-in person's answer to a device login: the user code they typed (or
//! followed a link with) names a pending request, which they approve or deny. Each
//! lookup spends one of the person's few attempts first, so user codes cannot be
//! guessed.

use std::time::Duration;

use super::{Decision, DeviceError, DeviceGrant, DeviceService, UserCode, device_key, same};
use crate::cache::digest;
use crate::idp::identity::Identity;

/// Wrong user codes one person may enter per window before the page refuses.
const WRONG_CODE_LIMIT: usize = 5;
const WRONG_CODE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Who approves a terminal sign-in, and from which portal sign-in.
pub struct Approver {
    pub identity: Identity,
    /// When the approving portal sign-in began (Unix seconds): the terminal sign-in
    /// lives no longer than it.
    pub signed_in_at: i64,
    /// Since when that portal session stood for the user's sign-in settings (Unix
    /// milliseconds): the terminal sign-in ends when those settings change.
    pub valid_from_ms: i64,
}

/// Which of a person's attempt budgets a lookup spends. Only a form POST (the
/// person typed or confirmed a code) spends approval attempts: a GET can be any
/// site's link, and must not be able to block the person's approvals. Links get
/// their own budget; once it is spent, a link only fills in the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// A POST of the form: a wrong code counts against approvals.
    Approve,
    /// A GET with `?user_code=`: counts only against link lookups.
    Link,
}

/// A pending device login that a user code named.
pub struct PendingDevice {
    device_hash: String,
    grant: DeviceGrant,
    user_code: UserCode,
}

impl PendingDevice {
    pub fn user_code(&self) -> &UserCode {
        &self.user_code
    }

    pub fn client_name(&self) -> &str {
        &self.grant.client_name
    }

    pub fn client_id(&self) -> &str {
        &self.grant.client_id
    }
}

/// What a user code turned out to be.
pub enum Lookup {
    Pending(Box<PendingDevice>),
    AlreadyAnswered {
        approved: bool,
    },
    /// No live request has this code.
    Unknown,
    /// The person's attempts are spent (approvals budget).
    Limited,
    /// A link whose budget is spent: the code only fills in the form.
    NotLookedUp,
}

/// How a decision ended.
pub enum Decided {
    Recorded,
    /// Someone answered first (another tab, another replica); nothing changed.
    AlreadyAnswered,
}

fn attempt_key(identity: &Identity, budget: Budget, slot: usize) -> String {
    let who = digest(&format!("{}|{}", identity.source_id, identity.user_name));
    match budget {
        Budget::Approve => format!("sso-device-wrong:{who}:{slot}"),
        Budget::Link => format!("sso-device-link:{who}:{slot}"),
    }
}

impl DeviceService {
    /// Finds the pending request `code` names for `identity`. Every lookup takes one
    /// of the person's attempt slots of `budget` first (atomically, so parallel
    /// guesses count too); a code that names a request gives its slot back.
    pub async fn lookup(
        &self,
        identity: &Identity,
        code: UserCode,
        budget: Budget,
    ) -> Result<Lookup, DeviceError> {
        let mut slot = None;
        for i in 0..WRONG_CODE_LIMIT {
            let key = attempt_key(identity, budget, i);
            if self
                .cache
                .put_if_absent(&key, b"1", WRONG_CODE_WINDOW)
                .await?
            {
                slot = Some(key);
                break;
            }
        }
        let Some(slot) = slot else {
            return Ok(match budget {
                Budget::Link => Lookup::NotLookedUp,
                Budget::Approve => Lookup::Limited,
            });
        };
        let Some(device_hash) = self.get_text(&super::user_code_key(&code)).await? else {
            return Ok(Lookup::Unknown);
        };
        let Some(grant) = self
            .get_json::<DeviceGrant>(&device_key(&device_hash))
            .await?
        else {
            return Ok(Lookup::Unknown);
        };
        if grant.expires_at <= self.now() || !same(&grant.user_code, code.as_str()) {
            return Ok(Lookup::Unknown);
        }
        let _ = self.cache.delete(&slot).await;
        Ok(match grant.decision {
            Decision::Pending => Lookup::Pending(Box::new(PendingDevice {
                device_hash,
                grant,
                user_code: code,
            })),
            Decision::Approved { .. } => Lookup::AlreadyAnswered { approved: true },
            Decision::Denied => Lookup::AlreadyAnswered { approved: false },
        })
    }

    /// Records `approver`'s answer to a pending request, once: a second answer (from
    /// anywhere) changes nothing.
    pub async fn decide(
        &self,
        pending: &PendingDevice,
        approver: Approver,
        approve: bool,
    ) -> Result<Decided, DeviceError> {
        let remaining = pending.grant.expires_at - self.now();
        let decided = format!("sso-device-decided:{}", pending.device_hash);
        if !self.first(&decided, "1", remaining).await? {
            return Ok(Decided::AlreadyAnswered);
        }
        let decision = if approve {
            Decision::Approved {
                identity: approver.identity,
                signed_in_at: approver.signed_in_at,
                valid_from_ms: approver.valid_from_ms,
            }
        } else {
            Decision::Denied
        };
        let grant = DeviceGrant {
            decision,
            ..pending.grant.clone()
        };
        if let Err(error) = self
            .put_json(&device_key(&pending.device_hash), &grant, remaining)
            .await
        {
            let _ = self.cache.delete(&decided).await;
            return Err(error);
        }
        Ok(Decided::Recorded)
    }
}
