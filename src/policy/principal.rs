//! `Principal` / `NotPrincipal` elements.

/// Who is making the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalRef<'a> {
    /// An IAM user, role, role session (`arn:P:sts::A:assumed-role/R/S`),
    /// federated user or account root, with its account id.
    Aws { arn: &'a str, account: &'a str },
    /// A web identity or SAML provider (`Principal: {"Federated": ...}`).
    Federated(&'a str),
    /// An AWS service principal such as `ec2.amazonaws.com`.
    Service(&'a str),
    /// An S3 canonical user id.
    CanonicalUser(&'a str),
    /// An unauthenticated caller (matches only `"*"`).
    Anonymous,
}

/// How a resource-policy statement's `Principal` matched the caller; decides
/// how the allow combines with identity policies (see `eval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MatchKind {
    /// Matched through the caller's account (`"123456789012"` or
    /// `arn:...:root`): delegates to the account's identity policies.
    Account,
    /// `"*"`, a role ARN matching one of its sessions, or `NotPrincipal`:
    /// grants, but boundary and session policies still apply.
    Indirect,
    /// The caller's exact ARN (or federated / service / canonical identity).
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AwsPrincipal {
    Everyone,
    Account(Box<str>),
    /// `arn:P:iam::A:role/path/Name`: also matches `arn:P:sts::A:assumed-role/Name/*`.
    Role {
        arn: Box<str>,
        partition: Box<str>,
        account: Box<str>,
        name: Box<str>,
    },
    Exact(Box<str>),
}

impl AwsPrincipal {
    fn parse(s: &str) -> AwsPrincipal {
        if s == "*" {
            return AwsPrincipal::Everyone;
        }
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            return AwsPrincipal::Account(s.into());
        }
        if let Some([_, partition, service, _, account, resource]) = super::matcher::split_arn(s)
            && service == "iam"
        {
            if resource == "root" {
                return AwsPrincipal::Account(account.into());
            }
            if let Some(path_and_name) = resource.strip_prefix("role/") {
                let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
                return AwsPrincipal::Role {
                    arn: s.into(),
                    partition: partition.into(),
                    account: account.into(),
                    name: name.into(),
                };
            }
        }
        AwsPrincipal::Exact(s.into())
    }

    fn arn(&self) -> Option<&str> {
        match self {
            AwsPrincipal::Role { arn, .. } | AwsPrincipal::Exact(arn) => Some(arn),
            _ => None,
        }
    }
}

/// A compiled `Principal` or `NotPrincipal` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalSpec {
    /// `"*"`.
    Everyone,
    Map {
        aws: Box<[AwsPrincipal]>,
        federated: Box<[Box<str>]>,
        service: Box<[Box<str>]>,
        canonical: Box<[Box<str>]>,
    },
}

/// The pieces of an `arn:P:sts::A:assumed-role/Role/Session` ARN.
fn assumed_role(arn: &str) -> Option<(&str, &str, &str)> {
    let [_, partition, service, _, account, resource] = super::matcher::split_arn(arn)?;
    if service != "sts" {
        return None;
    }
    let rest = resource.strip_prefix("assumed-role/")?;
    let (role, _session) = rest.split_once('/')?;
    Some((partition, account, role))
}

impl PrincipalSpec {
    pub(crate) fn new(
        aws: Vec<String>,
        federated: Vec<String>,
        service: Vec<String>,
        canonical: Vec<String>,
    ) -> PrincipalSpec {
        let boxed = |v: Vec<String>| v.into_iter().map(String::into_boxed_str).collect();
        PrincipalSpec::Map {
            aws: aws.iter().map(|s| AwsPrincipal::parse(s)).collect(),
            federated: boxed(federated),
            service: boxed(service),
            canonical: boxed(canonical),
        }
    }

    fn everyone_in_aws(aws: &[AwsPrincipal]) -> bool {
        aws.contains(&AwsPrincipal::Everyone)
    }

    /// `Principal`: how (if at all) the caller is named.
    pub(crate) fn match_kind(&self, who: &PrincipalRef<'_>) -> Option<MatchKind> {
        let PrincipalSpec::Map {
            aws,
            federated,
            service,
            canonical,
        } = self
        else {
            return Some(MatchKind::Indirect);
        };
        let direct = match who {
            PrincipalRef::Aws { arn, account } => {
                let session = assumed_role(arn);
                let mut best: Option<MatchKind> = None;
                for p in aws.iter() {
                    let kind = match p {
                        AwsPrincipal::Everyone => Some(MatchKind::Indirect),
                        AwsPrincipal::Account(a) => {
                            (**a == **account).then_some(MatchKind::Account)
                        }
                        AwsPrincipal::Exact(x) => (**x == **arn).then_some(MatchKind::Direct),
                        AwsPrincipal::Role {
                            arn: role_arn,
                            partition,
                            account: role_account,
                            name,
                        } => {
                            if **role_arn == **arn {
                                Some(MatchKind::Direct)
                            } else {
                                session
                                    .filter(|(p, a, r)| {
                                        **partition == **p && **role_account == **a && **name == **r
                                    })
                                    .map(|_| MatchKind::Indirect)
                            }
                        }
                    };
                    best = best.max(kind);
                    if best == Some(MatchKind::Direct) {
                        break;
                    }
                }
                return best;
            }
            PrincipalRef::Federated(f) => federated.iter().any(|x| **x == **f),
            PrincipalRef::Service(s) => service.iter().any(|x| x.eq_ignore_ascii_case(s)),
            PrincipalRef::CanonicalUser(c) => canonical.iter().any(|x| **x == **c),
            PrincipalRef::Anonymous => false,
        };
        if direct {
            Some(MatchKind::Direct)
        } else if Self::everyone_in_aws(aws) {
            Some(MatchKind::Indirect)
        } else {
            None
        }
    }

    /// `NotPrincipal`: does the statement apply to the caller? An AWS caller is
    /// the chain (its own ARN, its account); the statement applies unless
    /// every link of the chain is listed, so excluding a user or session also
    /// requires listing its account, as in AWS.
    pub(crate) fn not_principal_applies(&self, who: &PrincipalRef<'_>) -> bool {
        let PrincipalSpec::Map {
            aws,
            federated,
            service,
            canonical,
        } = self
        else {
            return false;
        };
        if Self::everyone_in_aws(aws) {
            return false;
        }
        match who {
            PrincipalRef::Aws { arn, account } => {
                let account_listed = aws
                    .iter()
                    .any(|p| matches!(p, AwsPrincipal::Account(a) if **a == **account));
                // The account root is its own ARN and its own account.
                let arn_listed = aws.iter().any(|p| p.arn() == Some(*arn))
                    || (account_listed && arn.ends_with(":root"));
                !(arn_listed && account_listed)
            }
            PrincipalRef::Federated(f) => !federated.iter().any(|x| **x == **f),
            PrincipalRef::Service(s) => !service.iter().any(|x| x.eq_ignore_ascii_case(s)),
            PrincipalRef::CanonicalUser(c) => !canonical.iter().any(|x| **x == **c),
            PrincipalRef::Anonymous => true,
        }
    }
}
