//! The `~/.aws/config` sections `rolegate login` suggests (and with `--write-config`
//! writes): an `[sso-session]`, a `[services]` section pointing STS, SSO and SSO-OIDC
//! at Rolegate, and one `credential_process` profile per role. Writing replaces only
//! those sections and keeps every other line of the file as it was.

use std::path::PathBuf;

use super::sso_client::{SSO_SCOPE, is_aws_owned_start_url};

/// One role the signed-in user may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleEntry {
    pub account_id: String,
    pub account_name: Option<String>,
    pub role_name: String,
}

/// One `[header]` and its `key = value` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub header: String,
    pub body: String,
}

impl Section {
    fn render(&self) -> String {
        format!("[{}]\n{}", self.header, self.body)
    }
}

/// The profile name used for a role: `<role>-<account>` (as on the portal page).
pub fn profile_name(role_name: &str, account_id: &str) -> String {
    format!("{role_name}-{account_id}")
}

/// The `credential_process` command line for a role.
pub fn credential_process(session: &str, account_id: &str, role_name: &str) -> String {
    let session = if session == super::sso_cache::DEFAULT_SESSION {
        String::new()
    } else {
        format!(" --sso-session {session}")
    };
    format!("rolegate credentials{session} --account-id {account_id} --role-name {role_name}")
}

/// Where the AWS tools reach a session (see [`sections`]).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Rolegate's base URL: the endpoint of STS, SSO and SSO-OIDC.
    pub base: &'a str,
    /// The `sso_start_url`: one the AWS CLI v2 accepts (see [`start_url_for_cli_v2`]).
    pub start_url: &'a str,
    pub region: &'a str,
}

/// The `sso_start_url` to write for the Rolegate at `base`: its own `/start` when it
/// is https (the AWS CLI v2 resolves it with HEAD to `aws_start_url`), else
/// `aws_start_url` itself (the CLI v2 refuses http start URLs). `aws_start_url` is
/// what the server's `HEAD /start` names (None: not known, e.g. an older server).
pub fn start_url_for_cli_v2(base: &str, aws_start_url: Option<&str>) -> String {
    match aws_start_url {
        Some(aws) if !base.starts_with("https://") && is_aws_owned_start_url(aws) => aws.to_owned(),
        _ => super::sso_client::start_url(base),
    }
}

/// The sections for a session and these roles: `[sso-session NAME]`, `[services
/// NAME]` pointing STS, SSO and SSO-OIDC at Rolegate, `[profile NAME]` that signs in
/// (`aws sso login --profile NAME`, `aws sso logout --profile NAME`: those commands
/// take their endpoints from the profile they run with, never from the sso-session),
/// and one `credential_process` profile per role. The default profile is never
/// touched, so one that points at real AWS keeps doing so.
pub fn sections(session: &str, target: Target<'_>, roles: &[RoleEntry]) -> Vec<Section> {
    let Target {
        base,
        start_url,
        region,
    } = target;
    let mut out = vec![
        Section {
            header: format!("sso-session {session}"),
            body: format!(
                "sso_start_url = {start_url}\nsso_region = {region}\nsso_registration_scopes = {SSO_SCOPE}\n"
            ),
        },
        Section {
            header: format!("services {session}"),
            body: format!(
                "sts =\n  endpoint_url = {base}\nsso =\n  endpoint_url = {base}\nsso_oidc =\n  endpoint_url = {base}\n"
            ),
        },
        Section {
            header: format!("profile {session}"),
            body: format!("sso_session = {session}\nservices = {session}\nregion = {region}\n"),
        },
    ];
    for role in roles {
        out.push(Section {
            header: format!(
                "profile {}",
                profile_name(&role.role_name, &role.account_id)
            ),
            body: format!(
                "credential_process = {}\nregion = {region}\nservices = {session}\n",
                credential_process(session, &role.account_id, &role.role_name)
            ),
        });
    }
    out
}

/// The sections as config-file text, separated by blank lines.
pub fn render(sections: &[Section]) -> String {
    sections
        .iter()
        .map(Section::render)
        .collect::<Vec<_>>()
        .join("\n")
}

fn header_of(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `existing` config text with `sections` added: a section with the same header is
/// replaced in place, new ones are appended; all other text is kept.
pub fn merge(existing: &str, sections: &[Section]) -> String {
    // Blocks: the text before the first header, then one block per section.
    let mut blocks: Vec<(Option<String>, String)> = vec![(None, String::new())];
    for line in existing.split_inclusive('\n') {
        if let Some(header) = header_of(line) {
            blocks.push((Some(header), String::new()));
        }
        if let Some((_, text)) = blocks.last_mut() {
            text.push_str(line);
        }
    }
    let mut appended = Vec::new();
    for section in sections {
        let rendered = section.render();
        let mut found = false;
        for (header, text) in &mut blocks {
            if header.as_deref() == Some(section.header.as_str()) {
                if found {
                    // A duplicate of the section: botocore would merge it; drop it.
                    text.clear();
                } else {
                    // Keep the blank lines that separated it from what follows.
                    let trailing = match &text[text.trim_end().len()..] {
                        "" => "\n",
                        whitespace => whitespace,
                    };
                    *text = format!("{}{trailing}", rendered.trim_end());
                    found = true;
                }
            }
        }
        if !found {
            appended.push(section.render());
        }
    }
    let mut out: String = blocks.into_iter().map(|(_, text)| text).collect();
    if !appended.is_empty() {
        if !out.is_empty() {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
        }
        out.push_str(&appended.join("\n"));
    }
    out
}

/// The AWS config file: `$AWS_CONFIG_FILE` or `~/.aws/config`.
pub fn config_path() -> Result<PathBuf, String> {
    let home = super::sso_cache::home_dir();
    match std::env::var("AWS_CONFIG_FILE") {
        Ok(path) if !path.is_empty() => match path.strip_prefix("~/") {
            Some(rest) => Ok(home?.join(rest)),
            None => Ok(PathBuf::from(path)),
        },
        _ => Ok(home?.join(".aws").join("config")),
    }
}

/// Adds or updates `sections` in the AWS config file; returns its path. A config
/// file that is a symbolic link (dotfile managers) is updated where it points, so
/// the link stays a link.
pub fn write(sections: &[Section]) -> Result<PathBuf, String> {
    let path = config_path()?;
    write_to(&path, sections)?;
    Ok(path)
}

fn write_to(path: &std::path::Path, sections: &[Section]) -> Result<(), String> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path)
            .map_err(|e| format!("cannot follow the link {}: {e}", path.display()))?,
        _ => path.to_owned(),
    };
    let existing = match std::fs::read_to_string(&target) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", target.display())),
    };
    let merged = merge(&existing, sections);
    super::sso_cache::write_private_atomic(&target, merged.as_bytes())
}

/// The SSO endpoint of `[services NAME]` in the AWS config file, if any: where the
/// Rolegate of a session is when its start URL is an AWS-shaped identifier.
pub fn configured_sso_endpoint(session: &str) -> Option<String> {
    let text = std::fs::read_to_string(config_path().ok()?).ok()?;
    sso_endpoint_in(&text, session)
}

fn sso_endpoint_in(text: &str, session: &str) -> Option<String> {
    let wanted = format!("services {session}");
    let mut inside = false;
    let mut service = String::new();
    for line in text.lines() {
        if let Some(header) = header_of(line) {
            inside = header == wanted;
            continue;
        }
        if !inside {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if line.starts_with(char::is_whitespace) {
            if service == "sso" && key.trim() == "endpoint_url" {
                return Some(value.trim().to_owned());
            }
        } else {
            service = key.trim().to_owned();
        }
    }
    None
}

/// The Rolegate base URL of a session: from the start URL its token was issued for,
/// or else from the config file (`[services NAME]`, then `sso_start_url`). A start
/// URL that is an AWS-shaped identifier names no server and is skipped.
pub fn rolegate_base(session: &str, token_start_url: Option<&str>) -> Option<String> {
    let own = |start: &str| {
        (!is_aws_owned_start_url(start)).then(|| super::sso_client::base_of_start_url(start))
    };
    token_start_url
        .and_then(own)
        .or_else(|| configured_sso_endpoint(session))
        .or_else(|| configured_start_url(session).as_deref().and_then(own))
}

/// The `sso_start_url` of `[sso-session NAME]` in the AWS config file, if any.
pub fn configured_start_url(session: &str) -> Option<String> {
    let text = std::fs::read_to_string(config_path().ok()?).ok()?;
    let wanted = format!("sso-session {session}");
    let mut inside = false;
    for line in text.lines() {
        if let Some(header) = header_of(line) {
            inside = header == wanted;
        } else if inside
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "sso_start_url"
        {
            return Some(value.trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Vec<RoleEntry> {
        vec![RoleEntry {
            account_id: "123456789012".into(),
            account_name: Some("demo".into()),
            role_name: "Developer".into(),
        }]
    }

    fn target(base: &str) -> Target<'_> {
        Target {
            base,
            start_url: "https://d-0000000000.awsapps.com/start",
            region: "us-east-1",
        }
    }

    #[test]
    fn snippet_has_session_services_login_profile_and_one_profile_per_role() {
        let text = render(&sections("corp", target("http://127.0.0.1:8080"), &roles()));
        assert_eq!(
            text,
            "[sso-session corp]\nsso_start_url = https://d-0000000000.awsapps.com/start\nsso_region = us-east-1\n\
             sso_registration_scopes = sso:account:access\n\n\
             [services corp]\nsts =\n  endpoint_url = http://127.0.0.1:8080\nsso =\n  endpoint_url = http://127.0.0.1:8080\n\
             sso_oidc =\n  endpoint_url = http://127.0.0.1:8080\n\n\
             [profile corp]\nsso_session = corp\nservices = corp\nregion = us-east-1\n\n\
             [profile Developer-123456789012]\ncredential_process = rolegate credentials --sso-session corp \
             --account-id 123456789012 --role-name Developer\nregion = us-east-1\nservices = corp\n"
        );
        assert_eq!(
            credential_process("rolegate", "1", "R"),
            "rolegate credentials --account-id 1 --role-name R"
        );
        assert_eq!(
            sso_endpoint_in(&text, "corp").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(sso_endpoint_in(&text, "other"), None);
    }

    #[test]
    fn start_urls_the_aws_cli_v2_accepts() {
        let aws = "https://d-0000000000.awsapps.com/start";
        assert_eq!(
            start_url_for_cli_v2("http://127.0.0.1:8080", Some(aws)),
            aws
        );
        assert_eq!(
            start_url_for_cli_v2("https://rg.example.com", Some(aws)),
            "https://rg.example.com/start",
            "https: the CLI v2 resolves it with HEAD"
        );
        assert_eq!(
            start_url_for_cli_v2("http://127.0.0.1:8080", None),
            "http://127.0.0.1:8080/start"
        );
        for owned in [
            aws,
            "https://my-org.awsapps.com/start/#/",
            "https://ssoins-1.portal.eu-west-1.app.aws",
            "https://identitycenter.amazonaws.com/ssoins-1",
        ] {
            assert!(is_aws_owned_start_url(owned), "{owned}");
        }
        for not_owned in [
            "http://d-0000000000.awsapps.com/start",
            "https://awsapps.com/start",
            "https://evilawsapps.com/start",
            "https://awsapps.com.evil.example/start",
            "https://127.0.0.1:8443/start",
            "not a url",
        ] {
            assert!(!is_aws_owned_start_url(not_owned), "{not_owned}");
        }
    }

    #[test]
    fn merge_replaces_own_sections_and_keeps_the_rest() {
        let existing = "# my settings\n[default]\nregion = eu-west-1\n\n[sso-session corp]\nsso_start_url = http://old/start\n\n[profile  work ]\nregion = us-west-2\n";
        let new = sections(
            "corp",
            Target {
                start_url: "http://new/start",
                ..target("http://new")
            },
            &roles(),
        );
        let merged = merge(existing, &new);
        assert!(merged.starts_with("# my settings\n[default]\nregion = eu-west-1\n\n[sso-session corp]\nsso_start_url = http://new/start\n"), "{merged}");
        assert!(
            merged.contains("[profile  work ]\nregion = us-west-2\n"),
            "{merged}"
        );
        assert!(!merged.contains("http://old"), "{merged}");
        assert_eq!(merged.matches("[sso-session corp]").count(), 1);
        assert!(merged.contains("\n\n[services corp]\n"), "{merged}");
        assert!(merged.ends_with("services = corp\n"), "{merged}");
        // Idempotent.
        assert_eq!(merge(&merged, &new), merged);
        // An empty file becomes just the snippet.
        assert_eq!(merge("", &new), render(&new));
    }

    #[test]
    fn a_linked_config_is_updated_through_its_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles-aws-config");
        std::fs::write(&real, "[default]\nregion = eu-west-1\n").unwrap();
        let link = dir.path().join("config");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_to(&link, &sections("corp", target("http://h"), &roles())).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "still a link"
        );
        let text = std::fs::read_to_string(&real).unwrap();
        assert!(
            text.starts_with("[default]\nregion = eu-west-1\n"),
            "{text}"
        );
        assert!(text.contains("[sso-session corp]"), "{text}");
    }
}
