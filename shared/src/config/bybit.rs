//! Where orders go: BYBIT_ENV, Bybit's endpoints per environment (the one place they are written),
//! the overrides, the paper exchange's address, and the key rules that depend on the environment.

use std::net::IpAddr;

use rust_decimal::Decimal;

use super::paper::{paper_balance_usdt, paper_listen};
use super::parse::{ConfigError, Get, bad, checked_url, connect_host, ip_list, parse_bool};

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

    /// Bybit's REST base; None for paper, whose address is configured.
    pub fn rest_url(self) -> Option<&'static str> {
        match self {
            BybitEnv::Paper => None,
            BybitEnv::Testnet => Some("https://api-testnet.bybit.com"),
            BybitEnv::Demo => Some("https://api-demo.bybit.com"),
            BybitEnv::Mainnet => Some("https://api.bybit.com"),
        }
    }

    /// Bybit's private WebSocket; None for paper.
    pub fn private_ws_url(self) -> Option<&'static str> {
        match self {
            BybitEnv::Paper => None,
            BybitEnv::Testnet => Some("wss://stream-testnet.bybit.com/v5/private"),
            BybitEnv::Demo => Some("wss://stream-demo.bybit.com/v5/private"),
            BybitEnv::Mainnet => Some("wss://stream.bybit.com/v5/private"),
        }
    }

    /// Say loudly, once per process start, that orders will be real.
    pub fn warn_if_mainnet(self) {
        if self == BybitEnv::Mainnet {
            tracing::warn!("BYBIT_ENV=mainnet: signals will trade REAL MONEY on Bybit");
        }
    }
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

/// The exchange side of the configuration: the environment, the endpoints actually used (after
/// any override), and what a stored API key must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BybitConfig {
    pub env: BybitEnv,
    /// REST base without a trailing `/`, e.g. `https://api.bybit.com` or `http://127.0.0.1:8001`.
    pub rest_url: String,
    /// e.g. `wss://stream.bybit.com/v5/private`.
    pub ws_private_url: String,
    /// Balance of accounts created on the paper exchange (PAPER_BALANCE_USDT).
    pub paper_balance_usdt: Decimal,
    /// Accept API keys with no IP binding on mainnet (ALLOW_UNBOUND_KEYS); elsewhere they are
    /// always accepted, with a warning.
    pub allow_unbound_keys: bool,
    /// This deployment's outbound addresses as Bybit sees them (BYBIT_EGRESS_IPS); when set, a key
    /// is accepted, and stays usable, only while its IP restriction names one of them.
    pub egress_ips: Vec<IpAddr>,
}

impl BybitConfig {
    /// In paper mode the REST base is also where the paper exchange's control API lives.
    pub fn paper_control_url(&self) -> Option<&str> {
        (self.env == BybitEnv::Paper).then_some(self.rest_url.as_str())
    }

    /// Keys without an IP binding are refused (mainnet, unless ALLOW_UNBOUND_KEYS).
    pub fn requires_ip_binding(&self) -> bool {
        self.env == BybitEnv::Mainnet && !self.allow_unbound_keys
    }

    pub(crate) fn from_lookup(env: BybitEnv, get: Get) -> Result<Self, ConfigError> {
        let (rest_url, ws_private_url) = endpoints(env, get)?;
        let paper_balance_usdt = paper_balance_usdt(get)?;
        let allow_unbound_keys = parse_bool("ALLOW_UNBOUND_KEYS", get("ALLOW_UNBOUND_KEYS"), false)?;
        let egress_ips = match get("BYBIT_EGRESS_IPS") {
            None => Vec::new(),
            Some(list) => ip_list("BYBIT_EGRESS_IPS", &list)?,
        };
        Ok(BybitConfig {
            env,
            rest_url,
            ws_private_url,
            paper_balance_usdt,
            allow_unbound_keys,
            egress_ips,
        })
    }
}

/// Bybit's own mainnet domains: the main one, its documented alternative and the regional sites
/// (a key works only on the site where it was made).
const MAINNET_DOMAINS: [&str; 10] = [
    "bybit.com",
    "bytick.com",
    "bybit.nl",
    "bybit.tr",
    "bybit.kz",
    "bybitgeorgia.ge",
    "bybit.ae",
    "bybit.eu",
    "bybit.id",
    "manepa.jp",
];

/// Where the paper exchange may live: this machine, or compose's `paper-exchange` service.
/// In paper mode the key check posts the key's secret to it, so it must not be somewhere else.
const PAPER_HOSTS: [&str; 2] = ["localhost", "paper-exchange"];

/// Which part of Bybit's name an endpoint takes: REST is `api…`, the private WebSocket `stream…`.
#[derive(Clone, Copy)]
enum Endpoint {
    Rest,
    Ws,
}

impl BybitEnv {
    /// Whether `host` is one of Bybit's own for this environment and endpoint.
    fn is_bybit_host(self, endpoint: Endpoint, host: &str) -> bool {
        let prefix = match endpoint {
            Endpoint::Rest => "api",
            Endpoint::Ws => "stream",
        };
        match self {
            BybitEnv::Paper => false,
            BybitEnv::Testnet => host == format!("{prefix}-testnet.bybit.com"),
            BybitEnv::Demo => host == format!("{prefix}-demo.bybit.com"),
            BybitEnv::Mainnet => MAINNET_DOMAINS
                .iter()
                .any(|domain| host == format!("{prefix}.{domain}")),
        }
    }
}

/// The reason `url` may not be used for `env`'s endpoint, if any: outside paper mode TLS to one of
/// Bybit's hosts; in paper mode the paper exchange on loopback or compose's service name.
fn url_problem(env: BybitEnv, endpoint: Endpoint, url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host()?;
    if env == BybitEnv::Paper {
        let local = match host {
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
            url::Host::Domain(name) => PAPER_HOSTS.contains(&name),
        };
        return (!local).then(|| {
            format!(
                "{url:?} is not on this machine (loopback) or compose's paper-exchange service; in paper mode \
                 the key check sends API secrets there (set ALLOW_CUSTOM_BYBIT_URL=true to allow it)"
            )
        });
    }
    let tls = match endpoint {
        Endpoint::Rest => "https",
        Endpoint::Ws => "wss",
    };
    if parsed.scheme() != tls {
        return Some(format!(
            "{url:?} must use {tls}:// with BYBIT_ENV={} (set ALLOW_CUSTOM_BYBIT_URL=true to allow it)",
            env.as_str()
        ));
    }
    let on_bybit = matches!(host, url::Host::Domain(name) if env.is_bybit_host(endpoint, name));
    if !on_bybit || parsed.port().is_some() {
        return Some(format!(
            "{url:?} is not one of Bybit's {} hosts; API keys and signed orders would go there \
             (set ALLOW_CUSTOM_BYBIT_URL=true to allow it)",
            env.as_str()
        ));
    }
    None
}

/// Refuse `url` for `var` unless it passes [`url_problem`], or ALLOW_CUSTOM_BYBIT_URL accepts it
/// with a warning.
fn check_endpoint(
    env: BybitEnv,
    endpoint: Endpoint,
    var: &'static str,
    url: &str,
    allow_custom: bool,
) -> Result<(), ConfigError> {
    match url_problem(env, endpoint, url) {
        None => Ok(()),
        Some(problem) if !allow_custom => Err(bad(var, problem)),
        Some(problem) => {
            tracing::warn!(
                variable = var,
                url,
                "ALLOW_CUSTOM_BYBIT_URL=true: using a custom Bybit URL: {problem}"
            );
            Ok(())
        }
    }
}

/// The REST and private WebSocket URLs for `env`, after BYBIT_REST_URL / BYBIT_WS_PRIVATE_URL,
/// checked against [`url_problem`].
fn endpoints(env: BybitEnv, get: Get) -> Result<(String, String), ConfigError> {
    let (rest, ws) = unchecked_endpoints(env, get)?;
    let allow_custom = parse_bool("ALLOW_CUSTOM_BYBIT_URL", get("ALLOW_CUSTOM_BYBIT_URL"), false)?;
    // In paper mode without an override the address comes from PAPER_HOST.
    let rest_var = match (env, get("BYBIT_REST_URL")) {
        (BybitEnv::Paper, None) => "PAPER_HOST",
        _ => "BYBIT_REST_URL",
    };
    check_endpoint(env, Endpoint::Rest, rest_var, &rest, allow_custom)?;
    let ws_var = match get("BYBIT_WS_PRIVATE_URL") {
        Some(_) => "BYBIT_WS_PRIVATE_URL",
        // Derived from the REST address, whose variable is the one to fix.
        None => rest_var,
    };
    check_endpoint(env, Endpoint::Ws, ws_var, &ws, allow_custom)?;
    Ok((rest, ws))
}

/// The REST and private WebSocket URLs for `env`, after BYBIT_REST_URL / BYBIT_WS_PRIVATE_URL.
fn unchecked_endpoints(env: BybitEnv, get: Get) -> Result<(String, String), ConfigError> {
    let rest_override = get("BYBIT_REST_URL")
        .map(|v| checked_url("BYBIT_REST_URL", &v, &["http", "https"]))
        .transpose()?;
    let ws_override = get("BYBIT_WS_PRIVATE_URL")
        .map(|v| checked_url("BYBIT_WS_PRIVATE_URL", &v, &["ws", "wss"]))
        .transpose()?;
    if let (Some(rest), Some(ws)) = (env.rest_url(), env.private_ws_url()) {
        return Ok((
            rest_override.unwrap_or_else(|| rest.to_owned()),
            ws_override.unwrap_or_else(|| ws.to_owned()),
        ));
    }
    // Only read when needed, so a stray PAPER_PORT cannot break a mainnet start.
    let paper = || -> Result<String, ConfigError> {
        let (host, port) = paper_listen(get)?;
        if port == 0 {
            return Err(bad(
                "PAPER_PORT",
                "0 picks a random port that no other component can find; choose one, or set BYBIT_REST_URL and BYBIT_WS_PRIVATE_URL",
            ));
        }
        Ok(format!("{}:{port}", connect_host(&host)))
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
    Ok((rest, ws))
}
