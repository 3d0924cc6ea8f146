use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{AccountId, IamPath, Quoted, RoleName, ValidationError};

/// The ARN partition Rolegate speaks as (`aws` by default, configurable so that
/// policies and SDKs written for another partition work unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Partition(String);

impl Partition {
    pub fn parse(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        let ok = (1..=32).contains(&value.len())
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value))
        } else {
            Err(ValidationError::new(
                "Partition",
                format!(
                    "partition {} must be 1 to 32 lower-case letters, digits or '-', starting with a letter (e.g. aws)",
                    Quoted(&value)
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `arn:<partition>:iam::<account>:user<path><name>`
    pub fn user_arn(&self, account: &AccountId, path: &IamPath, name: &str) -> Arn {
        Arn::iam(self, account, &format!("user{path}{name}"))
    }

    /// `arn:<partition>:iam::<account>:oidc-provider/<host/path>`
    pub fn oidc_provider_arn(&self, account: &AccountId, url: &str) -> Arn {
        Arn::iam(self, account, &format!("oidc-provider/{url}"))
    }

    /// `arn:<partition>:iam::<account>:saml-provider/<name>`
    pub fn saml_provider_arn(&self, account: &AccountId, name: &str) -> Arn {
        Arn::iam(self, account, &format!("saml-provider/{name}"))
    }

    /// `arn:<partition>:sts::<account>:assumed-role/<role name>/<session name>`
    pub fn assumed_role_arn(&self, account: &str, role_name: &str, session_name: &str) -> Arn {
        Arn {
            partition: self.0.clone(),
            service: "sts".into(),
            region: String::new(),
            account: account.into(),
            resource: format!("assumed-role/{role_name}/{session_name}"),
        }
    }

    /// `arn:<partition>:iam::<account>:policy<path><name>`, or the partition's global
    /// `arn:<partition>:iam::aws:policy<path><name>` for AWS-style managed policies.
    pub fn policy_arn(&self, account: Option<&AccountId>, path: &IamPath, name: &str) -> Arn {
        let owner = account.map_or("aws", AccountId::as_str);
        Arn {
            partition: self.0.clone(),
            service: "iam".into(),
            region: String::new(),
            account: owner.into(),
            resource: format!("policy{path}{name}"),
        }
    }
}

impl Default for Partition {
    fn default() -> Self {
        Self("aws".to_owned())
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Partition {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Partition> for String {
    fn from(value: Partition) -> String {
        value.0
    }
}

/// An Amazon Resource Name: `arn:partition:service:region:account:resource`.
/// The resource part may itself contain `:` and `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

impl Arn {
    fn iam(partition: &Partition, account: &AccountId, resource: &str) -> Self {
        Self {
            partition: partition.0.clone(),
            service: "iam".into(),
            region: String::new(),
            account: account.as_str().into(),
            resource: resource.into(),
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let invalid = |why: &str| {
            ValidationError::new(
                "Arn",
                format!("{} is not a valid ARN: {why}", Quoted(value)),
            )
        };
        let mut parts = value.splitn(6, ':');
        if parts.next() != Some("arn") {
            return Err(invalid("it must start with \"arn:\""));
        }
        let (Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid(
                "it needs six ':'-separated parts (arn:partition:service:region:account:resource)",
            ));
        };
        Partition::parse(partition).map_err(|_| invalid("the partition is not valid"))?;
        if service.is_empty()
            || !service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "the service must be lower-case letters, digits or '-'",
            ));
        }
        if resource.is_empty() {
            return Err(invalid("the resource part is empty"));
        }
        Ok(Self {
            partition: partition.into(),
            service: service.into(),
            region: region.into(),
            account: account.into(),
            resource: resource.into(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

impl FromStr for Arn {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A role's ARN, `arn:<partition>:iam::<account>:role<path><name>`, parsed once where
/// it arrives (STS parameters, the store's rows) so that nothing compares ARNs as
/// text: two role ARNs are equal when partition, account, path and name are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleArn {
    pub partition: Partition,
    pub account: AccountId,
    pub path: IamPath,
    pub name: RoleName,
}

impl RoleArn {
    pub fn new(partition: &Partition, account: AccountId, path: IamPath, name: RoleName) -> Self {
        Self {
            partition: partition.clone(),
            account,
            path,
            name,
        }
    }

    /// Parses `arn:<partition>:iam::<account>:role<path><name>`: a valid partition,
    /// no region, a 12-digit account, a valid path and role name.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let invalid = |why: &str| {
            ValidationError::new(
                "RoleArn",
                format!("{} is not a valid role ARN: {why}", Quoted(value)),
            )
        };
        let arn = Arn::parse(value)?;
        if arn.service != "iam" || !arn.region.is_empty() {
            return Err(invalid("it must be an IAM ARN without a region"));
        }
        let rest = arn
            .resource
            .strip_prefix("role/")
            .ok_or_else(|| invalid("the resource must be role/<path><name>"))?;
        let (path, name) = match rest.rfind('/') {
            Some(at) => (&rest[..=at], &rest[at + 1..]),
            None => ("", rest),
        };
        Ok(Self {
            partition: Partition::parse(arn.partition)?,
            account: AccountId::parse(arn.account)?,
            path: IamPath::parse(format!("/{path}"))?,
            name: RoleName::parse(name)?,
        })
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:iam::{}:role{}{}",
            self.partition, self.account, self.path, self.name
        )
    }
}

impl FromStr for RoleArn {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for RoleArn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_parse_into_their_parts_and_print_back() {
        for text in [
            "arn:aws:iam::123456789012:role/Admin",
            "arn:aws-cn:iam::123456789012:role/service/ci/Deploy-Bot",
        ] {
            let arn = RoleArn::parse(text).unwrap();
            assert_eq!(arn.to_string(), text);
        }
        let arn = RoleArn::parse("arn:aws:iam::123456789012:role/service/ci/Deploy-Bot").unwrap();
        assert_eq!(arn.account.as_str(), "123456789012");
        assert_eq!(arn.path.as_str(), "/service/ci/");
        assert_eq!(arn.name.as_str(), "Deploy-Bot");
        assert_ne!(
            arn,
            RoleArn::parse("arn:aws:iam::123456789012:role/Deploy-Bot").unwrap()
        );
    }

    #[test]
    fn other_arns_are_not_role_arns() {
        for text in [
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:sts::123456789012:role/Admin",
            "arn:aws:iam:us-east-1:123456789012:role/Admin",
            "arn:aws:iam::12345678901x:role/Admin",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role//Admin",
            "arn:aws:iam::123456789012:role/bad name",
            "role/Admin",
        ] {
            assert!(RoleArn::parse(text).is_err(), "{text}");
        }
    }
}
