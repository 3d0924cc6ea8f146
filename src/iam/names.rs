use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Quoted, ValidationError, is_iam_name_char};

/// Declares a string newtype whose only constructor is `parse`, with the usual
/// conversions (Display, FromStr, AsRef<str>, serde through the validator).
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $validate:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, ValidationError> {
                let value = value.into();
                let check: fn(&str) -> Result<(), ValidationError> = $validate;
                check(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

fn iam_name(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    let len = value.chars().count();
    if len == 0 || len > max {
        return Err(ValidationError::new(
            field,
            format!(
                "{field} {} must be 1 to {max} characters long",
                Quoted(value)
            ),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !is_iam_name_char(*c)) {
        return Err(ValidationError::new(
            field,
            format!(
                "{field} {} contains {:?}; only letters, digits and _+=,.@- are allowed",
                Quoted(value),
                bad
            ),
        ));
    }
    Ok(())
}

validated_string!(
    /// A 12-digit AWS-style account id such as `123456789012`.
    AccountId,
    |v| {
        if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            Err(ValidationError::new(
                "AccountId",
                format!("account id {} must be exactly 12 digits", Quoted(v)),
            ))
        }
    }
);

validated_string!(
    /// An IAM role name: `[\w+=,.@-]{1,64}`, unique per account ignoring case.
    RoleName,
    |v| iam_name("RoleName", v, 64)
);

validated_string!(
    /// An IAM user name: `[\w+=,.@-]{1,64}`.
    UserName,
    |v| iam_name("UserName", v, 64)
);

validated_string!(
    /// An IAM group name: `[\w+=,.@-]{1,128}`.
    GroupName,
    |v| iam_name("GroupName", v, 128)
);

validated_string!(
    /// A managed or inline policy name: `[\w+=,.@-]{1,128}`.
    PolicyName,
    |v| iam_name("PolicyName", v, 128)
);

validated_string!(
    /// An IAM path: `/` or `/segments/` of printable ASCII, at most 512 characters.
    IamPath,
    |v| {
        let ok = v.len() <= 512
            && v.starts_with('/')
            && v.ends_with('/')
            && v.bytes().all(|b| (0x21..=0x7e).contains(&b))
            && !v.contains("//");
        if ok {
            Ok(())
        } else {
            Err(ValidationError::new(
                "Path",
                format!(
                    "path {} must be \"/\" or start and end with \"/\", use printable ASCII without spaces or \"//\", and be at most 512 characters",
                    Quoted(v)
                ),
            ))
        }
    }
);

validated_string!(
    /// A free-text description, at most 1,000 characters.
    Description,
    |v| {
        if v.chars().count() <= 1000 && !v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            Ok(())
        } else {
            Err(ValidationError::new(
                "Description",
                "description must be at most 1000 characters without control characters",
            ))
        }
    }
);

impl IamPath {
    pub fn root() -> Self {
        Self("/".to_owned())
    }
}

// Written out: the newtype macro must not derive Default for names, where "" is invalid.
#[allow(clippy::derivable_impls)]
impl Default for Description {
    fn default() -> Self {
        Self(String::new())
    }
}

impl Default for IamPath {
    fn default() -> Self {
        Self::root()
    }
}

/// A role's maximum session duration in seconds: IAM allows 1 to 12 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct MaxSessionDuration(u32);

impl MaxSessionDuration {
    pub const MIN_SECONDS: i64 = 3_600;
    pub const MAX_SECONDS: i64 = 43_200;
    pub const DEFAULT: Self = Self(3_600);

    pub fn from_seconds(seconds: i64) -> Result<Self, ValidationError> {
        if (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&seconds) {
            Ok(Self(seconds as u32))
        } else {
            Err(ValidationError::new(
                "MaxSessionDuration",
                format!(
                    "max session duration {seconds} s is outside 3600 to 43200 seconds (1 to 12 hours)"
                ),
            ))
        }
    }

    pub fn seconds(self) -> i64 {
        i64::from(self.0)
    }
}

impl Default for MaxSessionDuration {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<i64> for MaxSessionDuration {
    type Error = ValidationError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::from_seconds(value)
    }
}

impl From<MaxSessionDuration> for i64 {
    fn from(value: MaxSessionDuration) -> i64 {
        value.seconds()
    }
}

/// One IAM tag. Keys: 1–128 characters of letters, digits, spaces and `_.:/=+-@`;
/// values: 0–256 of the same; keys beginning `aws:` are reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

impl Tag {
    pub fn parse(
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, ValidationError> {
        let (key, value) = (key.into(), value.into());
        let key_len = key.chars().count();
        if key_len == 0 || key_len > 128 || !key.chars().all(is_tag_char) {
            return Err(ValidationError::new(
                "Tags",
                format!(
                    "tag key {} must be 1 to 128 letters, digits, spaces or _.:/=+-@",
                    Quoted(&key)
                ),
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ValidationError::new(
                "Tags",
                format!("tag key {} uses the reserved prefix aws:", Quoted(&key)),
            ));
        }
        if value.chars().count() > 256 || !value.chars().all(is_tag_char) {
            return Err(ValidationError::new(
                "Tags",
                format!(
                    "value of tag {} must be at most 256 letters, digits, spaces or _.:/=+-@",
                    Quoted(&key)
                ),
            ));
        }
        Ok(Self { key, value })
    }
}

/// A validated tag set: at most 50 tags, keys unique ignoring case (as IAM treats them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Tag>", into = "Vec<Tag>")]
pub struct Tags(Vec<Tag>);

impl Tags {
    pub const MAX: usize = 50;

    pub fn new(tags: Vec<Tag>) -> Result<Self, ValidationError> {
        if tags.len() > Self::MAX {
            return Err(ValidationError::new(
                "Tags",
                format!(
                    "{} tags given; at most {} are allowed",
                    tags.len(),
                    Self::MAX
                ),
            ));
        }
        for (i, tag) in tags.iter().enumerate() {
            // Re-validate: a `Tag` can be built by struct literal or deserialised.
            Tag::parse(tag.key.clone(), tag.value.clone())?;
            if tags[..i]
                .iter()
                .any(|t| t.key.eq_ignore_ascii_case(&tag.key))
            {
                return Err(ValidationError::new(
                    "Tags",
                    format!(
                        "duplicate tag key {} (keys are case-insensitive)",
                        Quoted(&tag.key)
                    ),
                ));
            }
        }
        Ok(Self(tags))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|t| t.key.eq_ignore_ascii_case(key))
            .map(|t| t.value.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<Tag>> for Tags {
    type Error = ValidationError;
    fn try_from(value: Vec<Tag>) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Tags> for Vec<Tag> {
    fn from(value: Tags) -> Vec<Tag> {
        value.0
    }
}
