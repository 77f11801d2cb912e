//! Property tests (docs/security.md#property-tests-and-fuzzing): the signal parser and both
//! signature verifiers never panic on arbitrary input, and every one-bit change of a signed request
//! is refused.

use chrono::{TimeZone, Utc};
use humbex_ingest::webhook::body::parse_signal;
use humbex_ingest::webhook::signature::{
    StandardHeaders, sign_standard_webhooks, sign_x_signature, verify_standard_webhooks, verify_x_signature,
};
use humbex_shared::domain::{Symbol, SymbolPolicy};
use proptest::prelude::*;
use proptest::sample::Index;

const KEY: &[u8] = b"property-test-secret-0123456789";
const NOW: i64 = 1_800_000_000;

fn flip_bit(text: &[u8], at: Index) -> Vec<u8> {
    let mut out = text.to_vec();
    let bit = at.index(out.len() * 8);
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

proptest! {
    #[test]
    fn signal_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let symbols = SymbolPolicy::Listed(vec![Symbol::parse("AVAXUSDT").unwrap()]);
        let _ = parse_signal(&bytes, &symbols, Utc.timestamp_opt(NOW, 0).unwrap());
    }

    #[test]
    fn signal_parser_never_panics_on_json_shaped_text(
        action in "\\PC{0,12}", symbol in "\\PC{0,24}", qty in "\\PC{0,40}", ts in "\\PC{0,30}",
    ) {
        let symbols = SymbolPolicy::Listed(vec![Symbol::parse("AVAXUSDT").unwrap()]);
        let body = serde_json::json!({
            "token": "hbxu_x", "action": action, "symbol": symbol, "quantity": qty, "timestamp": ts,
        });
        let _ = parse_signal(body.to_string().as_bytes(), &symbols, Utc.timestamp_opt(NOW, 0).unwrap());
    }

    #[test]
    fn signal_parser_never_panics_on_v2_fields(
        target in "\\PC{0,20}", kind in "\\PC{0,16}", price in "\\PC{0,20}", tp in "\\PC{0,20}",
        secs in "\\PC{0,12}", use_objects in any::<bool>(),
    ) {
        let symbols = SymbolPolicy::Listed(vec![Symbol::parse("AVAXUSDT").unwrap()]);
        let level = |text: &str| if use_objects { serde_json::json!({ "percent": text }) } else { serde_json::json!(text) };
        let body = serde_json::json!({
            "token": "hbxu_x", "action": "buy", "symbol": "AVAXUSDT", "target_position": target,
            "quantity_type": kind, "order_type": kind, "limit_price": price, "time_in_force": kind,
            "cancel_after_secs": secs, "trigger_price": price, "take_profit": level(&tp),
            "stop_loss": level(&price), "trailing_stop": { "distance": tp, "activation_price": price },
            "break_even": { "trigger_percent": tp, "offset_percent": price }, "leverage": tp,
            "margin_mode": kind, "max_lag_secs": secs,
        });
        let _ = parse_signal(body.to_string().as_bytes(), &symbols, Utc.timestamp_opt(NOW, 0).unwrap());
    }

    #[test]
    fn verifiers_never_panic_on_arbitrary_headers(
        body in proptest::collection::vec(any::<u8>(), 0..64),
        sig in "\\PC{0,120}", id in "\\PC{0,80}", ts in "\\PC{0,30}",
    ) {
        let _ = verify_x_signature(KEY, &body, &sig);
        let headers = StandardHeaders { id: Some(&id), timestamp: Some(&ts), signature: Some(&sig) };
        let _ = verify_standard_webhooks(KEY, headers, &body, NOW);
    }

    #[test]
    fn every_bit_flip_of_an_x_signature_request_is_refused(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        at in any::<Index>(),
    ) {
        let sig = sign_x_signature(KEY, &body);
        prop_assert!(verify_x_signature(KEY, &body, &sig).is_ok());
        prop_assert!(verify_x_signature(KEY, &flip_bit(&body, at), &sig).is_err());
        // A flipped signature byte may stop being UTF-8; such a header cannot even arrive as text.
        // Flipping bit 5 of a hex letter only changes its case: hex is case-insensitive, so that is
        // the same MAC (not a forgery), and clients that print upper-case hex keep working.
        if let Ok(bad_sig) = String::from_utf8(flip_bit(sig.as_bytes(), at))
            && !bad_sig.eq_ignore_ascii_case(&sig)
        {
            prop_assert!(verify_x_signature(KEY, &body, &bad_sig).is_err(), "{} accepted", bad_sig);
        }
    }

    #[test]
    fn every_bit_flip_of_a_standard_webhooks_request_is_refused(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        id in "[A-Za-z0-9_-]{1,64}",
        skew in -299i64..299,
        part in 0usize..4,
        at in any::<Index>(),
    ) {
        let ts = (NOW + skew).to_string();
        let sig = sign_standard_webhooks(KEY, &id, NOW + skew, &body);
        let ok = StandardHeaders { id: Some(&id), timestamp: Some(&ts), signature: Some(&sig) };
        prop_assert!(verify_standard_webhooks(KEY, ok, &body, NOW).is_ok());
        let (mut id2, mut ts2, mut sig2, mut body2) =
            (id.clone().into_bytes(), ts.clone().into_bytes(), sig.clone().into_bytes(), body.clone());
        match part {
            0 => body2 = flip_bit(&body, at),
            1 => id2 = flip_bit(id.as_bytes(), at),
            2 => ts2 = flip_bit(ts.as_bytes(), at),
            _ => sig2 = flip_bit(sig.as_bytes(), at),
        }
        let (Ok(id2), Ok(ts2), Ok(sig2)) = (String::from_utf8(id2), String::from_utf8(ts2), String::from_utf8(sig2)) else {
            return Ok(()); // not a header value at all
        };
        let bad = StandardHeaders { id: Some(&id2), timestamp: Some(&ts2), signature: Some(&sig2) };
        prop_assert!(verify_standard_webhooks(KEY, bad, &body2, NOW).is_err(),
            "accepted: part {} id {} ts {} sig {}", part, id2, ts2, sig2);
    }
}
