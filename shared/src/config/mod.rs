//! Configuration: every variable HUMBEX reads (listed in [`vars::VARS`]), checked at start-up into a
//! nested [`Config`] whose sections each role takes what it needs from.
//!
//! A bad value stops the process with one line naming the variable and what is wrong. `Debug`
//! never prints a secret.

mod bybit;
mod database;
mod executor;
mod http;
pub mod libpq;
pub mod lookup;
mod metrics;
mod notify;
mod paper;
mod parse;
mod secrets;
pub mod secrets_file;
mod smtp;
#[cfg(test)]
mod tests;
pub mod vars;

use std::sync::Arc;

use crate::domain::{Symbol, SymbolPolicy};

pub use bybit::{BybitConfig, BybitEnv, bybit_env};
pub use database::{
    DEFAULT_DATABASE_URL, DatabaseConfig, DatabaseUrl, POOL_SIZE, database_config, database_url,
    migration_url,
};
pub use executor::ExecutorConfig;
pub use http::{HttpConfig, HttpLimits, IpPolicy, RateLimits, TRADINGVIEW_IPS};
pub use lookup::Lookup;
pub use metrics::{DEFAULT_METRICS_PORT, MetricsConfig};
pub use notify::{DEFAULT_TELEGRAM_API_URL, NotifyConfig, OpsDestinations, TelegramConfig};
pub use paper::{
    DEFAULT_PAPER_BALANCE_USDT, DEFAULT_PAPER_HOST, DEFAULT_PAPER_PORT, paper_balance_usdt, paper_listen,
    whole_number,
};
pub use parse::ConfigError;
pub use secrets::{GENERATED_SECRETS, IngestSecrets, PreviousSecret, SecretsConfig, WebhookSecret};
pub use smtp::{SmtpConfig, SmtpTls};
pub use vars::Role;

use parse::bad;

/// Everything a HUMBEX process needs to know, by part.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    /// The ingest service (listen address, webhook policy, rate limits).
    pub http: HttpConfig,
    pub secrets: SecretsConfig,
    pub bybit: BybitConfig,
    pub executor: ExecutorConfig,
    /// The metrics listener (METRICS_HOST, METRICS_PORT).
    pub metrics: MetricsConfig,
    /// Notification channels and the operator's destinations (executor; ingest reads only the
    /// Telegram bot, to check a user's chat when it is set).
    pub notify: NotifyConfig,
    /// Symbols signals may name (ingest) and orders may be placed in (executor): a list, or `*`.
    pub symbols: SymbolPolicy,
}

impl Config {
    /// Read and check every variable through `lookup` (usually a [`Lookup`]: flags, environment,
    /// secrets file), for every role at once (`humbex up`).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Config::for_role(Role::Up, lookup)
    }

    /// Read and check what `role` uses; the secrets of other roles are not read, so a process
    /// given only its own (the executor has no ADMIN_TOKEN, ingest no opening key) starts.
    pub fn for_role(role: Role, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let get: parse::Get = &get;
        let ingests = matches!(role, Role::Ingest | Role::Up);
        let seals = ingests || role == Role::KeysRewrap;
        let opens = matches!(role, Role::Executor | Role::Up | Role::KeysRewrap);
        // Checked in this order, so that with several bad values the first named stays the same.
        let env = bybit_env(lookup)?;
        let (host, port) = http::listen(get)?;
        let ingest_secrets = |_: ()| -> Result<_, ConfigError> {
            let previous_tradingview_secret = secrets::previous_tradingview_secret(get)?;
            let tradingview_secret =
                WebhookSecret::parse(&secrets::required(get, env, "TRADINGVIEW_SECRET")?)
                    .map_err(|p| bad("TRADINGVIEW_SECRET", p))?;
            Ok((tradingview_secret, previous_tradingview_secret))
        };
        let webhook = if ingests { Some(ingest_secrets(())?) } else { None };
        let keyring = std::cell::OnceCell::new();
        let keyring = || -> Result<Option<Arc<crate::crypto::Keyring>>, ConfigError> {
            if let Some(k) = keyring.get() {
                return Ok(Option::clone(k));
            }
            let k = secrets::optional_keyring(get, env)?;
            Ok(keyring.get_or_init(|| k).clone())
        };
        let sealer = if seals {
            Some(secrets::sealer(get, env, &keyring)?)
        } else {
            None
        };
        let opener = if opens {
            Some(secrets::opener(get, env, keyring()?)?)
        } else {
            None
        };
        if let (Some(sealer), Some(opener)) = (&sealer, &opener) {
            secrets::check_pair(sealer, opener)?;
        }
        let bybit = BybitConfig::from_lookup(env, get)?;
        let key_recheck_interval = executor::key_recheck_interval(get)?;
        let lease = executor::lease(get)?;
        let stream_connects_per_minute = executor::stream_connects_per_minute(get)?;
        let encryption_max_per_key = secrets::encryption_max_per_key(get)?;
        let ingest = match webhook {
            Some((tradingview_secret, previous_tradingview_secret)) => Some(IngestSecrets {
                tradingview_secret,
                previous_tradingview_secret,
                admin_token: secrets::admin_token(get, env)?,
            }),
            None => None,
        };
        let worker_poll_interval = executor::worker_poll_interval(get)?;
        let symbols = symbols(get)?;
        check_log_format(get)?;
        let dedupe_window = http::dedupe_window(get)?;
        let ip_policy = http::ip_policy(get)?;
        let cors_origins = http::cors_origins(get);
        let rate_limits = http::rate_limits(get)?;
        let limits = http::limits(get)?;
        let docs_enabled = http::docs_enabled(get, env == BybitEnv::Paper)?;
        let metrics = metrics::metrics(get)?;
        let notify = match role {
            Role::Executor | Role::Up => notify::notify(get)?,
            Role::Ingest => NotifyConfig {
                telegram: notify::telegram(get)?,
                ..NotifyConfig::default()
            },
            _ => NotifyConfig::default(),
        };
        Ok(Config {
            database: database_config(lookup)?,
            http: HttpConfig {
                host,
                port,
                dedupe_window,
                ip_policy,
                cors_origins,
                rate_limits,
                limits,
                docs_enabled,
            },
            secrets: SecretsConfig {
                ingest,
                sealer,
                opener,
                encryption_max_per_key,
            },
            bybit,
            executor: ExecutorConfig {
                worker_poll_interval,
                key_recheck_interval,
                lease,
                stream_connects_per_minute,
            },
            metrics,
            notify,
            symbols,
        })
    }
}

fn symbols(get: parse::Get) -> Result<SymbolPolicy, ConfigError> {
    let Some(list) = get("SYMBOLS") else {
        return Ok(SymbolPolicy::Listed(vec![
            Symbol::parse("AVAXUSDT").expect("valid"),
        ]));
    };
    if list.trim() == "*" {
        return Ok(SymbolPolicy::AnyUsdt);
    }
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            return Err(bad(
                "SYMBOLS",
                "`*` stands alone (any linear USDT perpetual), not in a list",
            ));
        }
        let symbol = Symbol::parse(item).map_err(|e| bad("SYMBOLS", format!("{item:?}: {e}")))?;
        if !out.contains(&symbol) {
            out.push(symbol);
        }
    }
    if out.is_empty() {
        return Err(bad("SYMBOLS", "lists no symbol"));
    }
    Ok(SymbolPolicy::Listed(out))
}

/// LOG_FORMAT is applied by the logging set-up before the configuration is read; it is checked here
/// too so that a bad value is reported like every other.
fn check_log_format(get: parse::Get) -> Result<(), ConfigError> {
    match get("LOG_FORMAT").as_deref().map(str::trim) {
        None | Some("pretty") | Some("json") => Ok(()),
        Some(other) => Err(bad("LOG_FORMAT", format!("{other:?} is not pretty or json"))),
    }
}
