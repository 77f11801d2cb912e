//! The TLS parameters of a PostgreSQL connection string (`sslmode`, `sslrootcert`), read as libpq
//! reads them, and the string without them for tokio-postgres (which knows only three of the five
//! modes). See docs/deployment.md#postgresql-over-tls.

use std::fmt;
use std::path::PathBuf;

/// libpq's `sslmode` (`allow` is refused: nothing here would ever want plaintext first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the certificates that sign the server's certificate come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// Not given: libpq's default file, `~/.postgresql/root.crt`, used only if it exists.
    Default,
    /// `sslrootcert=<path>`: a PEM file of one or more certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trusted certificates (libpq 16).
    System,
}

/// The TLS parameters of a connection string, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: SslMode,
    pub root_cert: RootCert,
}

/// A connection string split into its TLS parameters and the rest (with `sslmode` rewritten to
/// what tokio-postgres understands: `disable`, `prefer` or `require`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub rest: String,
    pub tls: TlsParams,
}

fn parse_mode(value: &str) -> Result<SslMode, String> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        "allow" => {
            return Err(
                "has sslmode=allow, which is not supported (use prefer, require, verify-ca or verify-full)"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "has sslmode={other:?}; expected disable, prefer, require, verify-ca or verify-full"
            ));
        }
    })
}

/// tokio-postgres's spelling of a mode: it negotiates TLS for require and up, and the verifier
/// (db::tls) decides what is checked.
fn tokio_mode(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
    }
}

fn finish(mode: Option<&str>, root: Option<String>) -> Result<TlsParams, String> {
    let mode = match mode {
        Some(text) => parse_mode(text)?,
        None => SslMode::Prefer, // libpq's default
    };
    let root_cert = match root.as_deref() {
        None | Some("") => RootCert::Default,
        Some("system") => RootCert::System,
        Some(path) => RootCert::File(PathBuf::from(path)),
    };
    // libpq 16 refuses the system store with a mode that would not check the host name: the
    // public CAs in it sign certificates for anyone.
    if root_cert == RootCert::System && mode != SslMode::VerifyFull {
        return Err(format!(
            "has sslrootcert=system with sslmode={mode}; the system store needs sslmode=verify-full"
        ));
    }
    Ok(TlsParams { mode, root_cert })
}

/// Split a URL (`postgres://` or `postgresql://`) or a key=value string.
pub fn split(text: &str) -> Result<Split, String> {
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        split_url(text)
    } else {
        split_key_value(text)
    }
}

fn decode(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "has a query parameter that is not UTF-8".to_owned())
}

fn split_url(text: &str) -> Result<Split, String> {
    let Some((base, query)) = text.split_once('?') else {
        return Ok(Split {
            rest: text.to_owned(),
            tls: finish(None, None)?,
        });
    };
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // libpq: a later occurrence of a key wins.
        match decode(key)?.as_str() {
            "sslmode" => mode = Some(decode(value)?),
            "sslrootcert" => root = Some(decode(value)?),
            _ => kept.push(pair),
        }
    }
    let tls = finish(mode.as_deref(), root)?;
    let sslmode = format!("sslmode={}", tokio_mode(tls.mode));
    kept.push(&sslmode);
    Ok(Split {
        rest: format!("{base}?{}", kept.join("&")),
        tls,
    })
}

/// Tokens of a key=value string: values bare or single-quoted, with backslash escapes.
fn tokens(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("has {key:?} without a value"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or("ends inside an escape")?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err("has an unterminated quoted value".into()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.push(chars.next().ok_or("ends inside an escape")?);
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

fn split_key_value(text: &str) -> Result<Split, String> {
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for (key, value) in tokens(text)? {
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => kept.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            )),
        }
    }
    let tls = finish(mode.as_deref(), root)?;
    kept.push(format!("sslmode={}", tokio_mode(tls.mode)));
    Ok(Split {
        rest: kept.join(" "),
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::{RootCert, SslMode, split};

    #[test]
    fn url_modes_are_read_and_rewritten_for_tokio_postgres() {
        let cases = [
            ("postgres://h/db", SslMode::Prefer, "postgres://h/db"),
            (
                "postgres://h/db?sslmode=disable",
                SslMode::Disable,
                "postgres://h/db?sslmode=disable",
            ),
            (
                "postgres://h/db?sslmode=require",
                SslMode::Require,
                "postgres://h/db?sslmode=require",
            ),
            (
                "postgres://h/db?sslmode=verify-ca",
                SslMode::VerifyCa,
                "postgres://h/db?sslmode=require",
            ),
            (
                "postgresql://a,b:6432/db?target_session_attrs=read-write&sslmode=verify-full&application_name=x",
                SslMode::VerifyFull,
                "postgresql://a,b:6432/db?target_session_attrs=read-write&application_name=x&sslmode=require",
            ),
        ];
        for (given, mode, rest) in cases {
            let split = split(given).unwrap();
            assert_eq!(split.tls.mode, mode, "{given}");
            assert_eq!(split.rest, rest, "{given}");
            assert!(split.rest.parse::<tokio_postgres::Config>().is_ok(), "{given}");
        }
    }

    #[test]
    fn root_cert_is_read_and_removed() {
        let file = split("postgres://h/db?sslrootcert=%2Fetc%2Fca%20x.pem&sslmode=verify-full").unwrap();
        assert_eq!(file.tls.root_cert, RootCert::File("/etc/ca x.pem".into()));
        assert_eq!(file.rest, "postgres://h/db?sslmode=require");
        let system = split("postgres://h/db?sslmode=verify-full&sslrootcert=system").unwrap();
        assert_eq!(system.tls.root_cert, RootCert::System);
    }

    #[test]
    fn key_value_strings_are_read_and_requoted() {
        let kv = split(r"host=db user=app password='it\'s a secret' sslmode=verify-ca sslrootcert=/ca.pem")
            .unwrap();
        assert_eq!(kv.tls.mode, SslMode::VerifyCa);
        assert_eq!(kv.tls.root_cert, RootCert::File("/ca.pem".into()));
        let pg: tokio_postgres::Config = kv.rest.parse().unwrap();
        assert_eq!(pg.get_password(), Some(&b"it's a secret"[..]));
        assert_eq!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    }

    #[test]
    fn wrong_values_are_refused_with_the_reason() {
        assert!(
            split("postgres://h/db?sslmode=bogus")
                .unwrap_err()
                .contains("bogus")
        );
        assert!(
            split("postgres://h/db?sslmode=allow")
                .unwrap_err()
                .contains("allow")
        );
        let weak = split("postgres://h/db?sslmode=require&sslrootcert=system").unwrap_err();
        assert!(weak.contains("verify-full"), "{weak}");
        assert!(split("host=db sslmode").is_err());
    }
}
