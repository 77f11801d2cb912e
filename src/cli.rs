//! `humbex <command>`: up (the default), migrate, ingest, executor, keys rewrap, openapi. Every option also reads its
//! environment variable; a bad value stops start-up with one line naming the variable.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use humbex_shared::config::{self, Config, ConfigError};

#[derive(Debug, Parser)]
#[command(
    name = "humbex",
    version,
    about = "TradingView alerts to Bybit USDT perpetual orders"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags of the services; each also reads its environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceArgs {
    /// PostgreSQL URL [default: postgres://postgres@127.0.0.1:5432/humbex]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Address the HTTP service listens on [default: 127.0.0.1]
    #[arg(long, env = "BACKEND_HOST")]
    pub host: Option<String>,
    /// Port the HTTP service listens on [default: 8000]
    #[arg(long, env = "BACKEND_PORT")]
    pub port: Option<String>,
    /// Let `ingest` and `executor` run as root (refused otherwise; `up` drops root by itself)
    #[arg(long, env = "ALLOW_RUN_AS_ROOT", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub allow_run_as_root: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL [default: postgres://postgres@127.0.0.1:5432/humbex]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate, then run every role in one process (what `cargo run --release` does).
    Up(ServiceArgs),
    /// Apply the sql/ migrations under an advisory lock, then exit.
    Migrate(DatabaseArgs),
    /// Run the HTTP service: webhooks, admin API, docs.
    Ingest(ServiceArgs),
    /// Run the executor: LISTEN, claim signals, place orders on Bybit (or the paper exchange).
    Executor(ServiceArgs),
    /// Encryption-key maintenance (see the README's key rotation runbook).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document (openapi.json is exactly this output).
    Openapi,
    /// Run the local paper exchange (Bybit V5 REST and private WebSocket, in memory).
    PaperExchange(humbex_paper_exchange::PaperExchangeArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-encrypt every stored API key not on the primary key (ENCRYPTION_PRIMARY_KEY_ID, else the
    /// highest id in ENCRYPTION_KEYS); idempotent and safe to run while the services run.
    Rewrap(RewrapArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RewrapArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Rows re-encrypted per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub batch_size: i64,
}

/// Names the secrets file may supply (paper mode only).
pub const FILE_SUPPLIED: [&str; 4] = [
    "TRADINGVIEW_SECRET",
    "ENCRYPTION_KEY_HEX",
    "ADMIN_TOKEN",
    "DEMO_WEBHOOK_TOKEN",
];

impl ServiceArgs {
    /// A variable's value: the command-line flag, else the environment, else (for secrets in
    /// paper mode) ./.humbex/secrets.env.
    pub fn lookup(&self, name: &str, file: &BTreeMap<String, String>) -> Option<String> {
        let direct = match name {
            "DATABASE_URL" => self.database_url.clone(),
            "BACKEND_HOST" => self.host.clone(),
            "BACKEND_PORT" => self.port.clone(),
            _ => None,
        }
        .or_else(|| std::env::var(name).ok())
        .filter(|v| !v.trim().is_empty());
        direct.or_else(|| {
            FILE_SUPPLIED
                .contains(&name)
                .then(|| file.get(name).cloned())
                .flatten()
        })
    }

    /// The full configuration, with paper mode's secrets file as a fallback when it exists.
    pub fn config(&self) -> Result<(Config, BTreeMap<String, String>), ConfigError> {
        let none = BTreeMap::new();
        let file = if config::bybit_env(&|n| self.lookup(n, &none))? == config::BybitEnv::Paper {
            crate::paper_secrets::read(&crate::paper_secrets::default_path()).unwrap_or_default()
        } else {
            BTreeMap::new()
        };
        let config = Config::from_lookup(&|n| self.lookup(n, &file))?;
        Ok((config, file))
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", humbex_ingest::api::spec_json());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = crate::telemetry::init() {
        eprintln!("humbex: configuration error: {e}");
        return ExitCode::from(2);
    }
    humbex_shared::hardening::install_panic_hook();
    // A core dump would hold decrypted exchange keys (security.md §2.5).
    if let Err(e) = humbex_shared::hardening::disable_core_dumps() {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    // Pin rustls to ring before any TLS client exists (see stack.md, gotcha 1).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("humbex: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => crate::up::run(&ServiceArgs::default()).await,
            Some(Command::Up(args)) => crate::up::run(&args).await,
            Some(Command::Migrate(args)) => migrate(&args).await,
            Some(Command::Ingest(args)) => ingest(&args).await,
            Some(Command::Executor(args)) => executor(&args).await,
            Some(Command::Keys(KeysCommand::Rewrap(args))) => rewrap(&args).await,
            Some(Command::PaperExchange(args)) => humbex_paper_exchange::run_cli(args).await,
            Some(Command::Openapi) => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(config_error) = e.downcast_ref::<ConfigError>() {
                eprintln!("humbex: configuration error: {config_error}");
                return ExitCode::from(2);
            }
            eprintln!("humbex: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(args: &DatabaseArgs) -> anyhow::Result<()> {
    let service = ServiceArgs {
        database_url: args.database_url.clone(),
        ..ServiceArgs::default()
    };
    let none = BTreeMap::new();
    let url = config::database_url(&|n| service.lookup(n, &none))?;
    humbex_shared::db::ensure_database(&url).await?;
    let applied = humbex_shared::db::migrate(&url).await?;
    tracing::info!(applied, database = %url.redacted(), "migrations applied");
    Ok(())
}

/// `humbex keys rewrap`: move every api_keys row onto the primary key and print what moved. Exits
/// non-zero while any row is left on another key, so a script never removes a key still in use.
async fn rewrap(args: &RewrapArgs) -> anyhow::Result<()> {
    let service = ServiceArgs {
        database_url: args.database.database_url.clone(),
        ..ServiceArgs::default()
    };
    let (config, _) = service.config()?;
    let mut client = humbex_shared::db::connect(&config.database_url.pg_config()).await?;
    let report = humbex_shared::rewrap::rewrap_api_keys(
        &mut client,
        &config.keyring,
        args.batch_size,
        config.encryption_max_per_key,
    )
    .await?;
    let primary = config.keyring.primary_key_id();
    println!(
        "rewrap: {} row(s) moved to key {primary}; {} already on it; {} failed",
        report.moved,
        report.already_primary,
        report.failed.len()
    );
    for failure in &report.failed {
        println!(
            "rewrap: api key {} (enc_key_id {}): {}",
            failure.api_key_id, failure.enc_key_id, failure.error
        );
    }
    for (key_id, rows) in humbex_shared::rewrap::rows_per_key(&client).await? {
        println!("rows under key {key_id}: {rows}");
    }
    if !report.failed.is_empty() {
        anyhow::bail!(
            "{} row(s) could not be re-encrypted; keep their keys",
            report.failed.len()
        );
    }
    Ok(())
}

async fn ingest(args: &ServiceArgs) -> anyhow::Result<()> {
    let (config, _) = args.config()?;
    crate::privileges::refuse_root("ingest", args.allow_run_as_root)?;
    let app = humbex_ingest::Application::build(config).await?;
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

async fn executor(args: &ServiceArgs) -> anyhow::Result<()> {
    let (config, _) = args.config()?;
    crate::privileges::refuse_root("executor", args.allow_run_as_root)?;
    if config.bybit_env == config::BybitEnv::Mainnet {
        tracing::warn!("BYBIT_ENV=mainnet: signals will trade REAL MONEY on Bybit");
    }
    let executor = crate::roles::build_executor(config)?;
    executor.run_until(shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
