//! The checks every variable goes through: one error type naming the variable, and the parsers of
//! booleans, ports, URLs and address lists shared by the sections.

use std::net::IpAddr;

/// One configuration problem: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

pub(crate) fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// A variable's value as the sections read it: blank counts as unset.
pub(crate) type Get<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(crate) fn parse_bool(
    var: &'static str,
    value: Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    match value.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(bad(var, format!("{v:?} is not true or false"))),
        },
    }
}

pub(crate) fn parse_port(var: &'static str, value: Option<String>, default: u16) -> Result<u16, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u16>()
            .map_err(|_| bad(var, format!("{v:?} is not a port number (0 to 65535)"))),
    }
}

/// A comma-separated list of IP addresses.
pub(crate) fn ip_list(var: &'static str, text: &str) -> Result<Vec<IpAddr>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| bad(var, format!("{s:?} is not an IP address")))
        })
        .collect()
}

/// The address a client dials for a server bound to `host`: a wildcard bind is reached on loopback.
pub(crate) fn connect_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".into(),
        Ok(ip) if ip.is_unspecified() => "[::1]".into(),
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => host.to_owned(),
    }
}

/// An absolute URL with one of `schemes`, a host, no credentials (they would reach logs through
/// Debug), no query or fragment; returned without a trailing `/`.
pub(crate) fn checked_url(var: &'static str, text: &str, schemes: &[&str]) -> Result<String, ConfigError> {
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
