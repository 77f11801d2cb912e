//! The Bybit client's one TLS trust store: REST and the private WebSocket verify the exchange's
//! certificates against the same roots (Mozilla's, compiled in), with ring as the crypto provider.

use std::sync::{Arc, LazyLock};

use rustls::{ClientConfig, RootCertStore};

/// Built once: both transports share this very store, so they can never disagree on whom to trust.
static TRUST_STORE: LazyLock<Arc<RootCertStore>> = LazyLock::new(|| {
    Arc::new(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
});

pub fn trust_store() -> Arc<RootCertStore> {
    Arc::clone(&TRUST_STORE)
}

fn client_config(alpn: &[&[u8]]) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(trust_store())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// For REST (and the notification sender's HTTPS): HTTP/2 when the server offers it.
pub fn rest_config() -> ClientConfig {
    client_config(&[b"h2", b"http/1.1"])
}

/// For the WebSocket: HTTP/1.1 only, since the upgrade handshake does not exist in HTTP/2.
pub(crate) fn websocket_config() -> Arc<ClientConfig> {
    Arc::new(client_config(&[b"http/1.1"]))
}
