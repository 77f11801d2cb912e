//! The SMTP relay notifications are mailed through: `SMTP_URL` (lettre's URL form) read into how
//! the connection is protected, `SMTP_FROM`, and `SMTP_CA_FILE`, the certificates to trust instead
//! of the public roots (docs/notifications.md#email). The rule: a password never goes over a
//! connection that may be in clear, except to this machine, and a CA file is refused where no TLS
//! would use it.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::SecretString;

use super::parse::{ConfigError, Get, bad};
use crate::notify;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://` without `tls`: everything in clear.
    None,
    /// `?tls=opportunistic`: STARTTLS when the server offers it, else in clear (anyone on the path
    /// can strip the offer), so it never carries a password off this machine.
    Opportunistic,
    /// `?tls=required`: STARTTLS, and nothing is sent when the server does not offer it or its
    /// certificate does not verify.
    Required,
    /// `smtps://`: TLS from the first byte.
    Wrapper,
}

/// The SMTP relay: the URL (it may carry a password), how it is protected, the sender address and
/// the trusted certificates. Built by [`SmtpConfig::parse`] only, so its parts always agree.
#[derive(Clone)]
pub struct SmtpConfig {
    url: SecretString,
    host: String,
    tls: SmtpTls,
    from: String,
    roots: Option<Vec<CertificateDer<'static>>>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &"[REDACTED]")
            .field("host", &self.host)
            .field("tls", &self.tls)
            .field("from", &self.from)
            .field("roots", &self.roots.as_ref().map(Vec::len))
            .finish()
    }
}

impl SmtpConfig {
    /// Read `SMTP_URL`, `SMTP_FROM` and `SMTP_CA_FILE`; each error names its variable and never
    /// shows the URL (it may hold a password).
    pub fn parse(url: &str, from: &str, ca_file: Option<&Path>) -> Result<SmtpConfig, ConfigError> {
        let shape = "is not smtp://[user:password@]host[:port][?tls=required|opportunistic] or smtps://…";
        let text = url.trim();
        let parsed = url::Url::parse(text).map_err(|_| bad("SMTP_URL", shape))?;
        let tls_param = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let tls = match (parsed.scheme(), tls_param.as_deref()) {
            ("smtp", None) => SmtpTls::None,
            ("smtp", Some("opportunistic")) => SmtpTls::Opportunistic,
            ("smtp", Some("required")) => SmtpTls::Required,
            ("smtps", None) => SmtpTls::Wrapper,
            _ => return Err(bad("SMTP_URL", shape)),
        };
        let (host, loopback) = match parsed.host() {
            // smtp is not a scheme the URL standard knows, so an IPv4 address comes as a name.
            Some(url::Host::Domain(d)) => {
                let loopback =
                    d == "localhost" || d.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
                (d.to_owned(), loopback)
            }
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), ip.is_loopback()),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), ip.is_loopback()),
            None => return Err(bad("SMTP_URL", shape)),
        };
        let may_be_clear = matches!(tls, SmtpTls::None | SmtpTls::Opportunistic);
        if parsed.password().is_some() && may_be_clear && !loopback {
            return Err(bad(
                "SMTP_URL",
                "carries a password over a connection that may be in clear; use ?tls=required or smtps://",
            ));
        }
        let roots = ca_file.map(|path| read_roots(path, tls)).transpose()?;
        Ok(SmtpConfig {
            url: SecretString::from(text.to_owned()),
            host,
            tls,
            from: notify::parse_email(from).map_err(|p| bad("SMTP_FROM", p))?,
            roots,
        })
    }

    /// The URL in lettre's form; it may hold a password.
    pub fn url(&self) -> &SecretString {
        &self.url
    }

    /// The host name (or address) the server's certificate must be for.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn tls(&self) -> SmtpTls {
        self.tls
    }

    /// The sender address.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// `SMTP_CA_FILE`'s certificates, trusted instead of the public roots; `None`: the public roots.
    pub fn roots(&self) -> Option<&[CertificateDer<'static>]> {
        self.roots.as_deref()
    }
}

/// The certificates of `SMTP_CA_FILE` (PEM, one or more), for a URL that uses TLS.
fn read_roots(path: &Path, tls: SmtpTls) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    if tls == SmtpTls::None {
        return Err(bad(
            "SMTP_CA_FILE",
            "is set but SMTP_URL uses no TLS (add ?tls=required or use smtps://)",
        ));
    }
    let shown = path.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad("SMTP_CA_FILE", format!("{shown} cannot be read ({e})")))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("SMTP_CA_FILE", format!("{shown} is not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(bad("SMTP_CA_FILE", format!("{shown} holds no certificate")));
    }
    Ok(certs)
}

/// `SMTP_URL`, `SMTP_FROM`, `SMTP_CA_FILE`: email is off without the URL.
pub(crate) fn smtp(get: Get) -> Result<Option<SmtpConfig>, ConfigError> {
    let ca_file = get("SMTP_CA_FILE").map(|p| PathBuf::from(p.trim()));
    match (get("SMTP_URL"), get("SMTP_FROM")) {
        (None, None) if ca_file.is_some() => Err(bad("SMTP_URL", "is required when SMTP_CA_FILE is set")),
        (None, None) => Ok(None),
        (Some(_), None) => Err(bad("SMTP_FROM", "is required when SMTP_URL is set")),
        (None, Some(_)) => Err(bad("SMTP_URL", "is required when SMTP_FROM is set")),
        (Some(url), Some(from)) => SmtpConfig::parse(&url, &from, ca_file.as_deref()).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<SmtpConfig, ConfigError> {
        SmtpConfig::parse(url, "a@b.c", None)
    }

    #[test]
    fn schemes_and_tls_modes_are_read_and_anything_else_refused() {
        assert_eq!(parse("smtp://127.0.0.1:25").unwrap().tls(), SmtpTls::None);
        assert_eq!(
            parse("smtp://mx.example.com?tls=required").unwrap().tls(),
            SmtpTls::Required
        );
        assert_eq!(
            parse("smtp://mx.example.com?tls=opportunistic").unwrap().tls(),
            SmtpTls::Opportunistic
        );
        assert_eq!(parse("smtps://mx.example.com").unwrap().tls(), SmtpTls::Wrapper);
        assert_eq!(parse("smtp://[::1]:25").unwrap().host(), "::1");
        for wrong in [
            "http://x",
            "smtp://x?tls=yes",
            "smtp://x?tls=Required",
            "smtps://x?tls=opportunistic",
            "smtp:///nohost",
        ] {
            assert_eq!(parse(wrong).unwrap_err().var, "SMTP_URL", "{wrong}");
        }
    }

    #[test]
    fn a_password_never_goes_where_it_may_be_in_clear_and_is_never_shown() {
        for clear in [
            "smtp://u:pw-secret@mx.example.com:25",
            "smtp://u:pw-secret@mx.example.com?tls=opportunistic",
        ] {
            let e = parse(clear).unwrap_err();
            assert_eq!(e.var, "SMTP_URL");
            assert!(!e.to_string().contains("pw-secret"), "{e}");
        }
        assert!(parse("smtp://u:pw@127.0.0.1:25").is_ok());
        assert!(parse("smtp://u:pw@mx.example.com?tls=required").is_ok());
        assert!(parse("smtps://u:pw@mx.example.com").is_ok());
        let debug = format!("{:?}", parse("smtps://u:pw-secret@mx.example.com").unwrap());
        assert!(!debug.contains("pw-secret"), "{debug}");
    }

    #[test]
    fn a_ca_file_must_hold_certificates_and_be_used_by_tls() {
        let dir = std::env::temp_dir().join(format!("humbex-smtp-ca-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let with = |url: &str, file: &Path| SmtpConfig::parse(url, "a@b.c", Some(file));
        let e = with("smtp://x?tls=required", &empty).unwrap_err();
        assert_eq!(e.var, "SMTP_CA_FILE");
        assert!(e.problem.contains("no certificate"), "{e}");
        let e = with("smtp://x?tls=required", &dir.join("missing.pem")).unwrap_err();
        assert!(e.problem.contains("cannot be read"), "{e}");
        let e = with("smtp://127.0.0.1:25", &empty).unwrap_err();
        assert!(e.problem.contains("uses no TLS"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        let get = |n: &str| (n == "SMTP_CA_FILE").then(|| "/x.pem".to_owned());
        assert_eq!(smtp(&get).unwrap_err().var, "SMTP_URL");
    }
}
