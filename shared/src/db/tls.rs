//! TLS for every PostgreSQL connection: the rustls client each `sslmode` needs (what it verifies),
//! and the connection settings (`PgConfig`) that carry it, so no connection can be made without
//! it. libpq's rules are in docs/deployment.md#postgresql-over-tls.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls_files;
use crate::config::libpq::{RootCert, SslMode, TlsParams};

/// What a TLS connection checks about the server, after libpq's rules are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypt only (prefer, require without a root certificate).
    Nothing,
    /// The certificate chains to the root certificate; any host name (verify-ca, and require
    /// with a root certificate, as libpq does).
    Chain,
    /// The chain and the host name (verify-full).
    ChainAndHost,
}

/// The TLS side of a database URL: the mode as given, what it verifies, whether it presents a
/// client certificate, and the rustls client.
#[derive(Clone)]
pub struct DbTls {
    pub mode: SslMode,
    pub verify: Verify,
    /// The client certificate sent when the server asks (`sslcert`/`sslkey`, or libpq's default
    /// pair), if any.
    pub client_cert: bool,
    connector: MakeRustlsConnect,
}

impl std::fmt::Debug for DbTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTls")
            .field("mode", &self.mode)
            .field("verify", &self.verify)
            .field("client_cert", &self.client_cert)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    // The ring provider, named explicitly: no dependence on a process-wide default being installed
    // first (docs/design.md#rustls-uses-ring).
    Arc::new(rustls::crypto::ring::default_provider())
}

impl DbTls {
    /// The rustls client for these parameters; an unreadable root certificate, client
    /// certificate or key is an error here, at start-up, rather than at the first connection.
    pub fn new(params: &TlsParams) -> Result<Self, String> {
        let roots = match &params.root_cert {
            RootCert::File(file) => Some(tls_files::roots(file)?),
            RootCert::System => Some(tls_files::system_roots()?),
            RootCert::Default => match tls_files::default_root() {
                Some(file) if params.mode != SslMode::Disable && params.mode != SslMode::Prefer => {
                    Some(tls_files::roots(&file)?)
                }
                _ => None,
            },
        };
        // Under prefer the server may still ask for a certificate, so only disable skips it.
        let identity = match params.mode {
            SslMode::Disable => None,
            _ => tls_files::client_identity(&params.client_cert)?,
        };
        let verify = match (params.mode, &roots) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Verify::Nothing,
            // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
            (SslMode::Require | SslMode::VerifyCa, Some(_)) => Verify::Chain,
            (SslMode::VerifyFull, Some(_)) => Verify::ChainAndHost,
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(format!(
                    "has sslmode={} but no root certificate: set sslrootcert=<file> (or \
                     PGSSLROOTCERT, or put it in ~/.postgresql/root.crt)",
                    params.mode
                ));
            }
        };
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up failed ({e})"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match roots {
            None => Arc::new(EncryptOnly(provider.signature_verification_algorithms)),
            Some(roots) => {
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("TLS set-up failed ({e})"))?;
                match verify {
                    Verify::ChainAndHost => webpki,
                    _ => Arc::new(ChainOnly(webpki)),
                }
            }
        };
        let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
        let client_cert = identity.is_some();
        let config = match identity {
            None => builder.with_no_client_auth(),
            // rustls checks here that the key is one it can sign with and belongs to the
            // certificate.
            Some(((chain, key), files)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{files} cannot be used as a client certificate ({e})"))?,
        };
        Ok(DbTls {
            mode: params.mode,
            verify,
            client_cert,
            connector: MakeRustlsConnect::new(config),
        })
    }
}

/// prefer and require: the handshake is checked (the server proves it holds the key it
/// presents), the certificate is not.
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// verify-ca: the full WebPKI check, but a certificate for another name is accepted. rustls
/// checks the chain before the name (WebPkiServerVerifier::verify_server_cert), so a name error
/// means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The TLS alert the server sent, if that is what ended the connection (rustls's error sits
/// inside an `io::Error`, which does not expose it as a `source`).
fn alert_received(e: &tokio_postgres::Error) -> Option<rustls::AlertDescription> {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let inner = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .or_else(|| c.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::AlertReceived(alert)) = inner {
            return Some(*alert);
        }
        cause = c.source();
    }
    None
}

fn is_certificate_alert(alert: rustls::AlertDescription) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        alert,
        A::UnknownCA
            | A::BadCertificate
            | A::CertificateRequired
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::AccessDenied
    )
}

/// The stream of a connection (TLS or not, as negotiated).
pub type PgStream = <MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::Stream;
/// A connection to drive (e.g. with `poll_message` for LISTEN).
pub type PgConnection = tokio_postgres::Connection<tokio_postgres::Socket, PgStream>;

/// Connection settings with their TLS: the only way this code base opens a connection. It
/// dereferences to tokio-postgres's `Config` for the usual settings (database, timeouts).
#[derive(Clone, Debug)]
pub struct PgConfig {
    config: tokio_postgres::Config,
    tls: DbTls,
    /// The variable the settings came from, for error messages.
    var: &'static str,
}

impl PgConfig {
    pub fn new(config: tokio_postgres::Config, tls: DbTls, var: &'static str) -> Self {
        PgConfig { config, tls, var }
    }

    pub fn tls(&self) -> &DbTls {
        &self.tls
    }

    /// Connect; the caller drives the connection. TLS errors name the variable and the mode.
    pub async fn connect(&self) -> Result<(tokio_postgres::Client, PgConnection), ConnectError> {
        self.config
            .connect(self.tls.connector.clone())
            .await
            .map_err(|e| ConnectError::classify(e, self.var, &self.tls))
    }

    /// tokio-postgres's config and the TLS connector, for pools that connect by themselves.
    pub fn parts(&self) -> (tokio_postgres::Config, MakeRustlsConnect) {
        (self.config.clone(), self.tls.connector.clone())
    }
}

/// A URL or key=value string, as DATABASE_URL is read (for tests and tools).
impl std::str::FromStr for PgConfig {
    type Err = crate::config::ConfigError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(crate::config::DatabaseUrl::parse(text)?.pg_config())
    }
}

impl Deref for PgConfig {
    type Target = tokio_postgres::Config;
    fn deref(&self) -> &Self::Target {
        &self.config
    }
}

impl DerefMut for PgConfig {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.config
    }
}

/// Why a connection could not be made, by what the operator does next.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TLS could not be set up as the URL asks (the server refuses TLS, its certificate fails
    /// the check, or it refuses the client certificate or its absence): a configuration problem,
    /// not an outage.
    #[error("{var} (sslmode={mode}): TLS with the server failed: {detail}")]
    Tls {
        var: &'static str,
        mode: SslMode,
        /// The causes (tokio-postgres's own message says only "error performing TLS handshake").
        detail: String,
        /// tokio-postgres's error itself, for callers that need one (not a `source`: `detail`
        /// already says it).
        error: tokio_postgres::Error,
    },
    /// Anything else (unreachable, refused, authentication, a database error).
    #[error(transparent)]
    Other(#[from] tokio_postgres::Error),
}

impl ConnectError {
    fn classify(e: tokio_postgres::Error, var: &'static str, tls: &DbTls) -> Self {
        // tokio-postgres does not expose its error kinds; a TLS failure (including "server does
        // not support TLS" under require) is the one whose message starts this way.
        let handshake = e.to_string().starts_with("error performing TLS handshake");
        // Under TLS 1.3 the server checks a client certificate after the client has finished its
        // side of the handshake: a refusal arrives as an alert on the first read.
        let alert = alert_received(&e);
        // pg_hba.conf's `cert` method or `clientcert=`: refused for the certificate (or for
        // sending none).
        let refused = e.as_db_error().filter(|db| {
            *db.code() == tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && db.message().contains("certificate")
        });
        if !handshake && alert.is_none() && refused.is_none() {
            return ConnectError::Other(e);
        }
        let mut detail = match refused {
            Some(db) => format!("the server says: {}", db.message()),
            None => {
                let mut causes = Vec::new();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    causes.push(c.to_string());
                    cause = c.source();
                }
                if causes.is_empty() {
                    "the handshake failed".to_owned()
                } else {
                    causes.join(": ")
                }
            }
        };
        let about_certificate = refused.is_some() || alert.is_some_and(is_certificate_alert);
        if about_certificate {
            detail.push_str(if tls.client_cert {
                " (the server refused this client certificate)"
            } else {
                " (no client certificate is set: sslcert and sslkey, or PGSSLCERT and PGSSLKEY)"
            });
        }
        ConnectError::Tls {
            var,
            mode: tls.mode,
            detail,
            error: e,
        }
    }

    /// The PostgreSQL error behind it, if any (e.g. a wrong password).
    pub fn as_db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        match self {
            ConnectError::Tls { .. } => None,
            ConnectError::Other(e) => e.as_db_error(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, ConnectError::Tls { .. })
    }

    /// tokio-postgres's error, whatever the class.
    pub fn into_pg_error(self) -> tokio_postgres::Error {
        match self {
            ConnectError::Tls { error, .. } | ConnectError::Other(error) => error,
        }
    }
}
