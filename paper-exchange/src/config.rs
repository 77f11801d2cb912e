//! Configuration of a paper exchange: listen address, symbols, default balance, accounts, and the
//! command-line/env arguments of `humbex paper-exchange`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use humbex_shared::config::{ConfigError, Lookup, paper_balance_usdt, paper_listen, whole_number};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A symbol to list and the price it starts at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolConfig {
    pub symbol: String,
    pub price: Decimal,
}

/// Parses `"AVAXUSDT=25.00,BTCUSDT=60000"`.
pub fn parse_symbols(text: &str) -> Result<Vec<SymbolConfig>, EntryError> {
    let mut symbols = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (symbol, price) = item
            .split_once('=')
            .ok_or_else(|| EntryError::Symbol(item.to_string()))?;
        let symbol = symbol.trim().to_ascii_uppercase();
        let price: Decimal = price
            .trim()
            .parse()
            .map_err(|_| EntryError::Symbol(item.to_string()))?;
        if !symbol.ends_with("USDT") || symbol.len() <= 4 || price <= Decimal::ZERO {
            return Err(EntryError::Symbol(item.to_string()));
        }
        symbols.push(SymbolConfig { symbol, price });
    }
    if symbols.is_empty() {
        return Err(EntryError::Symbol(text.to_string()));
    }
    Ok(symbols)
}

/// A list entry that does not parse; [`PaperExchangeConfig::from_lookup`] names its variable.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("symbol entry {0:?} is not SYMBOLUSDT=price with a positive price")]
    Symbol(String),
    #[error("account entry {0:?} is not api_key:api_secret")]
    Account(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PositionMode {
    #[default]
    #[serde(rename = "one-way")]
    OneWay,
    #[serde(rename = "hedge")]
    Hedge,
}

/// Permission groups as Bybit's query-api reports them, e.g. `{"ContractTrade": ["Order", "Position"]}`.
pub type Permissions = BTreeMap<String, Vec<String>>;

pub fn default_permissions() -> Permissions {
    let mut p = Permissions::new();
    for group in [
        "Spot",
        "Wallet",
        "Options",
        "CopyTrading",
        "BlockTrade",
        "Exchange",
        "NFT",
        "Affiliate",
        "Earn",
    ] {
        p.insert(group.to_string(), Vec::new());
    }
    p.insert("ContractTrade".into(), vec!["Order".into(), "Position".into()]);
    p.insert("Derivatives".into(), vec!["DerivativesTrade".into()]);
    p
}

/// One API key and its account. Debug redacts the secret and masks the key.
#[derive(Clone)]
pub struct AccountSpec {
    pub api_key: String,
    pub api_secret: String,
    pub balance_usdt: Decimal,
    pub permissions: Permissions,
    pub read_only: bool,
    /// Bound IPs; empty or `"*"` means any.
    pub ips: Vec<String>,
    pub position_mode: PositionMode,
    /// Order creates allowed per rolling second (Bybit's default for linear is 10).
    pub order_create_limit_per_second: u32,
}

impl AccountSpec {
    pub fn new(
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
        balance_usdt: Decimal,
    ) -> AccountSpec {
        AccountSpec {
            api_key: api_key.into(),
            api_secret: api_secret.into(),
            balance_usdt,
            permissions: default_permissions(),
            read_only: false,
            ips: vec!["*".into()],
            position_mode: PositionMode::OneWay,
            order_create_limit_per_second: DEFAULT_ORDER_CREATE_LIMIT,
        }
    }

    pub fn can_trade(&self) -> bool {
        let has = |group: &str, perm: &str| {
            self.permissions
                .get(group)
                .is_some_and(|l| l.iter().any(|p| p == perm))
        };
        !self.read_only && (has("ContractTrade", "Order") || has("Derivatives", "DerivativesTrade"))
    }

    pub fn ip_allowed(&self, ip: &str) -> bool {
        self.ips.is_empty() || self.ips.iter().any(|allowed| allowed == "*" || allowed == ip)
    }
}

impl fmt::Debug for AccountSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSpec")
            .field("api_key", &"<redacted>")
            .field("api_secret", &"<redacted>")
            .field("balance_usdt", &self.balance_usdt)
            .field("permissions", &self.permissions)
            .field("read_only", &self.read_only)
            .field("ips", &self.ips)
            .field("position_mode", &self.position_mode)
            .field(
                "order_create_limit_per_second",
                &self.order_create_limit_per_second,
            )
            .finish()
    }
}

pub const DEFAULT_ORDER_CREATE_LIMIT: u32 = 10;

/// Everything a paper exchange needs to start.
#[derive(Clone, Debug)]
pub struct PaperExchangeConfig {
    pub host: String,
    /// 0 picks a free port; [`crate::RunningPaperExchange::local_addr`] tells which.
    pub port: u16,
    pub symbols: Vec<SymbolConfig>,
    /// Balance of accounts created without one.
    pub default_balance_usdt: Decimal,
    /// Order-create limit of accounts created without one.
    pub default_order_create_limit_per_second: u32,
    /// pybit 5.17 drops the connection if a subscribe ack beats its own bookkeeping
    /// (docs/bybit.md#subscribe-acks-and-pybit).
    pub ws_subscribe_ack_delay: Duration,
    /// Accounts that exist from the start.
    pub accounts: Vec<AccountSpec>,
    /// Random walk of every price, if set.
    pub price_walk: Option<PriceWalk>,
}

/// Every `interval`, each price moves by a uniform random step of at most `max_step_bps` basis points.
#[derive(Clone, Copy, Debug)]
pub struct PriceWalk {
    pub interval: Duration,
    pub max_step_bps: u32,
}

impl Default for PaperExchangeConfig {
    /// Every variable unset.
    fn default() -> Self {
        PaperExchangeConfig::from_lookup(&|_| None).expect("the defaults are valid")
    }
}

pub const DEFAULT_SYMBOLS: &str = "AVAXUSDT=25.00,BTCUSDT=60000,ETHUSDT=3000";
const DEFAULT_WS_SUBSCRIBE_ACK_DELAY_MS: u64 = 50;
const DEFAULT_PRICE_WALK_INTERVAL_MS: u64 = 1000;

/// `humbex paper-exchange` flags. Each stands for its variable (named in its help) and wins over
/// it; the defaults and checks are [`PaperExchangeConfig::from_lookup`]'s, listed in
/// docs/configuration.md.
#[derive(Clone, Default, clap::Args)]
pub struct PaperExchangeArgs {
    /// Address to listen on [PAPER_HOST].
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on, 0 = any free port [PAPER_PORT].
    #[arg(long)]
    pub port: Option<String>,
    /// Listed symbols and their starting prices [PAPER_SYMBOLS].
    #[arg(long)]
    pub symbols: Option<String>,
    /// USDT balance of accounts created without one [PAPER_BALANCE_USDT].
    #[arg(long)]
    pub balance_usdt: Option<String>,
    /// Order creates per second per account before 10006 [PAPER_ORDER_RATE_LIMIT].
    #[arg(long)]
    pub order_rate_limit: Option<String>,
    /// Delay before private WebSocket subscribe acks, in milliseconds [PAPER_WS_SUBSCRIBE_ACK_DELAY_MS].
    #[arg(long)]
    pub ws_subscribe_ack_delay_ms: Option<String>,
    /// Accounts to create at start, "key:secret,key2:secret2"; prefer the variable, flags show in ps [PAPER_ACCOUNTS].
    #[arg(long)]
    pub accounts: Option<String>,
    /// Random walk: the largest step per tick in basis points, 0 = prices only move when set [PAPER_PRICE_WALK_BPS].
    #[arg(long)]
    pub price_walk_bps: Option<String>,
    /// Random walk: milliseconds between steps [PAPER_PRICE_WALK_INTERVAL_MS].
    #[arg(long)]
    pub price_walk_interval_ms: Option<String>,
}

impl fmt::Debug for PaperExchangeArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaperExchangeArgs")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("symbols", &self.symbols)
            .field("balance_usdt", &self.balance_usdt)
            .field("order_rate_limit", &self.order_rate_limit)
            .field("ws_subscribe_ack_delay_ms", &self.ws_subscribe_ack_delay_ms)
            .field("accounts", &self.accounts.as_ref().map(|_| "<redacted>"))
            .field("price_walk_bps", &self.price_walk_bps)
            .field("price_walk_interval_ms", &self.price_walk_interval_ms)
            .finish()
    }
}

impl PaperExchangeArgs {
    /// These flags over the environment.
    pub fn lookup(&self) -> Lookup {
        Lookup::default()
            .with_flag("PAPER_HOST", self.host.as_deref())
            .with_flag("PAPER_PORT", self.port.as_deref())
            .with_flag("PAPER_SYMBOLS", self.symbols.as_deref())
            .with_flag("PAPER_BALANCE_USDT", self.balance_usdt.as_deref())
            .with_flag("PAPER_ORDER_RATE_LIMIT", self.order_rate_limit.as_deref())
            .with_flag(
                "PAPER_WS_SUBSCRIBE_ACK_DELAY_MS",
                self.ws_subscribe_ack_delay_ms.as_deref(),
            )
            .with_flag("PAPER_ACCOUNTS", self.accounts.as_deref())
            .with_flag("PAPER_PRICE_WALK_BPS", self.price_walk_bps.as_deref())
            .with_flag(
                "PAPER_PRICE_WALK_INTERVAL_MS",
                self.price_walk_interval_ms.as_deref(),
            )
    }
}

impl PaperExchangeConfig {
    /// Read and check the PAPER_* variables through `get` (usually a [`Lookup`]'s); an error names
    /// the variable. Blank counts as unset.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let get: &dyn Fn(&str) -> Option<String> = &get;
        let entry = |var: &'static str| {
            move |e: EntryError| ConfigError {
                var,
                problem: e.to_string(),
            }
        };
        let (host, port) = paper_listen(get)?;
        let default_balance_usdt = paper_balance_usdt(get)?;
        let order_rate_limit = whole_number(get, "PAPER_ORDER_RATE_LIMIT", DEFAULT_ORDER_CREATE_LIMIT)?;
        let ack_delay_ms = whole_number(
            get,
            "PAPER_WS_SUBSCRIBE_ACK_DELAY_MS",
            DEFAULT_WS_SUBSCRIBE_ACK_DELAY_MS,
        )?;
        let price_walk_bps = whole_number(get, "PAPER_PRICE_WALK_BPS", 0u32)?;
        let price_walk_interval_ms = whole_number(
            get,
            "PAPER_PRICE_WALK_INTERVAL_MS",
            DEFAULT_PRICE_WALK_INTERVAL_MS,
        )?;
        let symbols = parse_symbols(&get("PAPER_SYMBOLS").unwrap_or_else(|| DEFAULT_SYMBOLS.to_owned()))
            .map_err(entry("PAPER_SYMBOLS"))?;
        let mut accounts = Vec::new();
        for item in get("PAPER_ACCOUNTS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (key, secret) = item
                .split_once(':')
                .filter(|(k, s)| !k.is_empty() && !s.is_empty())
                // The entry holds a secret: name only the key part in the error.
                .ok_or_else(|| EntryError::Account(item.split(':').next().unwrap_or("").to_string()))
                .map_err(entry("PAPER_ACCOUNTS"))?;
            let mut spec = AccountSpec::new(key, secret, default_balance_usdt);
            spec.order_create_limit_per_second = order_rate_limit;
            accounts.push(spec);
        }
        Ok(PaperExchangeConfig {
            host,
            port,
            symbols,
            default_balance_usdt,
            default_order_create_limit_per_second: order_rate_limit,
            ws_subscribe_ack_delay: Duration::from_millis(ack_delay_ms),
            accounts,
            price_walk: (price_walk_bps > 0).then(|| PriceWalk {
                interval: Duration::from_millis(price_walk_interval_ms.max(1)),
                max_step_bps: price_walk_bps,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_symbol_list() {
        let s = parse_symbols("AVAXUSDT=25.00, btcusdt=60000").unwrap();
        assert_eq!(s[0].symbol, "AVAXUSDT");
        assert_eq!(s[0].price.to_string(), "25.00");
        assert_eq!(s[1].symbol, "BTCUSDT");
        assert!(parse_symbols("AVAX=1").is_err());
        assert!(parse_symbols("AVAXUSDT=-1").is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let spec = AccountSpec::new("PAPERKEYFULL0001", "very-secret-value", Decimal::ONE);
        let shown = format!("{spec:?}");
        assert!(
            !shown.contains("very-secret-value") && !shown.contains("PAPERKEYFULL0001"),
            "{shown}"
        );
    }
}

#[cfg(test)]
mod args_tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: PaperExchangeArgs,
    }

    #[test]
    fn flags_build_a_config() {
        let cli = Cli::parse_from([
            "x",
            "--host",
            "0.0.0.0",
            "--port",
            "9001",
            "--symbols",
            "AVAXUSDT=20",
            "--balance-usdt",
            "500.5",
            "--accounts",
            "k1:s1,k2:s2",
            "--price-walk-bps",
            "5",
        ]);
        let config = PaperExchangeConfig::from_lookup(&|n| cli.args.lookup().get(n)).unwrap();
        assert_eq!(config.host, "0.0.0.0");
        assert_eq!(config.port, 9001);
        assert_eq!(config.symbols.len(), 1);
        assert_eq!(config.default_balance_usdt.to_string(), "500.5");
        assert_eq!(config.accounts.len(), 2);
        assert_eq!(config.accounts[1].api_key, "k2");
        assert_eq!(config.accounts[1].balance_usdt.to_string(), "500.5");
        assert!(config.price_walk.is_some());
        assert!(
            !format!("{:?}", cli.args).contains("s1"),
            "Debug hides account secrets"
        );
    }

    #[test]
    fn every_variable_read_is_in_the_table_as_the_paper_exchanges() {
        use humbex_shared::config::vars::{Role, VARS};
        let read = std::cell::RefCell::new(Vec::new());
        PaperExchangeConfig::from_lookup(&|name| {
            read.borrow_mut().push(name.to_owned());
            None
        })
        .unwrap();
        let read = read.into_inner();
        assert!(read.len() >= 9, "{read:?}");
        for name in read {
            assert!(
                VARS.iter()
                    .any(|v| v.name == name && v.roles.contains(&Role::PaperExchange)),
                "{name} is read but not listed for the paper exchange"
            );
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("PAPER_PORT", "80000"),
            ("PAPER_BALANCE_USDT", "lots"),
            ("PAPER_SYMBOLS", "AVAX=1"),
            ("PAPER_ORDER_RATE_LIMIT", "-1"),
            ("PAPER_WS_SUBSCRIBE_ACK_DELAY_MS", "soon"),
            ("PAPER_PRICE_WALK_BPS", "1.5"),
            ("PAPER_PRICE_WALK_INTERVAL_MS", "x"),
        ] {
            let error =
                PaperExchangeConfig::from_lookup(&|n| (n == var).then(|| value.to_owned())).unwrap_err();
            assert_eq!(error.var, var, "{error}");
        }
    }

    #[test]
    fn bad_account_entry_does_not_echo_the_secret() {
        let cli = Cli::parse_from(["x", "--accounts", "keyonly"]);
        let lookup = cli.args.lookup();
        assert!(PaperExchangeConfig::from_lookup(&|n| lookup.get(n)).is_err());
        let cli = Cli::parse_from(["x", "--accounts", "k:"]);
        let lookup = cli.args.lookup();
        let error = PaperExchangeConfig::from_lookup(&|n| lookup.get(n)).unwrap_err();
        assert_eq!(error.var, "PAPER_ACCOUNTS");
        assert!(error.problem.contains("\"k\""), "{error}");
    }
}
