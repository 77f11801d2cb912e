//! Process set-up before any role runs: logging (pretty or JSON lines, filtered by RUST_LOG,
//! coloured only on a terminal), the panic hook, no core dumps, and the TLS crypto provider.

use std::io::IsTerminal;

pub use humbex_bybit::ensure_crypto_provider;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. LOG_FORMAT is read here, before the rest of the configuration,
/// so that configuration errors are already logged in the chosen format.
pub fn init() -> Result<(), String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = std::env::var("LOG_FORMAT").unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
    match format.trim() {
        "" | "pretty" => builder.init(),
        "json" => builder.json().flatten_event(true).with_current_span(true).init(),
        other => return Err(format!("LOG_FORMAT: {other:?} is not pretty or json")),
    }
    Ok(())
}

/// Harden the process once logging works: report panics through tracing, refuse core dumps (one
/// would hold decrypted exchange keys: docs/security.md#secrets-in-memory-and-core-dumps) and pin
/// rustls to ring before any TLS client exists (docs/design.md#rustls-uses-ring).
pub fn harden() {
    humbex_shared::hardening::install_panic_hook();
    if let Err(e) = humbex_shared::hardening::disable_core_dumps() {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    ensure_crypto_provider();
}

/// Colour codes are for people at a terminal: in a file or a pipe they are noise a log reader must
/// strip. NO_COLOR (any non-empty value, see no-color.org) turns them off even there.
fn colour(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
