//! Configuration from the environment (the Python original's names keep their meaning).
//!
//! Every value is checked at start-up; a bad one stops the process with one line naming the
//! variable and what is wrong. `Debug` never prints a secret.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::crypto::Keyring;
use crate::domain::Symbol;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/humbex";

/// TradingView's published webhook source addresses.
pub const TRADINGVIEW_IPS: [&str; 4] = ["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"];

/// One configuration problem: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// Where orders go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BybitEnv {
    Paper,
    Testnet,
    Demo,
    Mainnet,
}

impl BybitEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            BybitEnv::Paper => "paper",
            BybitEnv::Testnet => "testnet",
            BybitEnv::Demo => "demo",
            BybitEnv::Mainnet => "mainnet",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The shared secret behind X-Signature and the Standard Webhooks signature.
pub struct WebhookSecret {
    raw: SecretString,
    standard_webhooks_key: SecretBox<Vec<u8>>,
}

impl WebhookSecret {
    /// Per contract.md: X-Signature keys with the secret's bytes as given; Standard Webhooks uses
    /// the base64-decoded remainder of a `whsec_` secret, or else the bytes as given.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("is empty".into());
        }
        if text.len() < 16 {
            return Err(format!(
                "is {} characters; use at least 16 (openssl rand -hex 32)",
                text.len()
            ));
        }
        let sw_key = match text.strip_prefix("whsec_") {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| "starts with whsec_ but the rest is not base64".to_string())?,
            None => text.as_bytes().to_vec(),
        };
        if sw_key.is_empty() {
            return Err("whsec_ secret decodes to nothing".into());
        }
        Ok(WebhookSecret {
            raw: SecretString::from(text.to_owned()),
            standard_webhooks_key: SecretBox::new(Box::new(sw_key)),
        })
    }

    /// Key bytes for X-Signature.
    pub fn x_signature_key(&self) -> &[u8] {
        self.raw.expose_secret().as_bytes()
    }

    /// Key bytes for `webhook-signature`.
    pub fn standard_webhooks_key(&self) -> &[u8] {
        self.standard_webhooks_key.expose_secret()
    }

    pub fn expose_secret(&self) -> &str {
        self.raw.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// A database URL whose password never reaches a log.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        text.parse::<tokio_postgres::Config>()
            .map_err(|e| bad("DATABASE_URL", format!("is not a PostgreSQL URL ({e})")))?;
        Ok(DatabaseUrl(SecretString::from(text.to_owned())))
    }
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn pg_config(&self) -> tokio_postgres::Config {
        self.0.expose_secret().parse().expect("checked in parse")
    }
    /// The URL with any password replaced, for messages.
    pub fn redacted(&self) -> String {
        let url = self.0.expose_secret();
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &url[scheme + 3..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => format!("{}{user}:[REDACTED]{}", &url[..scheme + 3], &url[at..]),
                    None => url.to_owned(),
                }
            }
            _ => url.to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// Source-address allowlist for the TradingView route, and the proxies trusted to report it.
#[derive(Debug, Clone, Default)]
pub struct IpPolicy {
    /// None: every address may post.
    pub allowlist: Option<Vec<IpAddr>>,
    /// X-Forwarded-For is read only when the peer is one of these.
    pub trusted_proxies: Vec<IpAddr>,
}

/// Everything a HUMBEX process needs to know.
pub struct Config {
    pub database_url: DatabaseUrl,
    pub host: IpAddr,
    pub port: u16,
    pub tradingview_secret: WebhookSecret,
    pub keyring: Keyring,
    pub admin_token: SecretString,
    pub bybit_env: BybitEnv,
    pub worker_poll_interval: Duration,
    pub symbols: Vec<Symbol>,
    pub log_format: LogFormat,
    pub dedupe_window: Duration,
    pub ip_policy: IpPolicy,
    /// Origins allowed by CORS; empty means no CORS headers at all.
    pub cors_origins: Vec<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tradingview_secret", &self.tradingview_secret)
            .field("keyring", &self.keyring)
            .field("admin_token", &"[REDACTED]")
            .field("bybit_env", &self.bybit_env)
            .field("worker_poll_interval", &self.worker_poll_interval)
            .field("symbols", &self.symbols)
            .field("log_format", &self.log_format)
            .field("dedupe_window", &self.dedupe_window)
            .field("ip_policy", &self.ip_policy)
            .field("cors_origins", &self.cors_origins)
            .finish()
    }
}

/// The secrets that paper mode may generate when they are missing.
pub const GENERATED_SECRETS: [&str; 3] = ["TRADINGVIEW_SECRET", "ENCRYPTION_KEY_HEX", "ADMIN_TOKEN"];

/// The database URL alone (for `migrate`, which needs no secrets).
pub fn database_url(lookup: &dyn Fn(&str) -> Option<String>) -> Result<DatabaseUrl, ConfigError> {
    DatabaseUrl::parse(&lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()))
}

/// BYBIT_ENV alone (to decide whether secrets may be generated).
pub fn bybit_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<BybitEnv, ConfigError> {
    match lookup("BYBIT_ENV").as_deref().map(str::trim) {
        None | Some("") | Some("paper") => Ok(BybitEnv::Paper),
        Some("testnet") => Ok(BybitEnv::Testnet),
        Some("demo") => Ok(BybitEnv::Demo),
        Some("mainnet") => Ok(BybitEnv::Mainnet),
        Some(other) => Err(bad(
            "BYBIT_ENV",
            format!("{other:?} is not one of paper, testnet, demo, mainnet"),
        )),
    }
}

impl Config {
    /// Read and check every variable through `lookup` (the process environment, possibly overlaid
    /// with command-line flags and ./.humbex/secrets.env).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let bybit_env = bybit_env(lookup)?;
        let required = |name: &'static str| {
            get(name).ok_or_else(|| {
                let hint = if bybit_env == BybitEnv::Paper {
                    "is not set (`humbex up` generates one in paper mode; other commands read it from the \
                     environment or ./.humbex/secrets.env)"
                        .to_owned()
                } else {
                    format!("is not set; it is required when BYBIT_ENV={}", bybit_env.as_str())
                };
                bad(name, hint)
            })
        };

        let host_text = get("BACKEND_HOST").unwrap_or_else(|| "127.0.0.1".into());
        let host: IpAddr = host_text
            .trim()
            .parse()
            .map_err(|_| bad("BACKEND_HOST", format!("{host_text:?} is not an IP address")))?;
        let port = parse_port("BACKEND_PORT", get("BACKEND_PORT"), 8000)?;

        let tradingview_secret = WebhookSecret::parse(&required("TRADINGVIEW_SECRET")?)
            .map_err(|p| bad("TRADINGVIEW_SECRET", p))?;

        let single = get("ENCRYPTION_KEY_HEX");
        let list = get("ENCRYPTION_KEYS");
        if single.is_none() && list.is_none() {
            return Err(required("ENCRYPTION_KEY_HEX").unwrap_err());
        }
        let primary = match get("ENCRYPTION_PRIMARY_KEY_ID") {
            Some(p) => Some(p.trim().parse::<u32>().map_err(|_| {
                bad(
                    "ENCRYPTION_PRIMARY_KEY_ID",
                    format!("{p:?} is not a positive integer"),
                )
            })?),
            None => None,
        };
        // The single key is checked on its own first, so its errors name its own variable.
        if let Some(single) = &single {
            crate::crypto::parse_key_hex(single.trim())
                .map_err(|e| bad("ENCRYPTION_KEY_HEX", e.to_string()))?;
        }
        let keyring = Keyring::from_config(single.as_deref().map(str::trim), list.as_deref(), primary)
            .map_err(|e| match e {
                crate::crypto::KeyringError::MissingPrimary(_) => {
                    bad("ENCRYPTION_PRIMARY_KEY_ID", e.to_string())
                }
                _ => bad("ENCRYPTION_KEYS", e.to_string()),
            })?;

        let admin_token = required("ADMIN_TOKEN")?;
        if admin_token.len() < 16 {
            return Err(bad("ADMIN_TOKEN", "must be at least 16 characters"));
        }

        let worker_poll_interval = match get("WORKER_POLL_INTERVAL") {
            None => Duration::from_secs(5),
            Some(v) => {
                let secs: f64 = v.trim().parse().map_err(|_| {
                    bad(
                        "WORKER_POLL_INTERVAL",
                        format!("{v:?} is not a number of seconds"),
                    )
                })?;
                if !(0.05..=3600.0).contains(&secs) {
                    return Err(bad(
                        "WORKER_POLL_INTERVAL",
                        "must be between 0.05 and 3600 seconds",
                    ));
                }
                Duration::from_secs_f64(secs)
            }
        };

        let symbols = match get("SYMBOLS") {
            None => vec![Symbol::parse("AVAXUSDT").expect("valid")],
            Some(list) => {
                let mut out = Vec::new();
                for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let symbol = Symbol::parse(item).map_err(|e| bad("SYMBOLS", format!("{item:?}: {e}")))?;
                    if !out.contains(&symbol) {
                        out.push(symbol);
                    }
                }
                if out.is_empty() {
                    return Err(bad("SYMBOLS", "lists no symbol"));
                }
                out
            }
        };

        let log_format = match get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(bad("LOG_FORMAT", format!("{other:?} is not pretty or json"))),
        };

        let dedupe_window = match get("DEDUPE_WINDOW_SECS") {
            None => Duration::from_secs(60),
            Some(v) => {
                let secs: u64 = v.trim().parse().map_err(|_| {
                    bad(
                        "DEDUPE_WINDOW_SECS",
                        format!("{v:?} is not a whole number of seconds"),
                    )
                })?;
                if !(1..=7 * 24 * 3600).contains(&secs) {
                    return Err(bad("DEDUPE_WINDOW_SECS", "must be between 1 and 604800"));
                }
                Duration::from_secs(secs)
            }
        };

        let ip_list = |var: &'static str, text: &str| -> Result<Vec<IpAddr>, ConfigError> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|_| bad(var, format!("{s:?} is not an IP address")))
                })
                .collect()
        };
        let allowlist = match get("TRADINGVIEW_IP_ALLOWLIST").as_deref().map(str::trim) {
            None | Some("off") | Some("false") | Some("0") => None,
            Some("on") | Some("true") | Some("1") => Some(
                TRADINGVIEW_IPS
                    .iter()
                    .map(|s| s.parse().expect("valid"))
                    .collect(),
            ),
            Some(list) => Some(ip_list("TRADINGVIEW_IP_ALLOWLIST", list)?),
        };
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => ip_list("TRUSTED_PROXIES", &list)?,
        };
        let cors_origins = get("CORS_ALLOWED_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();

        Ok(Config {
            database_url: database_url(lookup)?,
            host,
            port,
            tradingview_secret,
            keyring,
            admin_token: SecretString::from(admin_token),
            bybit_env,
            worker_poll_interval,
            symbols,
            log_format,
            dedupe_window,
            ip_policy: IpPolicy {
                allowlist,
                trusted_proxies,
            },
            cors_origins,
        })
    }

    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_lookup(&|name| std::env::var(name).ok())
    }
}

fn parse_port(var: &'static str, value: Option<String>, default: u16) -> Result<u16, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u16>()
            .map_err(|_| bad(var, format!("{v:?} is not a port number (0 to 65535)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("TRADINGVIEW_SECRET", "s".repeat(32)),
            ("ENCRYPTION_KEY_HEX", "ab".repeat(32)),
            ("ADMIN_TOKEN", "admin-token-0123456789".to_string()),
        ])
    }

    fn parse(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(&|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.port, 8000);
        assert_eq!(config.host.to_string(), "127.0.0.1");
        assert_eq!(config.bybit_env, BybitEnv::Paper);
        assert_eq!(config.worker_poll_interval, Duration::from_secs(5));
        assert_eq!(config.symbols, vec![Symbol::parse("AVAXUSDT").unwrap()]);
        assert_eq!(config.dedupe_window, Duration::from_secs(60));
        assert!(config.ip_policy.allowlist.is_none());
        assert_eq!(config.database_url.expose_secret(), DEFAULT_DATABASE_URL);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&'static str, &str)] = &[
            ("ENCRYPTION_KEY_HEX", &"a".repeat(63)),
            ("BYBIT_ENV", "live"),
            ("BACKEND_PORT", "abc"),
            ("BACKEND_HOST", "localhost:80"),
            ("WORKER_POLL_INTERVAL", "soon"),
            ("SYMBOLS", "AVAX-USDT"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_URL", "postgres://host:notaport/db"),
            ("TRADINGVIEW_IP_ALLOWLIST", "1.2.3.4,nope"),
            ("TRADINGVIEW_SECRET", "short"),
            ("ADMIN_TOKEN", "short"),
        ];
        for (var, value) in cases {
            let mut vars = base();
            vars.insert(var, value.to_string());
            let err = parse(&vars).unwrap_err();
            assert_eq!(err.var, *var, "{err}");
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn secrets_are_required_outside_paper() {
        let mut vars = base();
        vars.insert("BYBIT_ENV", "mainnet".into());
        vars.remove("ADMIN_TOKEN");
        let err = parse(&vars).unwrap_err();
        assert_eq!(err.var, "ADMIN_TOKEN");
        assert!(err.problem.contains("mainnet"));
    }

    #[test]
    fn debug_prints_no_secret() {
        let mut vars = base();
        vars.insert(
            "DATABASE_URL",
            "postgres://app:hunter2hunter2@db:5432/humbex".into(),
        );
        let config = parse(&vars).unwrap();
        let debug = format!("{config:?}");
        for secret in [
            &"s".repeat(32),
            &"ab".repeat(32),
            "admin-token-0123456789",
            "hunter2hunter2",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("REDACTED"));
    }

    #[test]
    fn whsec_secrets_decode_for_standard_webhooks() {
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(secret.standard_webhooks_key().len(), 24);
        assert_eq!(
            secret.x_signature_key(),
            b"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
        );
    }

    #[test]
    fn allowlist_on_means_tradingview() {
        let mut vars = base();
        vars.insert("TRADINGVIEW_IP_ALLOWLIST", "on".into());
        vars.insert("TRUSTED_PROXIES", "10.0.0.1".into());
        let config = parse(&vars).unwrap();
        assert_eq!(config.ip_policy.allowlist.unwrap().len(), 4);
        assert_eq!(config.ip_policy.trusted_proxies.len(), 1);
    }
}
