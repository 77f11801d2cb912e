//! The TLS parameters of a PostgreSQL connection string (`sslmode`, `sslrootcert`, `sslcert`,
//! `sslkey`), read as libpq reads them, with the `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and
//! `PGSSLKEY` fallbacks, and the string without them for tokio-postgres (which knows only three of
//! the five modes and none of the files). See docs/deployment.md#postgresql-over-tls.

use std::fmt;
use std::path::PathBuf;

/// libpq's `sslmode` (`allow` is refused: it tries plaintext first, which nothing here wants).
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

/// Where a parameter's value came from, so that a message points at what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The connection string itself.
    Url,
    /// libpq's environment fallback (the string did not set the parameter).
    Env(&'static str),
    /// libpq's default file under `~/.postgresql/`.
    Default,
}

/// A file named by a parameter (`sslrootcert`, `sslcert`, `sslkey`). It displays as
/// `sslcert=/path`, followed by where that came from unless it was the string itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileParam {
    pub key: &'static str,
    pub path: PathBuf,
    pub source: Source,
}

impl fmt::Display for FileParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shown(self.key, &self.path.display().to_string(), self.source))
    }
}

/// Where the certificates that sign the server's certificate come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// Not given: libpq's default file, `~/.postgresql/root.crt`, used only if it exists.
    Default,
    /// `sslrootcert=<path>`: a PEM file of one or more certificates.
    File(FileParam),
    /// `sslrootcert=system`: the operating system's trusted certificates (libpq 16).
    System,
}

/// The certificate this client presents to the server (for `cert` authentication, or
/// `clientcert=verify-ca`/`verify-full` in pg_hba.conf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCert {
    /// Neither given: libpq's default pair, `~/.postgresql/postgresql.crt` and
    /// `~/.postgresql/postgresql.key`, used only if both exist.
    Default,
    /// `sslcert` (a PEM certificate chain) and `sslkey` (its PEM private key); one without the
    /// other is refused.
    Files { cert: FileParam, key: FileParam },
}

/// The TLS parameters of a connection string, as given (or as the environment supplies them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: SslMode,
    pub root_cert: RootCert,
    pub client_cert: ClientCert,
}

/// A connection string split into its TLS parameters and the rest (with `sslmode` rewritten to
/// what tokio-postgres understands: `disable`, `prefer` or `require`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub rest: String,
    pub tls: TlsParams,
}

/// The TLS parameters a string may set, and libpq's environment variable for each.
const PARAMS: [(&str, &str); 4] = [
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
];

/// The TLS parameters found in a string, by position in [`PARAMS`] (a later occurrence wins, as
/// in libpq).
#[derive(Default)]
struct Found([Option<String>; 4]);

impl Found {
    /// Keep `value` if `key` is a TLS parameter; false if it is not one.
    fn take(&mut self, key: &str, value: String) -> bool {
        match PARAMS.iter().position(|(name, _)| *name == key) {
            Some(i) => {
                self.0[i] = Some(value);
                true
            }
            None => false,
        }
    }

    /// Each parameter from the string, else from its environment variable, exactly as libpq:
    /// the string wins. A blank value counts as unset (as for every variable here).
    fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<TlsParams, String> {
        let [mode, root, cert, key] = self.0.map(|v| v.filter(|v| !v.trim().is_empty()));
        let pick = |given: Option<String>, i: usize| match given {
            Some(value) => Some((value, Source::Url)),
            None => {
                let var = PARAMS[i].1;
                env(var)
                    .filter(|v| !v.trim().is_empty())
                    .map(|value| (value, Source::Env(var)))
            }
        };
        finish(pick(mode, 0), pick(root, 1), pick(cert, 2), pick(key, 3))
    }
}

/// How a parameter is shown in a message, so that it points at what to change: `sslmode=x`, or
/// `sslmode=x (from PGSSLMODE)`, or `sslcert=/path (libpq's default)`.
fn shown(key: &str, value: &str, source: Source) -> String {
    match source {
        Source::Url => format!("{key}={value}"),
        Source::Env(var) => format!("{key}={value} (from {var})"),
        Source::Default => format!("{key}={value} (libpq's default)"),
    }
}

fn parse_mode(value: &str, source: Source) -> Result<SslMode, String> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        "allow" => {
            return Err(format!(
                "{} is not supported: allow tries plaintext first and encrypts only if the server \
                 insists (use prefer, require, verify-ca or verify-full)",
                shown("sslmode", value, source)
            ));
        }
        other => {
            return Err(format!(
                "{} is not a mode; expected disable, prefer, require, verify-ca or verify-full",
                shown("sslmode", &format!("{other:?}"), source)
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

type Given = Option<(String, Source)>;

fn file(key: &'static str, (path, source): (String, Source)) -> FileParam {
    FileParam {
        key,
        path: PathBuf::from(path),
        source,
    }
}

fn finish(mode: Given, root: Given, cert: Given, key: Given) -> Result<TlsParams, String> {
    let mode = match &mode {
        Some((text, source)) => parse_mode(text, *source)?,
        None => SslMode::Prefer, // libpq's default
    };
    let root_cert = match root {
        None => RootCert::Default,
        Some((value, _)) if value == "system" => RootCert::System,
        Some(given) => RootCert::File(file("sslrootcert", given)),
    };
    // libpq 16 refuses the system store with a mode that would not check the host name: the
    // public CAs in it sign certificates for anyone.
    if root_cert == RootCert::System && mode != SslMode::VerifyFull {
        return Err(format!(
            "has sslrootcert=system with sslmode={mode}; the system store needs sslmode=verify-full"
        ));
    }
    // Stricter than libpq, which would quietly fall back to ~/.postgresql/postgresql.key (or send
    // no certificate): half a pair is a mistake to report at start-up, not at the first refusal.
    let client_cert = match (cert, key) {
        (None, None) => ClientCert::Default,
        (Some(cert), Some(key)) => ClientCert::Files {
            cert: file("sslcert", cert),
            key: file("sslkey", key),
        },
        (Some((path, source)), None) => {
            return Err(format!(
                "has {} but no sslkey: a client certificate needs its private key (set sslkey \
                 in the URL, or PGSSLKEY)",
                shown("sslcert", &path, source)
            ));
        }
        (None, Some((path, source))) => {
            return Err(format!(
                "has {} but no sslcert: a private key needs its client certificate (set sslcert \
                 in the URL, or PGSSLCERT)",
                shown("sslkey", &path, source)
            ));
        }
    };
    Ok(TlsParams {
        mode,
        root_cert,
        client_cert,
    })
}

/// Split a URL (`postgres://` or `postgresql://`) or a key=value string; `env` supplies libpq's
/// fallbacks (`PGSSLMODE`, ...) for what the string does not set.
pub fn split(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Split, String> {
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        split_url(text, env)
    } else {
        split_key_value(text, env)
    }
}

fn decode(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "has a query parameter that is not UTF-8".to_owned())
}

fn split_url(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Split, String> {
    let parts = text.split_once('?');
    let had_query = parts.is_some();
    let (base, query) = parts.unwrap_or((text, ""));
    let mut found = Found::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !found.take(&decode(key)?, decode(value)?) {
            kept.push(pair);
        }
    }
    let tls = found.resolve(env)?;
    // The string as given stays as given when it had no query and the mode is libpq's default.
    if !had_query && tls.mode == SslMode::Prefer {
        return Ok(Split {
            rest: text.to_owned(),
            tls,
        });
    }
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

fn split_key_value(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Split, String> {
    let mut found = Found::default();
    let mut kept = Vec::new();
    for (key, value) in tokens(text)? {
        if !found.take(&key, value.clone()) {
            kept.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    let tls = found.resolve(env)?;
    kept.push(format!("sslmode={}", tokio_mode(tls.mode)));
    Ok(Split {
        rest: kept.join(" "),
        tls,
    })
}

#[cfg(test)]
#[path = "libpq_tests.rs"]
mod tests;
