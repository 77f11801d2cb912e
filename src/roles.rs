//! Building the executor role from the configuration, for `humbex executor` and `humbex up`.

use std::sync::Arc;

use humbex_bybit::BybitRest;
use humbex_executor::{Executor, ExecutorSettings};
use humbex_shared::api_key_vault::Opener;
use humbex_shared::config::Config;

/// An executor for this configuration: orders go to `config.bybit` (BYBIT_ENV's endpoints, the
/// local paper exchange in paper mode, or the BYBIT_REST_URL / BYBIT_WS_PRIVATE_URL overrides).
pub fn build_executor(config: Config) -> anyhow::Result<Executor> {
    let pool = humbex_shared::db::pool(&config.database_url, 16)?;
    let rest_url = config.bybit.rest_url.clone();
    let rest = BybitRest::new(&rest_url).map_err(|e| anyhow::anyhow!("Bybit client for {rest_url}: {e}"))?;
    tracing::info!(rest_url = %rest_url, ws_url = %config.bybit.ws_private_url, "executor places orders at");
    let mut settings = ExecutorSettings::new(
        config.worker_poll_interval,
        config.symbols.iter().map(|s| s.as_str().to_owned()).collect(),
    );
    settings.key_recheck_interval = config.key_recheck_interval;
    settings.key_policy = humbex_bybit::KeyPolicy::new(
        config.bybit_egress_ips.clone(),
        config.bybit_env == humbex_shared::config::BybitEnv::Mainnet,
        config.allow_unbound_keys,
    );
    let pg = config.database_url.pg_config();
    let ws_url = config.bybit.ws_private_url.clone();
    Ok(Executor::new(
        settings,
        pool,
        pg,
        Opener::new(Arc::new(config.keyring)),
        rest,
        &ws_url,
    ))
}

/// A shutdown that many roles can wait on: resolves for all once SIGINT or SIGTERM arrives.
#[derive(Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    pub fn on_signal() -> Shutdown {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            crate::cli::shutdown_signal().await;
            let _ = tx.send(true);
        });
        Shutdown(rx)
    }

    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}
