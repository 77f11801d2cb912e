//! Running one role from its configuration: `humbex ingest`, `humbex executor`, `humbex
//! paper-exchange`, and the executor `humbex up` builds.

use humbex_bybit::BybitRest;
use humbex_executor::{Executor, ExecutorSettings};
use humbex_shared::config::{Config, Lookup, POOL_SIZE};
use humbex_shared::shutdown;

/// An executor for this configuration: orders go to `config.bybit` (BYBIT_ENV's endpoints, the
/// local paper exchange in paper mode, or the BYBIT_REST_URL / BYBIT_WS_PRIVATE_URL overrides).
pub fn build_executor(config: &Config) -> anyhow::Result<Executor> {
    let pool = humbex_shared::db::pool(&config.database.url, POOL_SIZE)?;
    let bybit = &config.bybit;
    let rest = BybitRest::new(&bybit.rest_url)
        .map_err(|e| anyhow::anyhow!("Bybit client for {}: {e}", bybit.rest_url))?;
    tracing::info!(rest_url = %bybit.rest_url, ws_url = %bybit.ws_private_url, "executor places orders at");
    let mut settings = ExecutorSettings::new(
        config.executor.worker_poll_interval,
        config.symbols.iter().map(|s| s.as_str().to_owned()).collect(),
    );
    settings.key_recheck_interval = config.executor.key_recheck_interval;
    settings.key_policy = humbex_executor::key_recheck::KeyPolicy {
        egress_ips: bybit.egress_ips.clone(),
        require_ip_binding: bybit.requires_ip_binding(),
    };
    Ok(Executor::new(
        settings,
        pool,
        config.database.url.pg_config(),
        config.secrets.keyring.clone(),
        rest,
        &bybit.ws_private_url,
    ))
}

/// `humbex ingest`: serve until SIGINT or SIGTERM.
pub async fn run_ingest(lookup: Lookup) -> anyhow::Result<()> {
    let config = lookup.with_secrets_file()?.config()?;
    let app = humbex_ingest::Application::build(config).await?;
    app.run_until(shutdown::signal()).await?;
    Ok(())
}

/// `humbex executor`: place orders until SIGINT or SIGTERM.
pub async fn run_executor(lookup: Lookup) -> anyhow::Result<()> {
    let config = lookup.with_secrets_file()?.config()?;
    config.bybit.env.warn_if_mainnet();
    let executor = build_executor(&config)?;
    executor.run_until(shutdown::signal()).await
}

/// `humbex paper-exchange`: serve until SIGINT or SIGTERM.
pub async fn run_paper_exchange(args: humbex_paper_exchange::PaperExchangeArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let running = humbex_paper_exchange::spawn(config).await?;
    println!("paper exchange listening on {}", running.base_url());
    shutdown::signal().await;
    running.shutdown().await?;
    println!("paper exchange stopped");
    Ok(())
}
