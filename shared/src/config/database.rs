//! DATABASE_URL and DATABASE_DIRECT_URL: where PostgreSQL is, with its TLS settings read as libpq
//! reads them (PGSSLMODE and the other fallbacks included), and a password that never reaches a
//! log.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::libpq;
use super::parse::{ConfigError, bad};
use crate::db::tls::{DbTls, PgConfig};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/humbex";

/// A database URL whose password never reaches a log.
#[derive(Clone)]
pub struct DatabaseUrl {
    /// The URL as given (what `expose_secret` returns, so it parses back to the same).
    given: SecretString,
    /// The URL as tokio-postgres reads it: `sslrootcert`, `sslcert` and `sslkey` removed and
    /// `sslmode` rewritten (config/libpq.rs); the TLS side lives in `tls`.
    text: SecretString,
    tls: DbTls,
    var: &'static str,
}

impl DatabaseUrl {
    /// Parse the value of DATABASE_URL.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_var("DATABASE_URL", text)
    }

    /// Parse the value of `var` (DATABASE_URL, DATABASE_DIRECT_URL): errors name it. libpq's
    /// fallbacks (`PGSSLMODE`, ...) come from the process environment.
    pub fn parse_var(var: &'static str, text: &str) -> Result<Self, ConfigError> {
        Self::parse_with_env(var, text, &|name| std::env::var(name).ok())
    }

    /// Parse the value of `var`, with libpq's fallbacks for what it does not set (`PGSSLMODE`,
    /// `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`) read through `env`: the one place a connection
    /// string is split, so every connection (pools, LISTEN, migrations, `up`'s probe) reads them
    /// alike (docs/deployment.md#postgresql-over-tls).
    pub fn parse_with_env(
        var: &'static str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let split = libpq::split(text, env).map_err(|e| bad(var, e))?;
        split
            .rest
            .parse::<tokio_postgres::Config>()
            .map_err(|e| bad(var, format!("is not a PostgreSQL URL ({e})")))?;
        let tls = DbTls::new(&split.tls).map_err(|e| bad(var, e))?;
        Ok(DatabaseUrl {
            given: SecretString::from(text.to_owned()),
            text: SecretString::from(split.rest),
            tls,
            var,
        })
    }
    /// The URL as given (to hand to another process or parse again).
    pub fn expose_secret(&self) -> &str {
        self.given.expose_secret()
    }
    /// The variable this URL came from.
    pub fn var(&self) -> &'static str {
        self.var
    }
    pub fn tls(&self) -> &DbTls {
        &self.tls
    }
    /// Connection settings with this URL's TLS: every connection is opened from these.
    pub fn pg_config(&self) -> PgConfig {
        let config = self.text.expose_secret().parse().expect("checked in parse");
        PgConfig::new(config, self.tls.clone(), self.var)
    }
    /// The same server with another database (TLS and variable kept).
    pub fn with_dbname(&self, dbname: &str) -> PgConfig {
        let mut pg = self.pg_config();
        pg.dbname(dbname);
        pg
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
    /// DATABASE_URL: the pool's connections (possibly through a transaction pooler).
    pub url: DatabaseUrl,
    /// DATABASE_DIRECT_URL: a direct connection for LISTEN and migrations, when `url` goes through
    /// a pooler that cannot hold a session (docs/deployment.md#connection-poolers).
    pub direct_url: Option<DatabaseUrl>,
}

impl DatabaseConfig {
    /// Where session-bound work (LISTEN, migrations under an advisory lock) connects.
    pub fn direct(&self) -> &DatabaseUrl {
        self.direct_url.as_ref().unwrap_or(&self.url)
    }
}

/// The database URL alone (for `migrate`, which needs no secrets).
pub fn database_url(lookup: &dyn Fn(&str) -> Option<String>) -> Result<DatabaseUrl, ConfigError> {
    let text = lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    DatabaseUrl::parse_with_env("DATABASE_URL", &text, lookup)
}

/// DATABASE_URL with DATABASE_DIRECT_URL (optional; empty is unset).
pub fn database_config(lookup: &dyn Fn(&str) -> Option<String>) -> Result<DatabaseConfig, ConfigError> {
    let direct_url = match lookup("DATABASE_DIRECT_URL").filter(|v| !v.trim().is_empty()) {
        Some(text) => Some(DatabaseUrl::parse_with_env("DATABASE_DIRECT_URL", &text, lookup)?),
        None => None,
    };
    Ok(DatabaseConfig {
        url: database_url(lookup)?,
        direct_url,
    })
}

/// Where migrations run: DATABASE_DIRECT_URL when set, else DATABASE_URL (`humbex migrate`).
pub fn migration_url(lookup: &dyn Fn(&str) -> Option<String>) -> Result<DatabaseUrl, ConfigError> {
    Ok(database_config(lookup)?.direct().clone())
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

    /// The URL given is what is handed on (another process parses it again, TLS and all); what
    /// tokio-postgres reads has the modes it does not know rewritten.
    #[test]
    fn the_given_url_is_kept_and_the_tls_mode_read() {
        let given = "postgres://app@db/humbex?sslmode=require&application_name=x";
        let url = DatabaseUrl::parse(given).unwrap();
        assert_eq!(url.expose_secret(), given);
        assert_eq!(url.tls().mode, super::libpq::SslMode::Require);
        assert_eq!(url.pg_config().get_application_name(), Some("x"));
        assert_eq!(url.var(), "DATABASE_URL");
        let err = DatabaseUrl::parse_var(
            "DATABASE_DIRECT_URL",
            "postgres://db/x?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap_err();
        assert_eq!(err.var, "DATABASE_DIRECT_URL");
    }

    /// libpq's PGSSL* fallbacks reach every URL through the same lookup as the other variables
    /// (never the process environment here), and the URL's own parameters win.
    #[test]
    fn pgssl_variables_apply_to_both_urls_unless_the_url_sets_the_parameter() {
        use super::libpq::SslMode;
        let vars = |pairs: &[(&str, &str)]| {
            let map: std::collections::HashMap<String, String> =
                pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            move |name: &str| map.get(name).cloned()
        };
        let lookup = vars(&[
            ("PGSSLMODE", "require"),
            ("DATABASE_URL", "postgres://app@pooler:6543/db"),
            ("DATABASE_DIRECT_URL", "postgres://app@db:5432/db?sslmode=disable"),
        ]);
        let config = super::database_config(&lookup).unwrap();
        assert_eq!(config.url.tls().mode, SslMode::Require);
        assert_eq!(
            config.url.pg_config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(config.direct().tls().mode, SslMode::Disable, "the URL wins");
        assert_eq!(
            super::migration_url(&lookup).unwrap().tls().mode,
            SslMode::Disable
        );
        // The default URL too.
        let default = super::database_url(&vars(&[("PGSSLMODE", "disable")])).unwrap();
        assert_eq!(default.tls().mode, SslMode::Disable);

        // A bad value from the environment names the URL's variable and the fallback.
        let err = super::database_url(&vars(&[("PGSSLMODE", "allow")])).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        assert!(err.problem.contains("(from PGSSLMODE)"), "{err}");
        let err = super::database_config(&vars(&[(
            "DATABASE_DIRECT_URL",
            "postgres://db/x?sslcert=/etc/c.crt",
        )]))
        .unwrap_err();
        assert_eq!(err.var, "DATABASE_DIRECT_URL");
        assert!(err.problem.contains("sslcert=/etc/c.crt but no sslkey"), "{err}");
        let err = super::database_url(&vars(&[("PGSSLKEY", "/etc/c.key")])).unwrap_err();
        assert!(err.to_string().starts_with("DATABASE_URL: "), "{err}");
        assert!(err.problem.contains("(from PGSSLKEY)"), "{err}");
    }
}
