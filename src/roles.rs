//! Building the executor role from the configuration, for `humbex executor` and `humbex up`.

use std::sync::Arc;

use humbex_bybit::{BybitEnvironment, BybitRest};
use humbex_executor::{Executor, ExecutorSettings};
use humbex_shared::config::{BybitEnv, Config};

/// Where orders go: BYBIT_ENV's endpoints (the local paper exchange in paper mode), with
/// BYBIT_REST_URL overriding either.
pub fn bybit_rest_url(config: &Config, paper_base_url: Option<&str>) -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("BYBIT_REST_URL")
        && !url.trim().is_empty()
    {
        return Ok(url.trim().trim_end_matches('/').to_owned());
    }
    Ok(match config.bybit_env {
        BybitEnv::Paper => paper_base_url.map(str::to_owned).unwrap_or_else(|| {
            let host = std::env::var("PAPER_HOST").unwrap_or_else(|_| "127.0.0.1".into());
            let port = std::env::var("PAPER_PORT").unwrap_or_else(|_| "8001".into());
            format!("http://{host}:{port}")
        }),
        BybitEnv::Testnet => BybitEnvironment::Testnet.rest_url().to_owned(),
        BybitEnv::Demo => BybitEnvironment::Demo.rest_url().to_owned(),
        BybitEnv::Mainnet => BybitEnvironment::Mainnet.rest_url().to_owned(),
    })
}

/// The private WebSocket that matches [`bybit_rest_url`], with BYBIT_WS_PRIVATE_URL overriding it.
pub fn bybit_ws_url(config: &Config, paper_ws_url: Option<&str>) -> String {
    if let Ok(url) = std::env::var("BYBIT_WS_PRIVATE_URL")
        && !url.trim().is_empty()
    {
        return url.trim().to_owned();
    }
    match config.bybit_env {
        BybitEnv::Paper => paper_ws_url.map(str::to_owned).unwrap_or_else(|| {
            let host = std::env::var("PAPER_HOST").unwrap_or_else(|_| "127.0.0.1".into());
            let port = std::env::var("PAPER_PORT").unwrap_or_else(|_| "8001".into());
            format!("ws://{host}:{port}/v5/private")
        }),
        BybitEnv::Testnet => BybitEnvironment::Testnet.private_ws_url().to_owned(),
        BybitEnv::Demo => BybitEnvironment::Demo.private_ws_url().to_owned(),
        BybitEnv::Mainnet => BybitEnvironment::Mainnet.private_ws_url().to_owned(),
    }
}

/// An executor for this configuration (its own pool; the keyring is the configuration's).
pub fn build_executor(config: Config, rest_url: &str, ws_url: &str) -> anyhow::Result<Executor> {
    let pool = humbex_shared::db::pool(&config.database_url, 16)?;
    let rest = BybitRest::new(rest_url).map_err(|e| anyhow::anyhow!("Bybit client for {rest_url}: {e}"))?;
    let settings = ExecutorSettings::new(
        config.worker_poll_interval,
        config.symbols.iter().map(|s| s.as_str().to_owned()).collect(),
    );
    let pg = config.database_url.pg_config();
    Ok(Executor::new(
        settings,
        pool,
        pg,
        Arc::new(config.keyring),
        rest,
        ws_url,
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
