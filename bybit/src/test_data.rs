//! The one loader of the recorded Bybit V5 payloads in `test_data/` (see its README), for this
//! crate's unit and integration tests. The fuzz target's seeds are the same files.

/// The text of `test_data/<name>`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
