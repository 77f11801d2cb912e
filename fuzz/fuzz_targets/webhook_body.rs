//! The signal-body parser on arbitrary bytes: an error is fine, a panic is not.
#![no_main]

use std::sync::LazyLock;

use humbex_shared::domain::{Symbol, SymbolPolicy};
use libfuzzer_sys::fuzz_target;

static SYMBOLS: LazyLock<SymbolPolicy> = LazyLock::new(|| {
    SymbolPolicy::Listed(["AVAXUSDT", "BTCUSDT"].iter().map(|s| Symbol::parse(s).unwrap()).collect())
});

fuzz_target!(|data: &[u8]| {
    let _ = humbex_ingest::webhook::body::parse_signal(data, &SYMBOLS, chrono::Utc::now());
});
