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
    /// Where the URL points, rebuilt from its parsed form (user, hosts, ports, database), for
    /// messages: a password given anywhere (user info, `?password=`, a `password=` key of a
    /// key=value string) shows only as `[REDACTED]`, and no other parameter is shown at all.
    pub fn redacted(&self) -> String {
        use tokio_postgres::config::Host;
        let config = self.pg_config();
        let enc = |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        let mut out = String::from("postgres://");
        let password = config.get_password().is_some().then_some(":[REDACTED]");
        if let Some(user) = config.get_user() {
            out.push_str(&enc(user));
        }
        if let Some(password) = password {
            out.push_str(password);
        }
        if config.get_user().is_some() || password.is_some() {
            out.push('@');
        }
        let ports = config.get_ports();
        let port_of = |i: usize| match ports.len() {
            0 => None,
            1 => Some(ports[0]),
            _ => ports.get(i).copied(),
        };
        let mut sockets = Vec::new();
        let mut tcp = Vec::new();
        for (i, host) in config.get_hosts().iter().enumerate() {
            match host {
                Host::Tcp(name) => {
                    let name = if name.contains(':') {
                        format!("[{name}]")
                    } else {
                        enc(name)
                    };
                    tcp.push(match port_of(i) {
                        Some(port) => format!("{name}:{port}"),
                        None => name,
                    });
                }
                Host::Unix(path) => sockets.push(enc(&path.to_string_lossy())),
            }
        }
        out.push_str(&tcp.join(","));
        if let Some(db) = config.get_dbname() {
            out.push('/');
            out.push_str(&enc(db));
        }
        if !sockets.is_empty() {
            out.push_str("?host=");
            out.push_str(&sockets.join(","));
        }
        out
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

#[cfg(test)]
mod tests {
    use super::DatabaseUrl;

    /// Issue 16, item 8: the password never shows, however it was given.
    #[test]
    fn redacted_hides_the_password_in_every_form() {
        let cases = [
            (
                "postgres://app:pw-SECRET@db:5432/humbex",
                "postgres://app:[REDACTED]@db:5432/humbex",
            ),
            (
                "postgresql://app@db/humbex?password=pw-SECRET",
                "postgres://app:[REDACTED]@db:5432/humbex",
            ),
            (
                "postgres://db/humbex?user=app&password=pw-SECRET&sslmode=disable",
                "postgres://app:[REDACTED]@db:5432/humbex",
            ),
            (
                "host=db port=5433 user=app password=pw-SECRET dbname=humbex",
                "postgres://app:[REDACTED]@db:5433/humbex",
            ),
            (
                "host=db user=app password='pw-SECRET with spaces' dbname=humbex",
                "postgres://app:[REDACTED]@db/humbex",
            ),
            (
                "postgres://postgres@127.0.0.1:5432/humbex",
                "postgres://postgres@127.0.0.1:5432/humbex",
            ),
            (
                "postgres://app:pw-SECRET@%2Fvar%2Frun%2Fpostgresql/humbex",
                "postgres://app:[REDACTED]@/humbex?host=%2Fvar%2Frun%2Fpostgresql",
            ),
            (
                "postgres://app:pw-SECRET@[::1]:5432/humbex",
                "postgres://app:[REDACTED]@[::1]:5432/humbex",
            ),
        ];
        for (given, shown) in cases {
            let url = DatabaseUrl::parse(given).unwrap();
            assert_eq!(url.redacted(), shown, "{given}");
            assert!(!format!("{url:?}").contains("SECRET"), "{given}");
        }
    }
}
