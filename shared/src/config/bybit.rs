//! Where orders go: BYBIT_ENV, Bybit's endpoints per environment (the one place they are written),
//! the overrides, the paper exchange's address, and the key rules that depend on the environment.

use std::net::IpAddr;

use rust_decimal::Decimal;

use super::parse::{ConfigError, Get, bad, checked_url, connect_host, ip_list, parse_bool, parse_port};

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

pub const DEFAULT_PAPER_HOST: &str = "127.0.0.1";
pub const DEFAULT_PAPER_PORT: u16 = 8001;
pub const DEFAULT_PAPER_BALANCE_USDT: u32 = 10_000;

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
        let paper_balance_usdt = match get("PAPER_BALANCE_USDT") {
            None => Decimal::from(DEFAULT_PAPER_BALANCE_USDT),
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

/// The REST and private WebSocket URLs for `env`, after BYBIT_REST_URL / BYBIT_WS_PRIVATE_URL.
fn endpoints(env: BybitEnv, get: Get) -> Result<(String, String), ConfigError> {
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
    Ok((rest, ws))
}
