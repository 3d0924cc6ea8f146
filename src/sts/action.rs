//! The STS query API's actions that Rolegate serves, parsed once at the edge.

/// An STS action (the `Action` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsAction {
    GetCallerIdentity,
    AssumeRole,
    AssumeRoleWithWebIdentity,
    AssumeRoleWithSaml,
    GetSessionToken,
    GetAccessKeyInfo,
    DecodeAuthorizationMessage,
}

impl StsAction {
    pub const ALL: [StsAction; 7] = [
        StsAction::GetCallerIdentity,
        StsAction::AssumeRole,
        StsAction::AssumeRoleWithWebIdentity,
        StsAction::AssumeRoleWithSaml,
        StsAction::GetSessionToken,
        StsAction::GetAccessKeyInfo,
        StsAction::DecodeAuthorizationMessage,
    ];

    /// The action named exactly `name` (AWS action names are case-sensitive).
    pub fn parse(name: &str) -> Option<StsAction> {
        Self::ALL.into_iter().find(|action| action.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StsAction::GetCallerIdentity => "GetCallerIdentity",
            StsAction::AssumeRole => "AssumeRole",
            StsAction::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
            StsAction::AssumeRoleWithSaml => "AssumeRoleWithSAML",
            StsAction::GetSessionToken => "GetSessionToken",
            StsAction::GetAccessKeyInfo => "GetAccessKeyInfo",
            StsAction::DecodeAuthorizationMessage => "DecodeAuthorizationMessage",
        }
    }

    /// Whether a successful answer carries a secret access key and session token.
    pub fn issues_credentials(self) -> bool {
        matches!(
            self,
            StsAction::AssumeRole
                | StsAction::AssumeRoleWithWebIdentity
                | StsAction::AssumeRoleWithSaml
                | StsAction::GetSessionToken
        )
    }

    /// Reads so routine that only their failures are audited.
    pub fn is_routine(self) -> bool {
        matches!(
            self,
            StsAction::GetCallerIdentity | StsAction::GetAccessKeyInfo
        )
    }

    /// Whether the request must carry a SigV4 signature (web identity and SAML are
    /// unsigned: the token or assertion is the credential).
    pub fn is_signed(self) -> bool {
        !matches!(
            self,
            StsAction::AssumeRoleWithWebIdentity | StsAction::AssumeRoleWithSaml
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for action in StsAction::ALL {
            assert_eq!(StsAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(StsAction::parse("assumerole"), None);
        assert_eq!(
            StsAction::parse("AssumeRoleWithSAML"),
            Some(StsAction::AssumeRoleWithSaml)
        );
        assert_eq!(StsAction::parse("AssumeRoleWithSaml"), None);
        assert!(!StsAction::AssumeRoleWithSaml.is_signed());
    }
}
