//! Configuration from the environment (the Python original's names keep their meaning).
//!
//! Every value is checked at start-up; a bad one stops the process with one line naming the
//! variable and what is wrong. `Debug` never prints a secret.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use rust_decimal::Decimal;
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

    /// Bybit's REST base (bybit-v5.md §1); None for paper, whose address is configured.
    pub fn rest_url(self) -> Option<&'static str> {
        match self {
            BybitEnv::Paper => None,
            BybitEnv::Testnet => Some("https://api-testnet.bybit.com"),
            BybitEnv::Demo => Some("https://api-demo.bybit.com"),
            BybitEnv::Mainnet => Some("https://api.bybit.com"),
        }
    }

    /// Bybit's private WebSocket (bybit-v5.md §1); None for paper.
    pub fn private_ws_url(self) -> Option<&'static str> {
        match self {
            BybitEnv::Paper => None,
            BybitEnv::Testnet => Some("wss://stream-testnet.bybit.com/v5/private"),
            BybitEnv::Demo => Some("wss://stream-demo.bybit.com/v5/private"),
            BybitEnv::Mainnet => Some("wss://stream.bybit.com/v5/private"),
        }
    }
}

pub const DEFAULT_PAPER_HOST: &str = "127.0.0.1";
pub const DEFAULT_PAPER_PORT: u16 = 8001;

/// Where orders go: the environment and the endpoints actually used (after any override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BybitEndpoints {
    pub env: BybitEnv,
    /// REST base without a trailing `/`, e.g. `https://api.bybit.com` or `http://127.0.0.1:8001`.
    pub rest_url: String,
    /// e.g. `wss://stream.bybit.com/v5/private`.
    pub ws_private_url: String,
}

impl BybitEndpoints {
    /// In paper mode the REST base is also where the paper exchange's control API lives.
    pub fn paper_control_url(&self) -> Option<&str> {
        (self.env == BybitEnv::Paper).then_some(self.rest_url.as_str())
    }

    fn from_lookup(env: BybitEnv, get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let rest_override = get("BYBIT_REST_URL")
            .map(|v| checked_url("BYBIT_REST_URL", &v, &["http", "https"]))
            .transpose()?;
        let ws_override = get("BYBIT_WS_PRIVATE_URL")
            .map(|v| checked_url("BYBIT_WS_PRIVATE_URL", &v, &["ws", "wss"]))
            .transpose()?;
        let (rest_url, ws_private_url) = match (env.rest_url(), env.private_ws_url()) {
            (Some(rest), Some(ws)) => (
                rest_override.unwrap_or_else(|| rest.to_owned()),
                ws_override.unwrap_or_else(|| ws.to_owned()),
            ),
            _ => {
                // Only read when needed, so a stray PAPER_PORT cannot break a mainnet start.
                let paper = || -> Result<String, ConfigError> {
                    let host = get("PAPER_HOST").unwrap_or_else(|| DEFAULT_PAPER_HOST.into());
                    let port = parse_port("PAPER_PORT", get("PAPER_PORT"), DEFAULT_PAPER_PORT)?;
                    if port == 0 {
                        return Err(bad(
                            "PAPER_PORT",
                            "0 picks a random port that no other component can find; choose one, or set BYBIT_REST_URL and BYBIT_WS_PRIVATE_URL",
                        ));
                    }
                    Ok(format!("{}:{port}", connect_host(host.trim())))
                };
                let rest = match rest_override {
                    Some(url) => url,
                    None => format!("http://{}", paper()?),
                };
                let ws = match ws_override {
                    Some(url) => url,
                    // A REST override alone moves the paper exchange, WebSocket included.
                    None => match rest.strip_prefix("https://") {
                        Some(rest) => format!("wss://{rest}/v5/private"),
                        None => format!("ws://{}/v5/private", rest.trim_start_matches("http://")),
                    },
                };
                (rest, ws)
            }
        };
        Ok(BybitEndpoints {
            env,
            rest_url,
            ws_private_url,
        })
    }
}

/// The address a client dials for a server bound to `host`: a wildcard bind is reached on loopback.
fn connect_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".into(),
        Ok(ip) if ip.is_unspecified() => "[::1]".into(),
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => host.to_owned(),
    }
}

/// An absolute URL with one of `schemes`, a host, no credentials (they would reach logs through
/// Debug), no query or fragment; returned without a trailing `/`.
fn checked_url(var: &'static str, text: &str, schemes: &[&str]) -> Result<String, ConfigError> {
    let text = text.trim();
    let expected = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(" or ");
    let url = url::Url::parse(text)
        .map_err(|e| bad(var, format!("{text:?} is not a URL ({e}); expected {expected}…")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(bad(var, format!("{text:?} must start with {expected}")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(var, format!("{text:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(var, "must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(var, format!("{text:?} must not have a query or fragment")));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn parse_bool(var: &'static str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match value.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(bad(var, format!("{v:?} is not true or false"))),
        },
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

/// Per-process rate limits (requests over a limit get 429 with Retry-After). Each is a budget per
/// minute, refilled continuously; the defaults sit far above what TradingView ever sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Failed authentications (401s) per source address (RATE_LIMIT_AUTH_FAILURES_PER_MINUTE).
    pub auth_failures_per_ip: u32,
    /// Webhook requests per token (RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE).
    pub requests_per_token: u32,
    /// New signals per owner, user or strategy (RATE_LIMIT_SIGNALS_PER_MINUTE).
    pub signals_per_owner: u32,
    /// Database lookups of well-formed tokens that turned out unknown, all sources together
    /// (RATE_LIMIT_UNKNOWN_TOKENS_PER_MINUTE).
    pub unknown_tokens: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            auth_failures_per_ip: 20,
            requests_per_token: 120,
            signals_per_owner: 60,
            unknown_tokens: 600,
        }
    }
}

/// Bounds on each HTTP connection of ingest, so slow or idle clients cannot hold the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time for a request's headers to arrive, and for the next request on a kept-alive
    /// connection to start (HTTP_HEADER_READ_TIMEOUT_SECS).
    pub header_read_timeout: Duration,
    /// Time for a request's body to arrive once its headers are in (HTTP_BODY_READ_TIMEOUT_SECS).
    pub body_read_timeout: Duration,
    /// Connections served at once; more wait in the listen queue (HTTP_MAX_CONNECTIONS).
    pub max_connections: usize,
}

impl Default for HttpLimits {
    /// TradingView gives up after 3 s, so a sender slower than this is never TradingView.
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// Everything a HUMBEX process needs to know.
pub struct Config {
    pub database_url: DatabaseUrl,
    pub host: IpAddr,
    pub port: u16,
    pub tradingview_secret: WebhookSecret,
    /// During a rotation: the previous secret, still accepted until the given time (or until it is
    /// removed from the configuration, when no time is given).
    pub previous_tradingview_secret: Option<(WebhookSecret, Option<chrono::DateTime<chrono::Utc>>)>,
    pub keyring: Keyring,
    pub admin_token: SecretString,
    pub bybit_env: BybitEnv,
    /// The Bybit endpoints for `bybit_env`, after BYBIT_REST_URL / BYBIT_WS_PRIVATE_URL.
    pub bybit: BybitEndpoints,
    /// Balance of accounts created on the paper exchange (PAPER_BALANCE_USDT).
    pub paper_balance_usdt: Decimal,
    /// Accept API keys with no IP binding on mainnet (ALLOW_UNBOUND_KEYS); elsewhere they are
    /// always accepted, with a warning.
    pub allow_unbound_keys: bool,
    /// This deployment's outbound addresses as Bybit sees them (BYBIT_EGRESS_IPS); when set, a key
    /// is accepted, and stays usable, only while its IP restriction names one of them.
    pub bybit_egress_ips: Vec<IpAddr>,
    /// How often the executor asks Bybit again what each usable key may do (KEY_RECHECK_INTERVAL_SECS).
    pub key_recheck_interval: Duration,
    /// Hard cap on encryptions per encryption key id (ENCRYPTION_MAX_PER_KEY).
    pub encryption_max_per_key: u64,
    pub worker_poll_interval: Duration,
    pub symbols: Vec<Symbol>,
    pub log_format: LogFormat,
    pub dedupe_window: Duration,
    pub ip_policy: IpPolicy,
    /// Origins allowed by CORS; empty means no CORS headers at all.
    pub cors_origins: Vec<String>,
    pub rate_limits: RateLimits,
    pub http_limits: HttpLimits,
    /// Serve the Swagger UI at /docs (DOCS_ENABLED; default on in paper mode, off otherwise).
    pub docs_enabled: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tradingview_secret", &self.tradingview_secret)
            .field("previous_tradingview_secret", &self.previous_tradingview_secret)
            .field("keyring", &self.keyring)
            .field("admin_token", &"[REDACTED]")
            .field("bybit_env", &self.bybit_env)
            .field("bybit", &self.bybit)
            .field("paper_balance_usdt", &self.paper_balance_usdt)
            .field("allow_unbound_keys", &self.allow_unbound_keys)
            .field("bybit_egress_ips", &self.bybit_egress_ips)
            .field("key_recheck_interval", &self.key_recheck_interval)
            .field("encryption_max_per_key", &self.encryption_max_per_key)
            .field("worker_poll_interval", &self.worker_poll_interval)
            .field("symbols", &self.symbols)
            .field("log_format", &self.log_format)
            .field("dedupe_window", &self.dedupe_window)
            .field("ip_policy", &self.ip_policy)
            .field("cors_origins", &self.cors_origins)
            .field("rate_limits", &self.rate_limits)
            .field("http_limits", &self.http_limits)
            .field("docs_enabled", &self.docs_enabled)
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

        let previous_tradingview_secret = match get("TRADINGVIEW_SECRET_PREVIOUS") {
            None => None,
            Some(text) => {
                let secret =
                    WebhookSecret::parse(&text).map_err(|p| bad("TRADINGVIEW_SECRET_PREVIOUS", p))?;
                let until = match get("TRADINGVIEW_SECRET_PREVIOUS_UNTIL") {
                    None => None,
                    Some(at) => Some(
                        chrono::DateTime::parse_from_rfc3339(at.trim())
                            .map_err(|_| {
                                bad(
                                    "TRADINGVIEW_SECRET_PREVIOUS_UNTIL",
                                    format!("{at:?} is not an RFC 3339 time such as 2027-01-31T00:00:00Z"),
                                )
                            })?
                            .with_timezone(&chrono::Utc),
                    ),
                };
                Some((secret, until))
            }
        };
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

        let bybit = BybitEndpoints::from_lookup(bybit_env, &get)?;
        let paper_balance_usdt = match get("PAPER_BALANCE_USDT") {
            None => Decimal::from(10_000),
            Some(v) => {
                let d: Decimal = v
                    .trim()
                    .parse()
                    .map_err(|_| bad("PAPER_BALANCE_USDT", format!("{v:?} is not a decimal number")))?;
                if d.is_sign_negative() {
                    return Err(bad("PAPER_BALANCE_USDT", "must not be negative"));
                }
                d
            }
        };
        let allow_unbound_keys = parse_bool("ALLOW_UNBOUND_KEYS", get("ALLOW_UNBOUND_KEYS"), false)?;

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
        let bybit_egress_ips = match get("BYBIT_EGRESS_IPS") {
            None => Vec::new(),
            Some(list) => ip_list("BYBIT_EGRESS_IPS", &list)?,
        };
        let key_recheck_interval = match get("KEY_RECHECK_INTERVAL_SECS") {
            None => Duration::from_secs(86_400),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| (1..=30 * 86_400).contains(secs))
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    bad(
                        "KEY_RECHECK_INTERVAL_SECS",
                        format!("{v:?} is not a whole number of seconds between 1 and 2592000"),
                    )
                })?,
        };
        let encryption_max_per_key = match get("ENCRYPTION_MAX_PER_KEY") {
            None => crate::key_usage::DEFAULT_MAX_PER_KEY,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=crate::key_usage::MAX_CAP).contains(n))
                .ok_or_else(|| {
                    bad(
                        "ENCRYPTION_MAX_PER_KEY",
                        format!("{v:?} is not a whole number between 1 and 4294967296 (2^32)"),
                    )
                })?,
        };

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

        let per_minute = |var: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| bad(var, format!("{v:?} is not a whole number between 1 and 1000000"))),
            }
        };
        let defaults = RateLimits::default();
        let rate_limits = RateLimits {
            auth_failures_per_ip: per_minute(
                "RATE_LIMIT_AUTH_FAILURES_PER_MINUTE",
                defaults.auth_failures_per_ip,
            )?,
            requests_per_token: per_minute(
                "RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE",
                defaults.requests_per_token,
            )?,
            signals_per_owner: per_minute("RATE_LIMIT_SIGNALS_PER_MINUTE", defaults.signals_per_owner)?,
            unknown_tokens: per_minute("RATE_LIMIT_UNKNOWN_TOKENS_PER_MINUTE", defaults.unknown_tokens)?,
        };

        let whole = |var: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| bad(var, format!("{v:?} is not a whole number between 1 and {max}"))),
            }
        };
        let http_defaults = HttpLimits::default();
        let http_limits = HttpLimits {
            header_read_timeout: Duration::from_secs(whole(
                "HTTP_HEADER_READ_TIMEOUT_SECS",
                http_defaults.header_read_timeout.as_secs(),
                300,
            )?),
            body_read_timeout: Duration::from_secs(whole(
                "HTTP_BODY_READ_TIMEOUT_SECS",
                http_defaults.body_read_timeout.as_secs(),
                300,
            )?),
            max_connections: whole(
                "HTTP_MAX_CONNECTIONS",
                http_defaults.max_connections as u64,
                1_000_000,
            )? as usize,
        };
        let docs_enabled = parse_bool("DOCS_ENABLED", get("DOCS_ENABLED"), bybit_env == BybitEnv::Paper)?;

        Ok(Config {
            database_url: database_url(lookup)?,
            host,
            port,
            tradingview_secret,
            previous_tradingview_secret,
            keyring,
            admin_token: SecretString::from(admin_token),
            bybit_env,
            bybit,
            paper_balance_usdt,
            allow_unbound_keys,
            bybit_egress_ips,
            key_recheck_interval,
            encryption_max_per_key,
            worker_poll_interval,
            symbols,
            log_format,
            dedupe_window,
            ip_policy: IpPolicy {
                allowlist,
                trusted_proxies,
            },
            cors_origins,
            rate_limits,
            http_limits,
            docs_enabled,
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
        assert_eq!(config.rate_limits, RateLimits::default());
        assert_eq!(config.http_limits, HttpLimits::default());
        assert!(
            config.docs_enabled,
            "paper mode serves /docs unless DOCS_ENABLED=false"
        );
        assert!(config.bybit_egress_ips.is_empty());
        assert_eq!(config.key_recheck_interval, Duration::from_secs(86_400));
        assert_eq!(config.encryption_max_per_key, 1 << 30);
    }

    #[test]
    fn key_hygiene_settings_are_read_and_checked() {
        let mut vars = base();
        vars.insert("BYBIT_EGRESS_IPS", "203.0.113.10, 2001:db8::1".into());
        vars.insert("KEY_RECHECK_INTERVAL_SECS", "60".into());
        vars.insert("ENCRYPTION_MAX_PER_KEY", "4".into());
        let config = parse(&vars).unwrap();
        assert_eq!(
            config.bybit_egress_ips,
            vec![
                "203.0.113.10".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(config.key_recheck_interval, Duration::from_secs(60));
        assert_eq!(config.encryption_max_per_key, 4);
        for (var, value) in [
            ("BYBIT_EGRESS_IPS", "203.0.113.10,nope"),
            ("KEY_RECHECK_INTERVAL_SECS", "0"),
            ("KEY_RECHECK_INTERVAL_SECS", "daily"),
            ("ENCRYPTION_MAX_PER_KEY", "0"),
            ("ENCRYPTION_MAX_PER_KEY", "4294967297"),
        ] {
            let mut vars = base();
            vars.insert(var, value.into());
            let err = parse(&vars).unwrap_err();
            assert_eq!(err.var, var, "{value}: {err}");
        }
    }

    #[test]
    fn rate_limits_are_read_and_checked() {
        let mut vars = base();
        vars.insert("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", "3".into());
        vars.insert("RATE_LIMIT_TOKEN_REQUESTS_PER_MINUTE", "4".into());
        vars.insert("RATE_LIMIT_SIGNALS_PER_MINUTE", " 5 ".into());
        let limits = parse(&vars).unwrap().rate_limits;
        assert_eq!(
            (
                limits.auth_failures_per_ip,
                limits.requests_per_token,
                limits.signals_per_owner
            ),
            (3, 4, 5)
        );
        for bad_value in ["0", "-1", "many", "1000001"] {
            vars.insert("RATE_LIMIT_SIGNALS_PER_MINUTE", bad_value.into());
            let err = parse(&vars).unwrap_err().to_string();
            assert!(err.contains("RATE_LIMIT_SIGNALS_PER_MINUTE"), "{err}");
        }
    }

    #[test]
    fn http_limits_and_the_docs_switch_are_read_and_checked() {
        let mut vars = base();
        vars.insert("HTTP_HEADER_READ_TIMEOUT_SECS", "3".into());
        vars.insert("HTTP_BODY_READ_TIMEOUT_SECS", "7".into());
        vars.insert("HTTP_MAX_CONNECTIONS", "100".into());
        vars.insert("DOCS_ENABLED", "false".into());
        vars.insert("RATE_LIMIT_UNKNOWN_TOKENS_PER_MINUTE", "9".into());
        let config = parse(&vars).unwrap();
        assert_eq!(
            config.http_limits,
            HttpLimits {
                header_read_timeout: Duration::from_secs(3),
                body_read_timeout: Duration::from_secs(7),
                max_connections: 100,
            }
        );
        assert!(!config.docs_enabled);
        assert_eq!(config.rate_limits.unknown_tokens, 9);
        // Outside paper mode the docs page is off unless asked for.
        let mut vars = base();
        vars.insert("BYBIT_ENV", "testnet".into());
        assert!(!parse(&vars).unwrap().docs_enabled);
        vars.insert("DOCS_ENABLED", "true".into());
        assert!(parse(&vars).unwrap().docs_enabled);
        for (var, value) in [
            ("HTTP_HEADER_READ_TIMEOUT_SECS", "0"),
            ("HTTP_BODY_READ_TIMEOUT_SECS", "soon"),
            ("HTTP_MAX_CONNECTIONS", "-1"),
            ("DOCS_ENABLED", "maybe"),
        ] {
            let mut vars = base();
            vars.insert(var, value.into());
            let err = parse(&vars).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
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
            ("BYBIT_REST_URL", "api.bybit.com"),
            ("BYBIT_REST_URL", "wss://stream.bybit.com"),
            ("BYBIT_REST_URL", "https://user:pw@api.bybit.com"),
            ("BYBIT_REST_URL", "https://api.bybit.com/?x=1"),
            ("BYBIT_WS_PRIVATE_URL", "https://stream.bybit.com/v5/private"),
            ("BYBIT_WS_PRIVATE_URL", "not a url"),
            ("PAPER_PORT", "80000"),
            ("PAPER_PORT", "0"),
            ("PAPER_BALANCE_USDT", "lots"),
            ("PAPER_BALANCE_USDT", "-1"),
            ("ALLOW_UNBOUND_KEYS", "maybe"),
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
    fn bybit_env_picks_the_endpoints() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.bybit.env, BybitEnv::Paper);
        assert_eq!(config.bybit.rest_url, "http://127.0.0.1:8001");
        assert_eq!(config.bybit.ws_private_url, "ws://127.0.0.1:8001/v5/private");
        assert_eq!(config.bybit.paper_control_url(), Some("http://127.0.0.1:8001"));
        assert_eq!(config.paper_balance_usdt, Decimal::from(10_000));
        assert!(!config.allow_unbound_keys);

        for (env, rest, ws) in [
            (
                "mainnet",
                "https://api.bybit.com",
                "wss://stream.bybit.com/v5/private",
            ),
            (
                "testnet",
                "https://api-testnet.bybit.com",
                "wss://stream-testnet.bybit.com/v5/private",
            ),
            (
                "demo",
                "https://api-demo.bybit.com",
                "wss://stream-demo.bybit.com/v5/private",
            ),
        ] {
            let mut vars = base();
            vars.insert("BYBIT_ENV", env.into());
            // Paper settings are irrelevant off paper, even broken ones.
            vars.insert("PAPER_PORT", "0".into());
            let config = parse(&vars).unwrap();
            assert_eq!(config.bybit.rest_url, rest);
            assert_eq!(config.bybit.ws_private_url, ws);
            assert_eq!(config.bybit.paper_control_url(), None);
        }
    }

    #[test]
    fn paper_host_and_port_and_overrides() {
        let mut vars = base();
        vars.insert("PAPER_HOST", "0.0.0.0".into());
        vars.insert("PAPER_PORT", "9100".into());
        vars.insert("PAPER_BALANCE_USDT", "2500.5".into());
        vars.insert("ALLOW_UNBOUND_KEYS", "true".into());
        let config = parse(&vars).unwrap();
        assert_eq!(config.bybit.rest_url, "http://127.0.0.1:9100");
        assert_eq!(config.bybit.ws_private_url, "ws://127.0.0.1:9100/v5/private");
        assert_eq!(config.paper_balance_usdt, "2500.5".parse::<Decimal>().unwrap());
        assert!(config.allow_unbound_keys);

        let mut vars = base();
        vars.insert("BYBIT_REST_URL", "http://127.0.0.1:4321/".into());
        let config = parse(&vars).unwrap();
        assert_eq!(config.bybit.rest_url, "http://127.0.0.1:4321");
        assert_eq!(config.bybit.ws_private_url, "ws://127.0.0.1:4321/v5/private");

        let mut vars = base();
        vars.insert("BYBIT_ENV", "mainnet".into());
        vars.insert("BYBIT_REST_URL", "http://127.0.0.1:4321".into());
        vars.insert("BYBIT_WS_PRIVATE_URL", "ws://127.0.0.1:4321/v5/private".into());
        let config = parse(&vars).unwrap();
        assert_eq!(config.bybit.env, BybitEnv::Mainnet);
        assert_eq!(config.bybit.rest_url, "http://127.0.0.1:4321");
        assert_eq!(config.bybit.ws_private_url, "ws://127.0.0.1:4321/v5/private");
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
