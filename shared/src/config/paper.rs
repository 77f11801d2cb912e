//! The paper exchange's variables: their defaults and checks, written once for the paper exchange
//! itself and for the services that reach it (where it listens, the balance of new accounts).

use std::str::FromStr;

use rust_decimal::Decimal;

use super::parse::{ConfigError, bad, parse_port};

pub const DEFAULT_PAPER_HOST: &str = "127.0.0.1";
pub const DEFAULT_PAPER_PORT: u16 = 8001;
pub const DEFAULT_PAPER_BALANCE_USDT: u32 = 10_000;

/// A variable's value (blank counts as unset).
type Get<'a> = &'a dyn Fn(&str) -> Option<String>;

/// PAPER_HOST and PAPER_PORT: where the paper exchange listens (port 0: any free port).
pub fn paper_listen(get: Get) -> Result<(String, u16), ConfigError> {
    let host = get("PAPER_HOST").map_or_else(|| DEFAULT_PAPER_HOST.to_owned(), |h| h.trim().to_owned());
    let port = parse_port("PAPER_PORT", get("PAPER_PORT"), DEFAULT_PAPER_PORT)?;
    Ok((host, port))
}

/// PAPER_BALANCE_USDT: the balance of paper accounts made without one.
pub fn paper_balance_usdt(get: Get) -> Result<Decimal, ConfigError> {
    let Some(v) = get("PAPER_BALANCE_USDT") else {
        return Ok(Decimal::from(DEFAULT_PAPER_BALANCE_USDT));
    };
    let d: Decimal = v
        .trim()
        .parse()
        .map_err(|_| bad("PAPER_BALANCE_USDT", format!("{v:?} is not a decimal number")))?;
    if d.is_sign_negative() {
        return Err(bad("PAPER_BALANCE_USDT", "must not be negative"));
    }
    Ok(d)
}

/// A whole number `var` (or `default` when unset).
pub fn whole_number<T: FromStr>(get: Get, var: &'static str, default: T) -> Result<T, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| bad(var, format!("{v:?} is not a whole number in range"))),
    }
}
