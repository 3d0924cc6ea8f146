//! The `rolegate` binary: `dev`, `serve`, `migrate`, `policy`, `admin`, and the
//! client commands `login`, `credentials`, `exec`, `logout` and `rules`.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use rolegate::app;
use rolegate::cli::credentials::{self as credentials_cli, Format, RoleArgs};
use rolegate::cli::login::{self as login_cli, LoginArgs};
use rolegate::cli::logout::{self as logout_cli, LogoutArgs};
use rolegate::cli::policy as policy_cli;
use rolegate::cli::rules::{self as rules_cli, RulesArgs};
use rolegate::config::{Config, LogFormat};
use rolegate::policy::PolicyKind;

#[derive(Parser)]
#[command(
    name = "rolegate",
    version,
    about = "Federated identity broker with its own AWS-compatible STS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run on an embedded SQLite database with demo data: no set-up needed.
    Dev {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the SQLite database and generated files live.
        #[arg(long, default_value = ".rolegate-dev")]
        data_dir: PathBuf,
        /// TOML file whose `[[identity_sources]]`, `[[saml_providers]]` (the demo
        /// roles trust those of the demo account), `server.public_url`,
        /// `server.trusted_proxies` and `sts.saml_audience` are applied at start-up (dev keeps its own
        /// database, cache and address); ROLEGATE_* variables apply too.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run in production from configuration (PostgreSQL, several replicas).
    Serve {
        /// TOML file layered over the defaults; ROLEGATE_* variables override both.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Apply the database migrations and exit.
    Migrate {
        /// TOML file layered over the defaults; ROLEGATE_* variables override both.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Add a new session-token key; tokens sealed with older keys stay valid until
    /// they expire. Replicas pick the new key up when they meet a token sealed with it.
    RotateTokenKey {
        /// TOML file layered over the defaults; ROLEGATE_* variables override both.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Sign in to a Rolegate from this terminal (device authorization); caches the
    /// token where the AWS CLI and SDKs find it and lists your roles.
    Login(LoginArgs),
    /// Print temporary credentials for a role (`credential_process` JSON by default).
    Credentials {
        #[command(flatten)]
        role: RoleArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Process)]
        format: Format,
    },
    /// Run a command with a role's temporary credentials in its environment.
    Exec {
        #[command(flatten)]
        role: RoleArgs,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Sign this terminal out: Rolegate ends the sign-in (its access and refresh
    /// tokens) and the cached token is deleted; the client registration is kept.
    Logout(LogoutArgs),
    /// Mapping rules in git: export the rules in force to a file, plan a file's
    /// changes (exit 0: none, 2: changes, 1: error) and apply it, through the admin
    /// API (token in $ROLEGATE_ADMIN_TOKEN or --token-file).
    Rules(RulesArgs),
    /// Validate and simulate IAM policies offline.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Administration from the server's own configuration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the first admin: a directory user in the first `directory:` group of
    /// `[admin] groups` and/or a write-scoped admin API token (printed once on
    /// stdout). Idempotent: an existing user is left alone; each --token run makes
    /// one more token.
    Bootstrap {
        /// TOML file layered over the defaults; ROLEGATE_* variables override both.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The directory user to create (left alone if it exists).
        #[arg(long)]
        user: Option<String>,
        /// Read the new user's password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Also create a write-scoped admin API token with this name.
        #[arg(long)]
        token: Option<String>,
    },
    /// Write the IAM model (accounts, roles, managed policies, directory users and
    /// groups, IAM users, OIDC providers, mapping rules) as one document: JSON, or
    /// TOML when DOCUMENT ends in .toml; `-` is standard output (JSON). No password
    /// hashes, TOTP secrets or access keys.
    Export {
        /// TOML file layered over the defaults; ROLEGATE_* variables override both.
        #[arg(long, short)]
        config: Option<PathBuf>,
        document: PathBuf,
    },
    /// Create and update the IAM model from a document `admin export` wrote: prints
    /// what will be created, updated or left alone, asks before writing (unless
    /// --yes), and never deletes.
    Import {
        /// TOML file layered over the defaults; ROLEGATE_* variables override both.
        #[arg(long, short)]
        config: Option<PathBuf>,
        document: PathBuf,
        /// Apply without asking (required when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Check policy documents; prints one line per invalid file, exits 0 only if all are valid.
    Validate {
        /// What the documents are: identity (also boundaries), trust, resource or session.
        #[arg(long = "type", default_value = "identity")]
        kind: PolicyKind,
        /// Also apply the 6,144-character limit of customer managed policies.
        #[arg(long)]
        customer: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Evaluate a request against policies; prints Allowed, ImplicitDeny or ExplicitDeny first.
    Simulate {
        /// Identity policy file (repeat for several).
        #[arg(long = "policy", required = true)]
        policies: Vec<PathBuf>,
        /// Permissions boundary policy file.
        #[arg(long)]
        boundary: Option<PathBuf>,
        /// Session policy file (repeat for several).
        #[arg(long = "session-policy")]
        session_policies: Vec<PathBuf>,
        /// Resource-based policy file of the resource.
        #[arg(long)]
        resource_policy: Option<PathBuf>,
        /// Account that owns the resource (default: the principal's account).
        #[arg(long)]
        resource_owner: Option<String>,
        /// The calling principal's ARN.
        #[arg(long, default_value = "arn:aws:iam::123456789012:user/simulator")]
        principal: String,
        #[arg(long)]
        action: String,
        #[arg(long)]
        resource: String,
        /// Context key and value, as key=value; repeat a key for a multi-valued key.
        #[arg(long = "context")]
        context: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy { command } => run_policy(command),
        Command::Admin {
            command:
                AdminCommand::Bootstrap {
                    config,
                    user,
                    password_stdin,
                    token,
                },
        } => runtime()
            .and_then(|rt| rt.block_on(admin_bootstrap(config, user, password_stdin, token))),
        Command::Admin {
            command: AdminCommand::Export { config, document },
        } => runtime().and_then(|rt| rt.block_on(admin_export(config, document))),
        Command::Admin {
            command:
                AdminCommand::Import {
                    config,
                    document,
                    yes,
                },
        } => runtime().and_then(|rt| rt.block_on(admin_import(config, document, yes))),
        Command::Rules(args) => Ok(rules_cli::run(&args)),
        Command::Login(args) => login_cli::run(&args),
        Command::Credentials { role, format } => credentials_cli::run_credentials(&role, format),
        Command::Exec { role, command } => credentials_cli::run_exec(&role, &command),
        Command::Logout(args) => logout_cli::run(&args),
        Command::Dev {
            listen,
            data_dir,
            config,
        } => runtime().and_then(|rt| rt.block_on(dev(listen, data_dir, config))),
        Command::Serve { config } => runtime().and_then(|rt| rt.block_on(serve(config))),
        Command::Migrate { config } => runtime().and_then(|rt| rt.block_on(migrate(config))),
        Command::RotateTokenKey { config } => {
            runtime().and_then(|rt| rt.block_on(rotate_token_key(config)))
        }
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("rolegate: {message}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<actix_web::rt::Runtime, String> {
    actix_web::rt::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn run_policy(command: PolicyCommand) -> Result<ExitCode, String> {
    match command {
        PolicyCommand::Validate {
            kind,
            customer,
            files,
        } => {
            let (invalid, all_valid) = policy_cli::validate(&files, kind, customer);
            for line in &invalid {
                println!("{line}");
            }
            eprintln!(
                "{} of {} {kind} policies valid",
                files.len() - invalid.len(),
                files.len()
            );
            Ok(if all_valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PolicyCommand::Simulate {
            policies,
            boundary,
            session_policies,
            resource_policy,
            resource_owner,
            principal,
            action,
            resource,
            context,
        } => {
            let output = policy_cli::simulate(&policy_cli::Simulation {
                policies,
                boundary,
                session_policies,
                resource_policy,
                resource_owner,
                principal,
                action,
                resource,
                context,
            })?;
            print!("{output}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn bind(listen: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))
}

async fn dev(
    listen: SocketAddr,
    data_dir: PathBuf,
    config_file: Option<PathBuf>,
) -> Result<ExitCode, String> {
    app::init_logging("info,sqlx=warn", LogFormat::Text);
    // Only the identity sources and how clients reach the server are taken from
    // the configuration.
    let configured = load_config(config_file)?;
    let server_settings = configured.server.settings().map_err(|e| e.to_string())?;
    let mut env = app::prepare_dev(&data_dir)
        .await
        .map_err(|e| format!("dev: {e}"))?;
    let mut admin_groups = env.state.admin.groups().to_vec();
    for group in configured.admin.groups().map_err(|e| e.to_string())? {
        if !admin_groups.contains(&group) {
            admin_groups.push(group);
        }
    }
    env.state = env
        .state
        .with_server(server_settings)
        .with_sso(configured.sso.settings())
        .with_sts_settings(configured.sts.settings().map_err(|e| e.to_string())?)
        .with_admin_groups(admin_groups);
    let mut sources = app::apply_identity_sources(&env.state, &configured.identity_sources).await?;
    let (saml_providers, saml_lines) =
        app::apply_saml_providers(&env.state, &configured.saml_providers).await?;
    sources.extend(saml_lines);
    for provider in &saml_providers {
        if provider.account_id.as_str() == rolegate::seed::DEMO_ACCOUNT_ID {
            sources.extend(
                rolegate::seed::trust_saml_provider(
                    env.state.store.as_ref(),
                    &provider.arn,
                    &provider.name,
                )
                .await
                .map_err(|e| format!("dev: cannot trust SAML provider {}: {e}", provider.arn))?,
            );
        }
    }
    let listener = bind(listen)?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "Rolegate dev (embedded SQLite at {})",
        env.database_path.display()
    );
    if let Some(path) = &env.generated_master_key {
        println!(
            "Generated a master key in {} (it seals this database's secrets; keep it with the database)",
            path.display()
        );
    }
    println!(
        "Seed: {} created, {} already present",
        env.seeded.created,
        env.seeded.lines.len() - env.seeded.created
    );
    for line in env.seeded.lines.iter().chain(&sources) {
        println!("  {line}");
    }
    let exports = env
        .write_aws_files(address)
        .map_err(|e| format!("dev: cannot write the AWS config files: {e}"))?;
    println!(
        "AWS CLI and SDKs (profiles {p} and {p}-role):",
        p = "rolegate-dev"
    );
    for line in &exports {
        println!("  {line}");
    }
    println!("  aws sts get-caller-identity --profile rolegate-dev-role");
    println!("Portal: http://{address}/start  (directory sign-ins below)");
    println!(
        "AWS CLI v2 (aws configure sso / aws sso login): sso_start_url = {}, SSO endpoints \
         http://{address} (see the README, \"AWS CLI v2\"); `rolegate login --url http://{address} \
         --write-config` writes it all",
        env.state.sso.aws_start_url
    );
    for (user, password) in rolegate::seed::DEMO_SIGN_INS {
        println!("  {user} / {password}");
    }
    let groups: Vec<String> = env
        .state
        .admin
        .groups()
        .iter()
        .map(ToString::to_string)
        .collect();
    println!(
        "Admin API: http://{address}/admin/api/v1/ (admins: members of {}; alice is one). A write-scoped token is in {} ({}):",
        groups.join(", "),
        env.admin_token_path.display(),
        if env.admin_token_created {
            "new"
        } else {
            "kept"
        }
    );
    println!(
        "  curl -H \"Authorization: Bearer $(cat {})\" http://{address}/admin/api/v1/whoami",
        env.admin_token_path.display()
    );
    let server = app::build_server(listener, env.state, 0).map_err(|e| e.to_string())?;
    println!("Ready: http://{address}/  (health: http://{address}/healthz)");
    server.await.map_err(|e| format!("server stopped: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn load_config(file: Option<PathBuf>) -> Result<Config, String> {
    Config::load(file.as_deref(), std::env::vars()).map_err(|e| e.to_string())
}

async fn serve(file: Option<PathBuf>) -> Result<ExitCode, String> {
    let config = load_config(file)?;
    app::init_logging(&config.log.filter, config.log.format);
    let sealer = config.sealer().map_err(|e| e.to_string())?;
    // Before anything else that takes time: a replica that could lose audit events
    // does not start.
    let spool = rolegate::service::audit_spool::AuditSpool::open(
        &config.audit.spool_dir,
        config.store_options().random,
    )
    .map_err(|e| format!("audit.spool_dir: {e}"))?;
    let store = app::open_configured_store(&config).await?;
    let skew = chrono::Duration::seconds(i64::from(config.sts.max_clock_skew_seconds));
    let cache_url = Some(config.cache.url.as_str()).filter(|u| !u.trim().is_empty());
    let cache = rolegate::cache::open_cache(cache_url, &config.cache.prefix, store.clock())
        .await
        .map_err(|e| e.to_string())?;
    let state = app::state_with_cache(store, sealer, skew, cache)
        .await?
        .with_portal(config.portal.settings())
        .with_sso(config.sso.settings())
        .with_sts_settings(config.sts.settings().map_err(|e| e.to_string())?)
        .with_server(config.server.settings().map_err(|e| e.to_string())?)
        .with_metrics_access(config.metrics.access().map_err(|e| e.to_string())?);
    tracing::info!(spool = %spool.path().display(), "audit spool");
    let state = state.with_audit_spool(spool)?;
    state.sts.iam_cache().configure(config.database.iam_cache());
    for line in app::apply_identity_sources(&state, &config.identity_sources).await? {
        tracing::info!("{line}");
    }
    for line in app::apply_saml_providers(&state, &config.saml_providers)
        .await?
        .1
    {
        tracing::info!("{line}");
    }
    let listener = bind(config.server.listen)?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    if state.server.public_url.is_none() && !address.ip().is_loopback() {
        tracing::warn!(
            listen = %address,
            "server.public_url is not set while listening beyond loopback: links, redirects and cookies follow each request's Host header, and no HSTS is sent. Set server.public_url (ROLEGATE_SERVER__PUBLIC_URL) to the https origin clients use"
        );
    }
    tracing::info!(listen = %address, backend = ?state.store.backend(), "rolegate serving");
    if let Some(listen) = state.metrics_access.listen {
        let listener = bind(listen)?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let metrics =
            app::build_metrics_server(listener, state.clone()).map_err(|e| e.to_string())?;
        actix_web::rt::spawn(metrics);
        tracing::info!(listen = %address, "metrics served at /metrics");
        println!("Metrics: http://{address}/metrics");
    }
    let server =
        app::build_server(listener, state, config.server.workers).map_err(|e| e.to_string())?;
    println!("Ready: http://{address}/");
    server.await.map_err(|e| format!("server stopped: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(file: Option<PathBuf>) -> Result<ExitCode, String> {
    let config = load_config(file)?;
    let store = app::open_configured_store(&config).await?;
    println!(
        "migrations applied to {} ({:?})",
        rolegate::secrets::redact_url(&config.database.url),
        store.backend()
    );
    Ok(ExitCode::SUCCESS)
}

async fn admin_bootstrap(
    file: Option<PathBuf>,
    user: Option<String>,
    password_stdin: bool,
    token: Option<String>,
) -> Result<ExitCode, String> {
    let config = load_config(file)?;
    let groups = config.admin.groups().map_err(|e| e.to_string())?;
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        Some(rolegate::secrets::Secret::new(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    } else {
        None
    };
    let store = app::open_configured_store(&config).await?;
    let done = rolegate::bootstrap::run(
        store,
        &groups,
        rolegate::bootstrap::Bootstrap {
            user,
            password,
            token,
        },
    )
    .await?;
    for line in &done.lines {
        eprintln!("{line}");
    }
    if let Some(secret) = done.token_secret {
        println!("{secret}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate_token_key(file: Option<PathBuf>) -> Result<ExitCode, String> {
    let config = load_config(file)?;
    let sealer = config.sealer().map_err(|e| e.to_string())?;
    let store = app::open_configured_store(&config).await?;
    let state = app::app_state(store, sealer).await?;
    let key_id = state.sts.rotate_token_key().await?;
    println!("session-token key {key_id} is now current");
    Ok(ExitCode::SUCCESS)
}

async fn admin_export(file: Option<PathBuf>, document: PathBuf) -> Result<ExitCode, String> {
    let config = load_config(file)?;
    let store = app::open_configured_store(&config).await?;
    let exported = rolegate::iam_document::export(&store)
        .await
        .map_err(|e| e.to_string())?;
    let text = rolegate::iam_document::render(&exported, &document)?;
    if document.as_os_str() == "-" {
        print!("{text}");
    } else {
        std::fs::write(&document, text)
            .map_err(|e| format!("cannot write {}: {e}", document.display()))?;
        eprintln!("{}", exported.summary(&document));
    }
    Ok(ExitCode::SUCCESS)
}

async fn admin_import(
    file: Option<PathBuf>,
    document: PathBuf,
    yes: bool,
) -> Result<ExitCode, String> {
    use std::io::{BufRead, IsTerminal, Write};
    let config = load_config(file)?;
    let wanted = rolegate::iam_document::read(&document)?;
    let store = app::open_configured_store(&config).await?;
    let plan = rolegate::iam_document::plan(&store, &wanted).await?;
    for line in plan.lines() {
        println!("{line}");
    }
    if !plan.has_changes() {
        println!("no changes");
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(
                "standard input is not a terminal: give --yes to apply without asking".into(),
            );
        }
        print!("Apply these changes? Type yes: ");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if answer.trim() != "yes" {
            println!("nothing changed");
            return Ok(ExitCode::FAILURE);
        }
    }
    let done = rolegate::iam_document::apply(&store, &plan).await?;
    println!("{done}");
    Ok(ExitCode::SUCCESS)
}
