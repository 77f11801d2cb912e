//! `humbex <command>`: up (the default), migrate, ingest, executor, keys rewrap, openapi,
//! config-vars, paper-exchange. Parsing and dispatch only; every option also reads its environment
//! variable, and a bad value stops start-up with one line naming the variable.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use humbex_shared::config::{ConfigError, Lookup};

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
    /// Encryption-key maintenance (runbook: docs/security.md#rotating-the-encryption-key).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document (openapi.json is exactly this output).
    Openapi,
    /// Print the table of configuration variables (docs/configuration.md holds exactly this output).
    ConfigVars,
    /// Run the local paper exchange (Bybit V5 REST and private WebSocket, in memory).
    PaperExchange(humbex_paper_exchange::PaperExchangeArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-encrypt every stored API key and webhook secret not on the sealing key:
    /// ENCRYPTION_PUBLIC_KEY when set (needs ENCRYPTION_PRIVATE_KEY and the old keyring to open),
    /// else the keyring's primary
    /// (ENCRYPTION_PRIMARY_KEY_ID, else the highest id in ENCRYPTION_KEYS); idempotent and safe to
    /// run while the services run.
    Rewrap(RewrapArgs),
    /// Print a new encryption key pair: ENCRYPTION_PUBLIC_KEY for ingest (seals only) and
    /// ENCRYPTION_PRIVATE_KEY for the executor (opens). Then run `keys rewrap` with both set.
    Generate,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RewrapArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Rows re-encrypted per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub batch_size: i64,
}

impl ServiceArgs {
    /// Where this command's values come from: these flags, then the environment, then the secrets file.
    pub fn lookup(&self) -> Lookup {
        Lookup::default()
            .with_flag("DATABASE_URL", self.database_url.as_deref())
            .with_flag("BACKEND_HOST", self.host.as_deref())
            .with_flag("BACKEND_PORT", self.port.as_deref())
    }
}

impl DatabaseArgs {
    pub fn lookup(&self) -> Lookup {
        Lookup::default().with_flag("DATABASE_URL", self.database_url.as_deref())
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => {
            println!("{}", humbex_ingest::api::spec_json());
            return ExitCode::SUCCESS;
        }
        Some(Command::ConfigVars) => {
            print!("{}", humbex_shared::config::vars::markdown_table());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    if let Err(e) = crate::telemetry::init() {
        eprintln!("humbex: configuration error: {e}");
        return ExitCode::from(2);
    }
    crate::telemetry::harden();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("humbex: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => crate::up::run(ServiceArgs::default().lookup()).await,
            Some(Command::Up(args)) => crate::up::run(args.lookup()).await,
            Some(Command::Migrate(args)) => crate::maintenance::migrate(args.lookup()).await,
            Some(Command::Ingest(args)) => {
                crate::roles::run_ingest(args.lookup(), args.allow_run_as_root).await
            }
            Some(Command::Executor(args)) => {
                crate::roles::run_executor(args.lookup(), args.allow_run_as_root).await
            }
            Some(Command::Keys(KeysCommand::Rewrap(args))) => {
                crate::maintenance::rewrap(args.database.lookup(), args.batch_size).await
            }
            Some(Command::Keys(KeysCommand::Generate)) => {
                crate::maintenance::generate_keys();
                Ok(())
            }
            Some(Command::PaperExchange(args)) => crate::roles::run_paper_exchange(args).await,
            Some(Command::Openapi | Command::ConfigVars) => unreachable!("handled above"),
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

#[cfg(test)]
mod tests {
    /// docs/configuration.md carries exactly the generated table between its markers.
    #[test]
    fn the_documented_variable_table_is_the_generated_one() {
        let doc = include_str!("../docs/configuration.md");
        let begin = "<!-- BEGIN GENERATED: config-vars -->\n";
        let start = doc.find(begin).expect("begin marker") + begin.len();
        let end = doc
            .find("<!-- END GENERATED: config-vars -->")
            .expect("end marker");
        assert_eq!(
            &doc[start..end],
            humbex_shared::config::vars::markdown_table(),
            "docs/configuration.md is stale: put the output of `cargo run -- config-vars` between its markers"
        );
    }
}
