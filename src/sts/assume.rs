//! Pure assume-role rules: parameter validation, session durations, session tags and
//! the request context that trust policies see. No I/O, no clock.

use crate::iam::RoleArn;
use crate::policy::{ContextKeys, ParseOptions, Policy, PolicyKind};

use super::error::StsError;
use super::token::{SessionClaims, SessionKind};

/// AWS: role sessions last 15 minutes at least.
pub const MIN_DURATION: i64 = 900;
/// AWS: role chaining (assuming a role with role credentials) caps sessions at one hour.
pub const CHAINED_MAX_DURATION: i64 = 3_600;
/// AWS default when DurationSeconds is omitted.
pub const DEFAULT_DURATION: i64 = 3_600;
/// GetSessionToken: 15 minutes to 36 hours, 12 hours by default.
pub const SESSION_TOKEN_MAX_DURATION: i64 = 129_600;
pub const SESSION_TOKEN_DEFAULT_DURATION: i64 = 43_200;
/// The packed limit of an inline session policy.
pub const MAX_SESSION_POLICY_CHARS: usize = 2_048;
/// The raw size (bytes, white space included) beyond which a session policy is
/// refused before anything else looks at it: the packed limit ignores white
/// space, and no legitimate 2,048-character policy needs 64 KiB of it.
pub const MAX_SESSION_POLICY_BYTES: usize = 64 * 1024;
pub const MAX_POLICY_ARNS: usize = 10;
pub const MAX_SESSION_TAGS: usize = 50;
pub const MAX_TRANSITIVE_TAG_KEYS: usize = 50;

/// A list parameter of the STS API and the most members AWS's model allows in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLimit {
    /// The member name as AWS's validation messages spell it (`policyArns`).
    pub parameter: &'static str,
    /// What the members are, for the message (`ARNs`).
    pub noun: &'static str,
    pub max: usize,
}

pub const POLICY_ARNS: ListLimit = ListLimit {
    parameter: "policyArns",
    noun: "ARNs",
    max: MAX_POLICY_ARNS,
};
pub const TAGS: ListLimit = ListLimit {
    parameter: "tags",
    noun: "tags",
    max: MAX_SESSION_TAGS,
};
pub const TRANSITIVE_TAG_KEYS: ListLimit = ListLimit {
    parameter: "transitiveTagKeys",
    noun: "keys",
    max: MAX_TRANSITIVE_TAG_KEYS,
};

impl ListLimit {
    /// AWS's ValidationError for a list with `len` members, if that is too many.
    pub fn check(&self, len: usize) -> Result<(), StsError> {
        if len <= self.max {
            Ok(())
        } else {
            Err(self.too_long(len))
        }
    }

    /// AWS's ValidationError for a list with `len` (more than `max`) members.
    pub fn too_long(&self, len: usize) -> StsError {
        StsError::constraint(
            self.parameter,
            &format!("{len} {}", self.noun),
            &format!("Member must have length less than or equal to {}", self.max),
        )
    }
}

/// The principal behind a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    pub account: String,
    /// As GetCallerIdentity reports it.
    pub arn: String,
    /// `AIDA...` for users, `AROA...:session` for role sessions.
    pub user_id: String,
    pub kind: CallerKind,
    /// IAM user tags, or session tags of a role session.
    pub principal_tags: Vec<(String, String)>,
    /// The session's claims when the credentials are temporary.
    pub session: Option<SessionClaims>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// Long-term access keys of an IAM user.
    IamUser { user_name: String },
    /// GetSessionToken credentials of an IAM user.
    UserSession { user_name: String },
    /// An assumed-role session.
    AssumedRole {
        role_arn: String,
        role_name: String,
        session_name: String,
    },
}

impl Caller {
    /// `aws:PrincipalType` as AWS names it.
    pub fn principal_type(&self) -> &'static str {
        match self.kind {
            CallerKind::IamUser { .. } | CallerKind::UserSession { .. } => "User",
            CallerKind::AssumedRole { .. } => "AssumedRole",
        }
    }

    /// The ARN that trust and resource policies match: role sessions match as the role.
    pub fn principal_arn(&self) -> &str {
        match &self.kind {
            CallerKind::AssumedRole { role_arn, .. } => role_arn,
            _ => &self.arn,
        }
    }

    /// The global condition keys AWS sets for every request by this principal.
    pub fn context(&self, now: i64, source_ip: Option<&str>) -> ContextKeys {
        let mut context = ContextKeys::new();
        context.insert("aws:PrincipalArn", self.principal_arn());
        context.insert("aws:PrincipalAccount", self.account.as_str());
        context.insert("aws:PrincipalType", self.principal_type());
        context.insert("aws:userid", self.user_id.as_str());
        if let CallerKind::IamUser { user_name } | CallerKind::UserSession { user_name } =
            &self.kind
        {
            context.insert("aws:username", user_name.as_str());
        }
        for (key, value) in &self.principal_tags {
            context.insert(&format!("aws:PrincipalTag/{key}"), value.as_str());
        }
        if let Some(source_identity) = self
            .session
            .as_ref()
            .and_then(|s| s.source_identity.as_deref())
        {
            context.insert("aws:SourceIdentity", source_identity);
        }
        request_keys(&mut context, source_ip, now);
        context.insert(
            "aws:TokenIssueTime",
            self.session
                .as_ref()
                .map_or(now, |s| s.issued_at)
                .to_string(),
        );
        context
    }

    /// [`Caller::context`] plus keys a service or person supplies about the request
    /// (`aws:SourceIp`, `s3:prefix`, ...); reserved keys must have been refused.
    pub fn context_with<'a>(
        &self,
        now: i64,
        extra: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> ContextKeys {
        let mut context = self.context(now, None);
        for (key, values) in extra {
            match values {
                [one] => {
                    context.insert(key, one.as_str());
                }
                many => {
                    context.set(key, many.iter().cloned());
                }
            }
        }
        context
    }

    pub fn is_role_session(&self) -> bool {
        matches!(self.kind, CallerKind::AssumedRole { .. })
    }
}

/// Context keys Rolegate derives from the verified session or its own clock; callers
/// of `/v1/authorize` and the console's "can I?" may not supply them.
pub fn is_reserved_context_key(key: &str) -> bool {
    const RESERVED_PREFIXES: &[&str] = &[
        "aws:principal",
        "aws:userid",
        "aws:username",
        "aws:sourceidentity",
        "aws:tokenissuetime",
        "aws:federatedprovider",
        "aws:currenttime",
        "aws:epochtime",
        "aws:multifactorauth",
        "aws:principaltag",
        "aws:requesttag",
    ];
    let lower = key.to_ascii_lowercase();
    RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// AssumeRole's parameters as they arrive on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssumeRoleParams {
    pub role_arn: String,
    pub role_session_name: String,
    pub duration_seconds: Option<i64>,
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    pub external_id: Option<String>,
    pub source_identity: Option<String>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// `[\w+=,.@-]` strings with a length range, as STS checks RoleSessionName and
/// SourceIdentity.
fn check_name(parameter: &str, value: &str, min: usize, max: usize) -> Result<(), StsError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(StsError::constraint(
            parameter,
            value,
            &format!("Member must have length between {min} and {max}"),
        ));
    }
    if !value.chars().all(is_name_char) {
        return Err(StsError::constraint(
            parameter,
            value,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(())
}

/// Checks everything that needs no lookup; returns the role (see [`role_arn`]).
pub fn validate_assume_role(params: &AssumeRoleParams) -> Result<Option<RoleArn>, StsError> {
    check_name("roleSessionName", &params.role_session_name, 2, 64)?;
    if let Some(source_identity) = &params.source_identity {
        check_name("sourceIdentity", source_identity, 2, 64)?;
        if source_identity.to_ascii_lowercase().starts_with("aws:") {
            return Err(StsError::validation(
                "SourceIdentity cannot begin with the reserved prefix aws:",
            ));
        }
    }
    if let Some(external_id) = &params.external_id {
        let len = external_id.chars().count();
        if !(2..=1224).contains(&len) {
            return Err(StsError::constraint(
                "externalId",
                external_id,
                "Member must have length between 2 and 1224",
            ));
        }
    }
    if let Some(policy) = &params.policy {
        check_session_policy_size(policy)?;
    }
    POLICY_ARNS.check(params.policy_arns.len())?;
    TAGS.check(params.tags.len())?;
    TRANSITIVE_TAG_KEYS.check(params.transitive_tag_keys.len())?;
    let tags = params
        .tags
        .iter()
        .map(|(key, value)| crate::iam::Tag::parse(key.clone(), value.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StsError::validation(e.to_string()))?;
    // Keys must be unique ignoring case, as IAM treats them.
    crate::iam::Tags::new(tags).map_err(|e| StsError::validation(e.to_string()))?;
    for key in &params.transitive_tag_keys {
        if !params.tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Err(StsError::validation(format!(
                "Transitive tag key {key} is not one of the session tags."
            )));
        }
    }
    role_arn(&params.role_arn)
}

/// An inline session policy's raw and packed size: AWS's `PackedPolicyTooLarge`
/// beyond either limit.
pub fn check_session_policy_size(policy: &str) -> Result<(), StsError> {
    if policy.len() > MAX_SESSION_POLICY_BYTES {
        return Err(StsError::new(
            "PackedPolicyTooLarge",
            400,
            format!(
                "The session policy ({} bytes) exceeds the limit of {MAX_SESSION_POLICY_BYTES} bytes before white space is removed.",
                policy.len()
            ),
        ));
    }
    // IAM measures the packed size, without insignificant white space.
    let packed = policy.chars().filter(|c| !c.is_whitespace()).count();
    if packed > MAX_SESSION_POLICY_CHARS {
        return Err(StsError::new(
            "PackedPolicyTooLarge",
            400,
            format!(
                "Packed size of the session policy ({packed} characters) exceeds the limit of {MAX_SESSION_POLICY_CHARS}."
            ),
        ));
    }
    Ok(())
}

/// Whether `value` is a valid role session name (`[\w+=,.@-]{2,64}`).
pub fn is_valid_session_name(value: &str) -> bool {
    check_name("roleSessionName", value, 2, 64).is_ok()
}

/// The time and address keys every request's context has.
pub fn request_keys(context: &mut ContextKeys, source_ip: Option<&str>, now: i64) {
    if let Some(ip) = source_ip {
        context.insert("aws:SourceIp", ip);
    }
    context.insert("aws:EpochTime", now.to_string());
    if let Some(time) = chrono::DateTime::from_timestamp(now, 0) {
        context.insert(
            "aws:CurrentTime",
            time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
}

/// The role an AssumeRole-shaped request names. Not shaped like a role ARN
/// (`arn:<partition>:iam::<12 characters>:role/...`) is AWS's ValidationError;
/// shaped like one but naming no role that can exist (a region, a malformed account,
/// path or name) is `None`, which callers answer as they answer a role that does not
/// exist, so that the caller learns nothing more.
pub fn role_arn(value: &str) -> Result<Option<RoleArn>, StsError> {
    let invalid = || {
        StsError::constraint(
            "roleArn",
            value,
            "Member must be a role ARN such as arn:aws:iam::123456789012:role/Name",
        )
    };
    let arn = crate::iam::Arn::parse(value).map_err(|_| invalid())?;
    if arn.service != "iam" || arn.account.len() != 12 || !arn.resource.starts_with("role/") {
        return Err(invalid());
    }
    Ok(RoleArn::parse(value).ok())
}

/// The session length for a role: DurationSeconds within [900, role max], one hour at
/// most for chained sessions.
pub fn role_session_duration(
    requested: Option<i64>,
    role_max: i64,
    chained: bool,
) -> Result<i64, StsError> {
    let duration = requested.unwrap_or(DEFAULT_DURATION.min(role_max));
    if !(MIN_DURATION..=43_200).contains(&duration) {
        return Err(StsError::constraint(
            "durationSeconds",
            &duration.to_string(),
            "Member must have value greater than or equal to 900 and less than or equal to 43200",
        ));
    }
    if chained && duration > CHAINED_MAX_DURATION {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration > role_max {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok(duration)
}

/// The new session's tags: transitive tags of the caller's session carry over and may
/// not be overridden; then the requested tags. Returns (tags, transitive keys).
#[allow(clippy::type_complexity)]
pub fn session_tags(
    caller: &Caller,
    requested: &[(String, String)],
    requested_transitive: &[String],
) -> Result<(Vec<(String, String)>, Vec<String>), StsError> {
    let mut tags = Vec::new();
    let mut transitive = Vec::new();
    if let Some(session) = &caller.session {
        for key in &session.transitive_tag_keys {
            if let Some((k, v)) = session
                .tags
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
            {
                tags.push((k.clone(), v.clone()));
                transitive.push(k.clone());
            }
        }
    }
    for (key, value) in requested {
        if tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Err(StsError::validation(format!(
                "One of the specified transitive tag keys can't be set because it conflicts with a transitive tag key from the calling session: {key}"
            )));
        }
        tags.push((key.clone(), value.clone()));
    }
    transitive.extend(requested_transitive.iter().cloned());
    if tags.len() > MAX_SESSION_TAGS {
        return Err(StsError::validation(
            "The number of session tags, including transitive tags, exceeds 50.",
        ));
    }
    Ok((tags, transitive))
}

/// SourceIdentity is immutable once set: a chained session keeps its caller's.
pub fn source_identity(
    caller: &Caller,
    requested: Option<&str>,
) -> Result<Option<String>, StsError> {
    let inherited = caller
        .session
        .as_ref()
        .and_then(|s| s.source_identity.clone());
    match (inherited, requested) {
        (Some(set), Some(new)) if set != new => Err(StsError::access_denied(format!(
            "SourceIdentity is already set to {set} for this session and cannot be changed."
        ))),
        (Some(set), _) => Ok(Some(set)),
        (None, new) => Ok(new.map(str::to_owned)),
    }
}

/// The request-specific keys a trust policy sees for AssumeRole.
pub fn trust_context(
    base: &mut ContextKeys,
    params: &AssumeRoleParams,
    tags: &[(String, String)],
    source_identity: Option<&str>,
) {
    if let Some(external_id) = &params.external_id {
        base.insert("sts:ExternalId", external_id.as_str());
    }
    if !params.role_session_name.is_empty() {
        base.insert("sts:RoleSessionName", params.role_session_name.as_str());
    }
    for (key, value) in tags {
        base.insert(&format!("aws:RequestTag/{key}"), value.as_str());
    }
    if !tags.is_empty() {
        base.set("aws:TagKeys", tags.iter().map(|(k, _)| k.clone()));
    }
    for key in &params.transitive_tag_keys {
        base.insert("sts:TransitiveTagKeys", key.as_str());
    }
    if let Some(source_identity) = source_identity {
        base.insert("sts:SourceIdentity", source_identity);
    }
}

/// The claims of a new role session.
#[allow(clippy::too_many_arguments)]
pub fn role_session_claims(
    partition: &crate::iam::Partition,
    account: &str,
    role_id: &str,
    role_arn: &str,
    role_name: &str,
    params: &AssumeRoleParams,
    keys: (String, String),
    issued_at: i64,
    duration: i64,
    tags: (Vec<(String, String)>, Vec<String>),
    source_identity: Option<String>,
    chained: bool,
) -> SessionClaims {
    let (access_key_id, secret_access_key) = keys;
    let (tags, transitive_tag_keys) = tags;
    SessionClaims {
        access_key_id,
        secret_access_key,
        kind: SessionKind::AssumedRole,
        account: account.to_owned(),
        principal_arn: partition
            .assumed_role_arn(account, role_name, &params.role_session_name)
            .to_string(),
        principal_id: format!("{role_id}:{}", params.role_session_name),
        role_arn: Some(role_arn.to_owned()),
        session_name: Some(params.role_session_name.clone()),
        issued_at,
        expires_at: issued_at + duration,
        session_policy: params.policy.clone(),
        policy_arns: params.policy_arns.clone(),
        tags,
        transitive_tag_keys,
        source_identity,
        identity_subject: None,
        chained,
    }
}

/// Parses an inline session policy (already size-checked by
/// [`validate_assume_role`]); a parse error is AWS's
/// `MalformedPolicyDocument`.
pub fn parse_session_policy(document: Option<&str>) -> Result<Option<Policy>, StsError> {
    document
        .map(|p| {
            Policy::parse(p, ParseOptions::new(PolicyKind::Session))
                .map_err(|e| StsError::malformed_policy(e.to_string()))
        })
        .transpose()
}

/// AWS reports the packed size as a percentage of the allowance.
pub fn packed_size_percent(params: &AssumeRoleParams, has_policy: bool) -> u32 {
    let policy_chars = if has_policy {
        params
            .policy
            .as_deref()
            .map_or(0, |p| p.chars().filter(|c| !c.is_whitespace()).count())
    } else {
        0
    };
    let tag_chars: usize = params.tags.iter().map(|(k, v)| k.len() + v.len()).sum();
    let used = policy_chars + tag_chars + params.policy_arns.iter().map(String::len).sum::<usize>();
    ((used * 100) / MAX_SESSION_POLICY_CHARS) as u32
}

impl Caller {
    /// The caller behind a verified session token.
    pub fn from_session(claims: SessionClaims) -> Self {
        let kind = match claims.kind {
            SessionKind::AssumedRole => {
                let role_arn = claims.role_arn.clone().unwrap_or_default();
                let role_name = role_arn.rsplit('/').next().unwrap_or_default().to_owned();
                CallerKind::AssumedRole {
                    role_arn,
                    role_name,
                    session_name: claims.session_name.clone().unwrap_or_default(),
                }
            }
            SessionKind::UserSession => CallerKind::UserSession {
                user_name: claims.session_name.clone().unwrap_or_default(),
            },
        };
        Caller {
            access_key_id: claims.access_key_id.clone(),
            account: claims.account.clone(),
            arn: claims.principal_arn.clone(),
            user_id: claims.principal_id.clone(),
            kind,
            principal_tags: claims.tags.clone(),
            session: Some(claims),
        }
    }
}
