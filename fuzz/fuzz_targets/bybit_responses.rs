//! Bybit's REST envelope and private-stream frames parsed from arbitrary text, and every result
//! parser on whatever JSON that yields: errors only, never a panic.
#![no_main]

use humbex_bybit::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse::parse_private_frame(text);
    let _ = parse::parse_envelope(text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = parse::parse_server_time(value.clone());
        let _ = parse::parse_instruments(value.clone());
        let _ = parse::parse_tickers(value.clone());
        let _ = parse::parse_order_ack(value.clone());
        let _ = parse::parse_orders(value.clone());
        let _ = parse::parse_executions(value.clone());
        let _ = parse::parse_positions(value.clone());
        let _ = parse::parse_wallet_balance(value.clone());
        let _ = parse::parse_cancel_all(value.clone());
        let _ = parse::parse_account_info(value.clone());
        let _ = parse::parse_api_key_info(value);
    }
});
