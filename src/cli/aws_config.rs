//! The `~/.aws/config` sections `rolegate login` suggests (and with `--write-config`
//! writes): an `[sso-session]`, a `[services]` section pointing STS, SSO and SSO-OIDC
//! at Rolegate, and one `credential_process` profile per role. Writing replaces only
//! those sections and keeps every other line of the file as it was.

use std::path::PathBuf;

use super::sso_client::SSO_SCOPE;

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

/// The sections for a session at `base` (Rolegate's base URL) and these roles.
pub fn sections(session: &str, base: &str, region: &str, roles: &[RoleEntry]) -> Vec<Section> {
    let mut out = vec![
        Section {
            header: format!("sso-session {session}"),
            body: format!(
                "sso_start_url = {}\nsso_region = {region}\nsso_registration_scopes = {SSO_SCOPE}\n",
                super::sso_client::start_url(base)
            ),
        },
        Section {
            header: format!("services {session}"),
            body: format!(
                "sts =\n  endpoint_url = {base}\nsso =\n  endpoint_url = {base}\nsso_oidc =\n  endpoint_url = {base}\n"
            ),
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

    #[test]
    fn snippet_has_session_services_and_one_profile_per_role() {
        let text = render(&sections(
            "corp",
            "http://127.0.0.1:8080",
            "us-east-1",
            &roles(),
        ));
        assert_eq!(
            text,
            "[sso-session corp]\nsso_start_url = http://127.0.0.1:8080/start\nsso_region = us-east-1\n\
             sso_registration_scopes = sso:account:access\n\n\
             [services corp]\nsts =\n  endpoint_url = http://127.0.0.1:8080\nsso =\n  endpoint_url = http://127.0.0.1:8080\n\
             sso_oidc =\n  endpoint_url = http://127.0.0.1:8080\n\n\
             [profile Developer-123456789012]\ncredential_process = rolegate credentials --sso-session corp \
             --account-id 123456789012 --role-name Developer\nregion = us-east-1\nservices = corp\n"
        );
        assert_eq!(
            credential_process("rolegate", "1", "R"),
            "rolegate credentials --account-id 1 --role-name R"
        );
    }

    #[test]
    fn merge_replaces_own_sections_and_keeps_the_rest() {
        let existing = "# my settings\n[default]\nregion = eu-west-1\n\n[sso-session corp]\nsso_start_url = http://old/start\n\n[profile  work ]\nregion = us-west-2\n";
        let new = sections("corp", "http://new", "us-east-1", &roles());
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
        write_to(&link, &sections("corp", "http://h", "us-east-1", &roles())).unwrap();
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
