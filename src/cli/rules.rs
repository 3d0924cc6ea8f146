//! `rolegate rules export|plan|apply`: mapping rules kept in git. A client of the
//! admin API (`/admin/api/v1/ruleset`, `/ruleset/impact`): `export` writes the rules
//! in force with the version they came from, `plan` shows what a file would change
//! (rules and who gains or loses which role), `apply` publishes it only while that
//! version is still in force.
//!
//! Exit codes: 0 success (for `plan`: no changes), 1 error, 2 (`plan` only): the
//! file differs from the rules in force, like `terraform plan -detailed-exitcode`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::login::block_on;
use super::sso_client::normalize_base_url;
use crate::mapping::Rule;

/// The admin API token, when no `--token-file` is given.
pub const TOKEN_ENV: &str = "ROLEGATE_ADMIN_TOKEN";
const API: &str = "/admin/api/v1";
/// `plan`'s exit code when the file would change something.
const EXIT_CHANGES: u8 = 2;

/// `rolegate rules`.
#[derive(Debug, Clone, clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
    /// Rolegate's base URL, e.g. https://rolegate.example.com.
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// File holding an admin API token (otherwise $ROLEGATE_ADMIN_TOKEN); it must
    /// not be readable by group or others.
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum RulesCommand {
    /// Write the rules in force, and the version they are, to FILE (`-`: stdout).
    Export { file: PathBuf },
    /// Show what FILE would change: rules added, removed and changed, and who gains
    /// or loses which role. Exits 0 with no changes, 2 with changes, 1 on error.
    Plan { file: PathBuf },
    /// Publish FILE as the next version, only if the version it was exported from
    /// is still in force.
    Apply { file: PathBuf },
}

/// The file `export` writes and `plan`/`apply` read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RulesFile {
    /// The ruleset version the file was exported from.
    pub base_version: i64,
    pub rules: Vec<Value>,
}

/// Why a command failed: lines printed as `error: ...`.
#[derive(Debug)]
struct Failure(Vec<String>);

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure(vec![message])
    }
}

/// Runs `rolegate rules`; prints its own errors.
pub fn run(args: &RulesArgs) -> ExitCode {
    let outcome = block_on(run_command(args)).and_then(|result| result.map_err(|f| f.0.join("\n")));
    match outcome {
        Ok(code) => code,
        Err(lines) => {
            for line in lines.lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run_command(args: &RulesArgs) -> Result<ExitCode, Failure> {
    let url = args
        .url
        .as_deref()
        .ok_or_else(|| "give Rolegate's URL with --url https://rolegate.example.com".to_owned())?;
    let token = read_token(args.token_file.as_deref(), std::env::var(TOKEN_ENV).ok())?;
    let client = AdminClient::new(&normalize_base_url(url)?, token)?;
    match &args.command {
        RulesCommand::Export { file } => export(&client, file).await,
        RulesCommand::Plan { file } => plan(&client, file).await,
        RulesCommand::Apply { file } => apply(&client, file).await,
    }
}

/// The token from `--token-file` (trimmed; refused when group or others may read
/// it) or else from the environment.
fn read_token(file: Option<&Path>, env: Option<String>) -> Result<String, String> {
    let token = match file {
        Some(path) => {
            refuse_shared_file(path)?;
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?
        }
        None => env.unwrap_or_default(),
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(format!(
            "no admin API token: set {TOKEN_ENV} or give --token-file PATH (create one with `rolegate admin bootstrap --token NAME` or POST /admin/api/v1/tokens)"
        ));
    }
    Ok(token)
}

#[cfg(unix)]
fn refuse_shared_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "the token file {} is readable by group or others (mode {:o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_shared_file(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// The admin API's answer to one call.
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    /// The admin API's errors as `CODE: message (at pointer)`, every one of them.
    fn errors(&self) -> Vec<String> {
        let line = |error: &Value| {
            let code = error["code"].as_str().unwrap_or("ERROR");
            let message = error["message"].as_str().unwrap_or("no details given");
            match error["pointer"].as_str() {
                Some(pointer) => format!("{code}: {message} (at {pointer})"),
                None => format!("{code}: {message}"),
            }
        };
        match self.body["errors"].as_array() {
            Some(all) if !all.is_empty() => all.iter().map(line).collect(),
            _ if self.body["error"].is_object() => vec![line(&self.body["error"])],
            _ => vec![format!("HTTP {}: {}", self.status, self.body)],
        }
    }
}

/// The admin API of one Rolegate, with a bearer token.
struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    fn new(base: &str, token: String) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("rolegate-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: base.to_owned(),
            token,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        if_match: Option<i64>,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let url = format!("{}{API}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .header("accept", "application/json");
        if let Some(version) = if_match {
            request = request.header("if-match", format!("\"v{version}\""));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach Rolegate at {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("cannot read the answer of {url}: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    /// `GET /ruleset`: the version in force and its rules.
    async fn current(&self) -> Result<RulesFile, Failure> {
        let answer = self
            .call(reqwest::Method::GET, "/ruleset", None, None)
            .await?;
        if answer.status != 200 {
            return Err(Failure(answer.errors()));
        }
        Ok(RulesFile {
            base_version: answer.body["version"].as_i64().unwrap_or(0),
            rules: answer.body["rules"].as_array().cloned().unwrap_or_default(),
        })
    }
}

fn read_file(path: &Path) -> Result<RulesFile, String> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read the rules from standard input: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a rules file ({{\"base_version\": N, \"rules\": [...]}}, as `rolegate rules export` writes): {e}",
            path.display()
        )
    })
}

async fn export(client: &AdminClient, path: &Path) -> Result<ExitCode, Failure> {
    let current = client.current().await?;
    let mut text = serde_json::to_string_pretty(&current)
        .map_err(|e| format!("cannot write the rules: {e}"))?;
    text.push('\n');
    if path == Path::new("-") {
        std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write to standard output: {e}"))?;
    } else {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!(
            "exported {} rules of version {} to {}",
            current.rules.len(),
            current.base_version,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn plan(client: &AdminClient, path: &Path) -> Result<ExitCode, Failure> {
    let file = read_file(path)?;
    let current = client.current().await?;
    let mut out = String::new();
    if file.base_version == current.base_version {
        out.push_str(&format!(
            "{} was exported from version {}, which is still in force.\n",
            path.display(),
            file.base_version
        ));
    } else {
        out.push_str(&format!(
            "warning: {} was exported from version {}, but version {} is in force now: `apply` will refuse it; export again and re-apply your edits.\n",
            path.display(),
            file.base_version,
            current.base_version
        ));
    }
    let diff = rule_diff(&normalized(&current.rules), &normalized(&file.rules));
    if diff.is_empty() {
        out.push_str("No changes: the file's rules are the rules in force.\n");
        print!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    out.push_str("\nRules:\n");
    for line in &diff {
        out.push_str(&format!("  {line}\n"));
    }
    let answer = client
        .call(
            reqwest::Method::POST,
            "/ruleset/impact",
            None,
            Some(&json!({ "rules": file.rules })),
        )
        .await?;
    if answer.status != 200 {
        print!("{out}");
        return Err(Failure(answer.errors()));
    }
    out.push_str("\nImpact (people who signed in recently):\n");
    let impact = impact_lines(&answer.body);
    if impact.is_empty() {
        out.push_str("  nobody gains or loses a role\n");
    }
    for line in impact {
        out.push_str(&format!("  {line}\n"));
    }
    print!("{out}");
    Ok(ExitCode::from(EXIT_CHANGES))
}

async fn apply(client: &AdminClient, path: &Path) -> Result<ExitCode, Failure> {
    let file = read_file(path)?;
    let answer = client
        .call(
            reqwest::Method::PUT,
            "/ruleset",
            Some(file.base_version),
            Some(&json!({ "rules": file.rules })),
        )
        .await?;
    match answer.status {
        200 => {
            let version = answer.body["version"].as_i64().unwrap_or_default();
            println!(
                "published {} rules as version {version} (on top of version {})",
                file.rules.len(),
                file.base_version
            );
            Ok(ExitCode::SUCCESS)
        }
        412 => {
            let now = match client.current().await {
                Ok(current) => format!("v{}", current.base_version),
                Err(_) => "a later version".to_owned(),
            };
            Err(Failure(vec![format!(
                "the ruleset changed since {} was exported (base v{}, now {now}): run `rolegate rules export` again and re-apply your edits",
                path.display(),
                file.base_version
            )]))
        }
        _ => Err(Failure(answer.errors())),
    }
}

/// Rules with their defaults filled in (`priority`, `enabled`, ...), so that a field
/// left out and one spelled out with its default compare equal; a rule that does
/// not parse is kept as written (the server names its fault).
fn normalized(rules: &[Value]) -> Vec<Value> {
    rules
        .iter()
        .map(|rule| {
            serde_json::from_value::<Rule>(rule.clone())
                .ok()
                .and_then(|parsed| serde_json::to_value(parsed).ok())
                .unwrap_or_else(|| rule.clone())
        })
        .collect()
}

/// Rules added, removed and changed (by id), a changed one with its fields'
/// before and after; and whether the order changed.
pub fn rule_diff(current: &[Value], wanted: &[Value]) -> Vec<String> {
    let id = |rule: &Value| rule["id"].as_str().unwrap_or("").to_owned();
    let before: BTreeMap<String, &Value> = current.iter().map(|r| (id(r), r)).collect();
    let after: BTreeMap<String, &Value> = wanted.iter().map(|r| (id(r), r)).collect();
    let mut lines = Vec::new();
    for (key, rule) in &after {
        match before.get(key) {
            None => lines.push(format!("+ {key}: {}", compact(rule))),
            Some(old) if old != rule => {
                lines.push(format!("~ {key}:"));
                lines.extend(
                    field_diff(old, rule)
                        .into_iter()
                        .map(|l| format!("    {l}")),
                );
            }
            Some(_) => {}
        }
    }
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        lines.push(format!("- {key}"));
    }
    let order = |rules: &[Value], other: &BTreeMap<String, &Value>| -> Vec<String> {
        rules
            .iter()
            .map(id)
            .filter(|k| other.contains_key(k))
            .collect()
    };
    if lines.is_empty() && order(current, &after) != order(wanted, &before) {
        lines.push(format!(
            "order: {} (was {})",
            order(wanted, &before).join(", "),
            order(current, &after).join(", ")
        ));
    }
    lines
}

/// The top-level fields of a rule that differ, as `field: old → new`.
fn field_diff(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or_else(|| "(absent)".to_owned(), compact);
            format!("{k}: {} → {}", show(old.get(k)), show(new.get(k)))
        })
        .collect()
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    const LIMIT: usize = 200;
    match text.char_indices().nth(LIMIT) {
        None => text,
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// `POST /ruleset/impact`'s people as `user (source/subject) gains|loses role in account`.
fn impact_lines(body: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for person in body["people"].as_array().into_iter().flatten() {
        let who = format!(
            "{} ({}/{})",
            person["user_name"].as_str().unwrap_or("?"),
            person["source"].as_str().unwrap_or("?"),
            person["subject"].as_str().unwrap_or("?")
        );
        for (key, verb) in [("gains", "gains"), ("loses", "loses")] {
            for grant in person[key].as_array().into_iter().flatten() {
                lines.push(format!(
                    "{who} {verb} {} in account {}",
                    grant["role"].as_str().unwrap_or("?"),
                    grant["account"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_diff_names_added_removed_and_changed_fields() {
        let current = vec![
            json!({"id": "a", "name": "A", "priority": 100}),
            json!({"id": "b", "name": "B"}),
        ];
        let wanted = vec![
            json!({"id": "a", "name": "A", "priority": 10}),
            json!({"id": "c", "name": "C"}),
        ];
        let diff = rule_diff(&current, &wanted);
        assert_eq!(
            diff,
            [
                "~ a:",
                "    priority: 100 → 10",
                "+ c: {\"id\":\"c\",\"name\":\"C\"}",
                "- b"
            ]
        );
        assert!(rule_diff(&current, &current).is_empty());
        let swapped = vec![current[1].clone(), current[0].clone()];
        assert_eq!(rule_diff(&current, &swapped), ["order: b, a (was a, b)"]);
    }

    #[test]
    fn the_token_comes_from_the_environment_or_a_private_file() {
        assert!(read_token(None, None).unwrap_err().contains(TOKEN_ENV));
        assert_eq!(
            read_token(None, Some(" rgat_x\n".into())).unwrap(),
            "rgat_x"
        );
    }
}
