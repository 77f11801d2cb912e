//! Process set-up before any role runs: logging (pretty or JSON lines, filtered by RUST_LOG), the
//! panic hook, no core dumps, and the TLS crypto provider.

pub use humbex_bybit::ensure_crypto_provider;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. LOG_FORMAT is read here, before the rest of the configuration,
/// so that configuration errors are already logged in the chosen format.
pub fn init() -> Result<(), String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = std::env::var("LOG_FORMAT").unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format.trim() {
        "" | "pretty" => builder.init(),
        "json" => builder.json().flatten_event(true).with_current_span(true).init(),
        other => return Err(format!("LOG_FORMAT: {other:?} is not pretty or json")),
    }
    Ok(())
}

/// Harden the process once logging works: report panics through tracing, refuse core dumps (one
/// would hold decrypted exchange keys) and pin rustls to ring before any TLS client exists.
pub fn harden() {
    humbex_shared::hardening::install_panic_hook();
    if let Err(e) = humbex_shared::hardening::disable_core_dumps() {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    ensure_crypto_provider();
}
