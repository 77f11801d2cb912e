//! What every handler shares: the pool and the checked configuration it needs.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use humbex_shared::api_key_vault::Sealer;
use humbex_shared::config::{Config, IpPolicy, WebhookSecret};
use humbex_shared::domain::SymbolPolicy;

use crate::admin::key_check::KeyChecker;
use crate::rate_limit::RateLimiters;
use crate::webhook::group::{self, GroupCommitter};

pub struct AppState {
    pub pool: Pool,
    /// Stores new signals, several webhooks per commit when they arrive together.
    pub signals: GroupCommitter,
    pub webhook_secret: WebhookSecret,
    /// The previous secret during a rotation, and until when it is accepted.
    pub previous_webhook_secret: Option<(WebhookSecret, Option<chrono::DateTime<chrono::Utc>>)>,
    /// Seals the exchange keys the admin API stores; ingest never opens one.
    pub sealer: Sealer,
    /// ENCRYPTION_MAX_PER_KEY: encryptions allowed per encryption key id, counted in the database.
    pub encryption_max_per_key: u64,
    /// SHA-256 of ADMIN_TOKEN: compared by digest, so the comparison leaks nothing usable.
    pub admin_token_digest: [u8; 32],
    pub symbols: SymbolPolicy,
    pub dedupe_window: Duration,
    pub ip_policy: IpPolicy,
    /// Asks Bybit (or the paper exchange) about submitted API keys, over one shared client.
    pub key_checker: KeyChecker,
    /// Per-process 429 budgets (failed auth per address, requests per token, signals per owner).
    pub rate_limits: RateLimiters,
    /// Addresses never blocked for failed authentications: TradingView's published senders (and
    /// TRADINGVIEW_IP_ALLOWLIST), which carry every user's alerts, so one user's broken token must
    /// not stop everyone's. Their per-token and per-owner limits still apply.
    pub auth_limit_exempt: HashSet<IpAddr>,
    /// The Telegram bot (TELEGRAM_BOT_TOKEN), used only to check a user's chat when it is set.
    pub telegram: Option<humbex_shared::config::TelegramConfig>,
    /// The client of that check: no redirects, short deadline.
    pub notify_http: reqwest::Client,
    /// Injected clock for the anti-replay windows (tests move it; production reads the system).
    pub clock: Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>,
}

impl AppState {
    /// Must run inside a Tokio runtime: it starts the group committer's writer tasks.
    pub fn new(config: Config, pool: Pool) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let key_checker = KeyChecker::new(&config.bybit)?;
        let auth_limit_exempt = humbex_shared::config::TRADINGVIEW_IPS
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .chain(config.http.ip_policy.allowlist.iter().flatten().copied())
            .collect();
        let ingest = config.secrets.ingest()?.clone();
        let sealer = config.secrets.sealer()?.clone();
        if sealer.can_open() {
            tracing::warn!(
                "ingest seals API keys with ENCRYPTION_KEY_HEX / ENCRYPTION_KEYS, which also open every \
                 stored key: set ENCRYPTION_PUBLIC_KEY (`humbex keys generate`) so ingest holds only what seals"
            );
        }
        let signals = GroupCommitter::start(pool.clone(), group::WRITERS, group::MAX_BATCH);
        Ok(AppState {
            signals,
            pool,
            admin_token_digest: humbex_shared::token::digest(ingest.admin_token.expose_secret()),
            webhook_secret: ingest.tradingview_secret,
            previous_webhook_secret: ingest.previous_tradingview_secret,
            sealer,
            encryption_max_per_key: config.secrets.encryption_max_per_key,
            symbols: config.symbols,
            dedupe_window: config.http.dedupe_window,
            ip_policy: config.http.ip_policy,
            key_checker,
            rate_limits: RateLimiters::new(config.http.rate_limits),
            auth_limit_exempt,
            telegram: config.notify.telegram,
            notify_http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .tls_backend_preconfigured(humbex_bybit::tls::rest_config())
                .build()?,
            clock: Arc::new(chrono::Utc::now),
        })
    }

    /// The secrets a signature may be made with now: the current one, and the previous one while
    /// its overlap lasts.
    pub fn webhook_secrets(&self) -> impl Iterator<Item = &WebhookSecret> {
        let now = self.now();
        std::iter::once(&self.webhook_secret).chain(
            self.previous_webhook_secret
                .iter()
                .filter(move |(_, until)| until.is_none_or(|at| now < at))
                .map(|(secret, _)| secret),
        )
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.clock)()
    }
}
