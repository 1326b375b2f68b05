//! `aranea hotline`, `aranea user`, `aranea audit` and `aranea vault`: the review room's
//! administration from the command line. Every change is audited as actor `cli`.
//! Passwords are read from standard input (`--password-stdin`), never from arguments.

use std::io::Read;

use anyhow::{Context, bail};
use aranea_review::{AuditActor, NewUserRequest, Review, ReviewConfig, Schemes, VaultSecretKey};
use aranea_store::{NewHotline, Store, UserRole};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::{GlobalOptions, OutputFormat};

#[derive(Debug, Args)]
pub struct HotlineArgs {
    #[command(subcommand)]
    command: HotlineCommand,
}

#[derive(Debug, Subcommand)]
enum HotlineCommand {
    /// Adds a hotline (tenant).
    Add {
        /// Short unique code, e.g. `gb-iwf` (1-32 ASCII letters, digits, `-`, `_`, `.`);
        /// reports name their hotline by it.
        code: String,
        /// Full name, e.g. "Internet Watch Foundation".
        #[arg(long)]
        name: String,
        /// ISO 3166-1 alpha-2 country code.
        #[arg(long)]
        country: String,
        /// Comma-separated BCP 47 language tags.
        #[arg(long, default_value = "en")]
        languages: String,
        /// Which national verdict scheme applies (default: the country).
        #[arg(long)]
        jurisdiction: Option<String>,
        /// Keep this hotline's items out of the shared review pool (and its analysts out of it).
        #[arg(long)]
        private_pool: bool,
        /// Decisions on this hotline's items go to a hotline bank, not the platform bank.
        #[arg(long)]
        private_banks: bool,
        /// Items an analyst may be served per UTC day.
        #[arg(long, default_value_t = 200)]
        daily_cap: u32,
    },
    /// Lists hotlines.
    List {
        /// text: a header and one tab-separated line per hotline; json: one array; jsonl:
        /// one object per line.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Adds a user; the password is read from standard input.
    Add {
        username: String,
        /// Code of the user's hotline.
        #[arg(long)]
        hotline: String,
        /// analyst, senior_analyst, hotline_operator, auditor or platform_admin.
        #[arg(long)]
        role: String,
        /// Name shown in the review UI (default: the username).
        #[arg(long, default_value = "")]
        display_name: String,
        /// Read the password from standard input (required: passwords never go in arguments).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists users (of one hotline with --hotline).
    List {
        /// Only users of the hotline with this code.
        #[arg(long)]
        hotline: Option<String>,
        /// text: a header and one tab-separated line per user; json: one array; jsonl: one
        /// object per line. Password hashes and second-factor secrets are never printed.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Disables a user and ends their sessions.
    Disable { username: String },
    /// Re-enables a disabled user.
    Enable { username: String },
    /// Resets a user's lost second factor (TOTP) and ends their sessions; they must enrol
    /// a new one at their next sign-in.
    #[command(name = "reset-2fa")]
    ResetTwoFactor { username: String },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verifies the hash chain; exit status 1 and one line per problem when it is broken.
    Verify {
        /// text: lines as above; json and jsonl: one object on one line, `{"intact", "rows",
        /// "problems"}` (exit status 1 all the same when it is broken).
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

#[derive(Debug, Args)]
pub struct VaultArgs {
    #[command(subcommand)]
    command: VaultCommand,
}

#[derive(Debug, Subcommand)]
enum VaultCommand {
    /// Prints a new key pair: the public key for `vault_public_key` (crawlers), the secret
    /// for the review service only (`ARANEA_VAULT_SECRET_KEY` or `vault_secret_key_file`).
    Keygen,
    /// Purges media whose retention has ended.
    Purge {
        /// text: a summary line; json and jsonl: one object on one line, `{"purged": N}`.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

async fn open(global: &GlobalOptions) -> anyhow::Result<Review> {
    let config: ReviewConfig = global.config_file()?.section("review")?;
    let schemes = match &config.schemes_file {
        Some(path) => Schemes::from_file(path)?,
        None => Schemes::builtin(),
    };
    let store = Store::open(&global.database_url()).await?;
    Ok(Review::new(store, config, schemes))
}

pub fn run_hotline(
    global: &GlobalOptions,
    args: HotlineArgs,
) -> anyhow::Result<std::process::ExitCode> {
    runtime()?.block_on(async {
        let review = open(global).await?;
        let now = aranea_review::now_millis();
        match args.command {
            HotlineCommand::Add { code, name, country, languages, jurisdiction, private_pool, private_banks, daily_cap } => {
                let hotline = NewHotline {
                    jurisdiction: jurisdiction.unwrap_or_else(|| country.to_uppercase()),
                    code,
                    name,
                    country: country.to_uppercase(),
                    languages: languages.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(),
                    shares_review_pool: !private_pool,
                    shares_banks: !private_banks,
                    daily_cap,
                };
                let id = review.add_hotline(AuditActor::Cli, &hotline, now).await?;
                println!("hotline {} added (id {id})", hotline.code);
            }
            HotlineCommand::List { format } if format != OutputFormat::Text => {
                let hotlines: Vec<_> = review.all_hotlines().await?.iter().map(hotline_json).collect();
                format.print_records(&hotlines)?;
            }
            HotlineCommand::List { .. } => {
                println!("code\tname\tcountry\tjurisdiction\tlanguages\tshares_review_pool\tshares_banks\tdaily_cap");
                for h in review.all_hotlines().await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        h.code, h.name, h.country, h.jurisdiction, h.languages.join(","),
                        h.shares_review_pool, h.shares_banks, h.daily_cap
                    );
                }
            }
        }
        review.store().close().await;
        Ok(std::process::ExitCode::SUCCESS)
    })
}

pub fn run_user(global: &GlobalOptions, args: UserArgs) -> anyhow::Result<std::process::ExitCode> {
    runtime()?.block_on(async {
        let review = open(global).await?;
        let desk = review.store().review_desk();
        let now = aranea_review::now_millis();
        match args.command {
            UserCommand::Add {
                username,
                hotline,
                role,
                display_name,
                password_stdin,
            } => {
                if !password_stdin {
                    bail!("pass the password on standard input with --password-stdin");
                }
                let mut password = String::new();
                std::io::stdin()
                    .read_to_string(&mut password)
                    .context("reading the password")?;
                let password = password.trim_end_matches(['\r', '\n']).to_string();
                let role =
                    UserRole::from_name(&role).with_context(|| format!("unknown role {role:?}"))?;
                let hotline = desk
                    .hotline_by_code(&hotline)
                    .await?
                    .with_context(|| format!("no hotline {hotline:?}"))?;
                let request = NewUserRequest {
                    hotline: hotline.id,
                    username: username.clone(),
                    display_name,
                    role,
                    password,
                };
                review.add_user(AuditActor::Cli, request, now).await?;
                println!(
                    "user {username} added to {} as {}",
                    hotline.code,
                    role.as_str()
                );
            }
            UserCommand::List { hotline, format } => {
                let scope = match hotline {
                    Some(code) => Some(
                        desk.hotline_by_code(&code)
                            .await?
                            .with_context(|| format!("no hotline {code:?}"))?
                            .id,
                    ),
                    None => None,
                };
                let hotlines = review.all_hotlines().await?;
                let code_of = |id| {
                    hotlines
                        .iter()
                        .find(|h| h.id == id)
                        .map_or("?", |h| h.code.as_str())
                };
                let users = review.all_users(scope).await?;
                if format != OutputFormat::Text {
                    let users: Vec<_> = users.iter().map(|u| user_json(u, code_of(u.hotline))).collect();
                    format.print_records(&users)?;
                    review.store().close().await;
                    return Ok(std::process::ExitCode::SUCCESS);
                }
                println!("username\thotline\trole\tdisabled\ttotp\tmust_enrol\tdisplay_name");
                for u in &users {
                    let code = code_of(u.hotline);
                    println!(
                        "{}\t{code}\t{}\t{}\t{}\t{}\t{}",
                        u.username,
                        u.role.as_str(),
                        u.disabled,
                        u.totp_secret.is_some(),
                        u.totp_enrol_required,
                        u.display_name
                    );
                }
            }
            UserCommand::Disable { username } => {
                let user = desk
                    .user_by_name(&username)
                    .await?
                    .with_context(|| format!("no user {username:?}"))?;
                review
                    .set_user_disabled(AuditActor::Cli, user.id, true, now)
                    .await?;
                println!("user {username} disabled");
            }
            UserCommand::Enable { username } => {
                let user = desk
                    .user_by_name(&username)
                    .await?
                    .with_context(|| format!("no user {username:?}"))?;
                review
                    .set_user_disabled(AuditActor::Cli, user.id, false, now)
                    .await?;
                println!("user {username} enabled");
            }
            UserCommand::ResetTwoFactor { username } => {
                let user = desk
                    .user_by_name(&username)
                    .await?
                    .with_context(|| format!("no user {username:?}"))?;
                review.reset_totp(AuditActor::Cli, user.id, now).await?;
                println!("user {username}: second factor reset; they enrol a new one at their next sign-in");
            }
        }
        review.store().close().await;
        Ok(std::process::ExitCode::SUCCESS)
    })
}

pub fn run_audit(
    global: &GlobalOptions,
    args: AuditArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let AuditCommand::Verify { format } = args.command;
    runtime()?.block_on(async {
        let review = open(global).await?;
        let report = aranea_review::audit::verify(review.store()).await?;
        review.store().close().await;
        let status = if report.is_intact() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::from(1)
        };
        if format != OutputFormat::Text {
            let summary = json!({
                "intact": report.is_intact(),
                "rows": report.rows,
                "problems": report.problems,
            });
            println!("{summary}");
            return Ok(status);
        }
        if report.is_intact() {
            println!("audit trail intact: {} rows", report.rows);
            Ok(std::process::ExitCode::SUCCESS)
        } else {
            for problem in &report.problems {
                println!("{problem}");
            }
            println!(
                "audit trail BROKEN: {} problem(s) in {} rows",
                report.problems.len(),
                report.rows
            );
            Ok(std::process::ExitCode::from(1))
        }
    })
}

pub fn run_vault(
    global: &GlobalOptions,
    args: VaultArgs,
) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        VaultCommand::Keygen => {
            let key = VaultSecretKey::generate()?;
            println!("public {}", key.public_key().to_hex());
            println!("secret {}", key.to_hex().as_str());
            Ok(std::process::ExitCode::SUCCESS)
        }
        VaultCommand::Purge { format } => runtime()?.block_on(async {
            let review = open(global).await?;
            let purged =
                aranea_review::vault::purge_expired(review.store(), aranea_review::now_millis())
                    .await?;
            review.store().close().await;
            match format {
                OutputFormat::Text => println!("purged {purged} media past retention"),
                OutputFormat::Json | OutputFormat::Jsonl => {
                    println!("{}", json!({ "purged": purged }));
                }
            }
            Ok(std::process::ExitCode::SUCCESS)
        }),
    }
}

fn hotline_json(h: &aranea_store::Hotline) -> serde_json::Value {
    json!({
        "id": h.id.0,
        "code": h.code,
        "name": h.name,
        "country": h.country,
        "jurisdiction": h.jurisdiction,
        "languages": h.languages,
        "shares_review_pool": h.shares_review_pool,
        "shares_banks": h.shares_banks,
        "daily_cap": h.daily_cap,
        "created_at": h.created_at,
    })
}

/// A user as listed: whether a second factor is on, never its secret nor the password hash.
fn user_json(u: &aranea_store::User, hotline_code: &str) -> serde_json::Value {
    json!({
        "id": u.id.0,
        "username": u.username,
        "hotline": hotline_code,
        "role": u.role.as_str(),
        "disabled": u.disabled,
        "totp_enrolled": u.totp_secret.is_some(),
        "totp_enrol_required": u.totp_enrol_required,
        "display_name": u.display_name,
        "created_at": u.created_at,
    })
}
