//! DATABASE_URL: where PostgreSQL is, with a password that never reaches a log.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::parse::{ConfigError, bad};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/humbex";

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

/// Connections each role's pool keeps: enough for concurrent webhooks on a small machine.
pub const POOL_SIZE: usize = 16;

/// The database every role uses.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
}

/// The database URL alone (for `migrate`, which needs no secrets).
pub fn database_url(lookup: &dyn Fn(&str) -> Option<String>) -> Result<DatabaseUrl, ConfigError> {
    DatabaseUrl::parse(&lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()))
}
