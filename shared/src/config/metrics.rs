//! Where the metrics listener binds (METRICS_HOST, METRICS_PORT): one per process; `humbex up`
//! serves every role's metrics there (docs/metrics.md).

use std::net::{IpAddr, SocketAddr};

use super::parse::{ConfigError, Get, bad, parse_port};

pub const DEFAULT_METRICS_PORT: u16 = 9464;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    pub host: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
}

impl MetricsConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

pub(crate) fn metrics(get: Get) -> Result<MetricsConfig, ConfigError> {
    let host_text = get("METRICS_HOST").unwrap_or_else(|| "127.0.0.1".into());
    let host: IpAddr = host_text
        .trim()
        .parse()
        .map_err(|_| bad("METRICS_HOST", format!("{host_text:?} is not an IP address")))?;
    let port = parse_port("METRICS_PORT", get("METRICS_PORT"), DEFAULT_METRICS_PORT)?;
    Ok(MetricsConfig { host, port })
}
