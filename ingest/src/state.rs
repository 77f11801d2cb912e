//! What every handler shares: the pool and the checked configuration it needs.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use humbex_shared::config::{Config, IpPolicy, WebhookSecret};
use humbex_shared::crypto::Keyring;
use humbex_shared::domain::Symbol;

use crate::admin::key_check::KeyChecker;

pub struct AppState {
    pub pool: Pool,
    pub webhook_secret: WebhookSecret,
    pub keyring: Keyring,
    /// SHA-256 of ADMIN_TOKEN: compared by digest, so the comparison leaks nothing usable.
    pub admin_token_digest: [u8; 32],
    pub symbols: HashSet<Symbol>,
    pub dedupe_window: Duration,
    pub ip_policy: IpPolicy,
    /// Asks Bybit (or the paper exchange) about submitted API keys, over one shared client.
    pub key_checker: KeyChecker,
    /// Injected clock for the anti-replay windows (tests move it; production reads the system).
    pub clock: Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>,
}

impl AppState {
    pub fn new(config: Config, pool: Pool) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let key_checker = KeyChecker::new(&config)?;
        Ok(AppState {
            pool,
            admin_token_digest: humbex_shared::token::digest(config.admin_token.expose_secret()),
            webhook_secret: config.tradingview_secret,
            keyring: config.keyring,
            symbols: config.symbols.into_iter().collect(),
            dedupe_window: config.dedupe_window,
            ip_policy: config.ip_policy,
            key_checker,
            clock: Arc::new(chrono::Utc::now),
        })
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.clock)()
    }
}
