//! The ingest HTTP service: where it listens, who may post to the TradingView route, CORS, the
//! duplicate window and the per-process rate limits.

use std::net::IpAddr;
use std::time::Duration;

use super::parse::{ConfigError, Get, bad, ip_list, parse_bool, parse_port};

/// TradingView's published webhook source addresses.
pub const TRADINGVIEW_IPS: [&str; 4] = ["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"];

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

/// What the ingest service needs beyond the secrets.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub host: IpAddr,
    pub port: u16,
    /// A repeated signal id within this window is a duplicate (DEDUPE_WINDOW_SECS).
    pub dedupe_window: Duration,
    pub ip_policy: IpPolicy,
    /// Origins allowed by CORS; empty means no CORS headers at all.
    pub cors_origins: Vec<String>,
    pub rate_limits: RateLimits,
    pub limits: HttpLimits,
    /// Serve the Swagger UI at /docs (DOCS_ENABLED; default on in paper mode, off otherwise).
    pub docs_enabled: bool,
}

/// BACKEND_HOST and BACKEND_PORT.
pub(crate) fn listen(get: Get) -> Result<(IpAddr, u16), ConfigError> {
    let host_text = get("BACKEND_HOST").unwrap_or_else(|| "127.0.0.1".into());
    let host: IpAddr = host_text
        .trim()
        .parse()
        .map_err(|_| bad("BACKEND_HOST", format!("{host_text:?} is not an IP address")))?;
    let port = parse_port("BACKEND_PORT", get("BACKEND_PORT"), 8000)?;
    Ok((host, port))
}

pub(crate) fn dedupe_window(get: Get) -> Result<Duration, ConfigError> {
    match get("DEDUPE_WINDOW_SECS") {
        None => Ok(Duration::from_secs(60)),
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
            Ok(Duration::from_secs(secs))
        }
    }
}

pub(crate) fn ip_policy(get: Get) -> Result<IpPolicy, ConfigError> {
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
    Ok(IpPolicy {
        allowlist,
        trusted_proxies,
    })
}

pub(crate) fn cors_origins(get: Get) -> Vec<String> {
    get("CORS_ALLOWED_ORIGINS")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn rate_limits(get: Get) -> Result<RateLimits, ConfigError> {
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
    Ok(RateLimits {
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
    })
}

pub(crate) fn limits(get: Get) -> Result<HttpLimits, ConfigError> {
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
    let defaults = HttpLimits::default();
    Ok(HttpLimits {
        header_read_timeout: Duration::from_secs(whole(
            "HTTP_HEADER_READ_TIMEOUT_SECS",
            defaults.header_read_timeout.as_secs(),
            300,
        )?),
        body_read_timeout: Duration::from_secs(whole(
            "HTTP_BODY_READ_TIMEOUT_SECS",
            defaults.body_read_timeout.as_secs(),
            300,
        )?),
        max_connections: whole("HTTP_MAX_CONNECTIONS", defaults.max_connections as u64, 1_000_000)? as usize,
    })
}

/// DOCS_ENABLED: the Swagger UI is for trying the API locally; in production it is off unless asked.
pub(crate) fn docs_enabled(get: Get, paper: bool) -> Result<bool, ConfigError> {
    parse_bool("DOCS_ENABLED", get("DOCS_ENABLED"), paper)
}
