//! Logging set-up: pretty or JSON lines, filtered by RUST_LOG.

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
