//! Bybit V5 signatures: HMAC-SHA256 for REST requests and the private WebSocket auth op.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length")
}

/// `hex(HMAC_SHA256(secret, timestamp + api_key + recv_window + payload))`, payload being the raw
/// query string (no `?`) or the raw JSON body.
pub fn sign_rest(secret: &str, timestamp: &str, api_key: &str, recv_window: &str, payload: &str) -> String {
    let mut m = mac(secret);
    for part in [timestamp, api_key, recv_window, payload] {
        m.update(part.as_bytes());
    }
    hex::encode(m.finalize().into_bytes())
}

/// Constant-time check of a REST signature given as lowercase or uppercase hex.
pub fn verify_rest(
    secret: &str,
    timestamp: &str,
    api_key: &str,
    recv_window: &str,
    payload: &[u8],
    signature_hex: &str,
) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let mut m = mac(secret);
    for part in [
        timestamp.as_bytes(),
        api_key.as_bytes(),
        recv_window.as_bytes(),
        payload,
    ] {
        m.update(part);
    }
    m.verify_slice(&signature).is_ok()
}

/// The private WebSocket auth signature: `hex(HMAC_SHA256(secret, "GET/realtime" + expires))`.
pub fn sign_ws_auth(secret: &str, expires_ms: i64) -> String {
    let mut m = mac(secret);
    m.update(format!("GET/realtime{expires_ms}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

pub fn verify_ws_auth(secret: &str, expires_ms: i64, signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(format!("GET/realtime{expires_ms}").as_bytes());
    m.verify_slice(&signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "TESTAPIKEY0000000001";
    const SECRET: &str = "TESTSECRETabcdefghijklmnopqrstuvwxyz0123";
    const TS: &str = "1700000000000";

    // Test vectors from docs/bybit.md#test-vectors.
    #[test]
    fn rest_vectors() {
        let cases = [
            (
                "category=linear&symbol=AVAXUSDT",
                "72352c461339018165a4a23d070ceee0b8c52ea689b90aed4983585b25ce8391",
            ),
            (
                r#"{"category":"linear","symbol":"AVAXUSDT","side":"Buy","orderType":"Market","qty":"1","orderLinkId":"bot-0001"}"#,
                "f8cada5ff12260e95a4d03877ec43e709c9e76cd56f99bb9beb5e0ddf7fd5fd8",
            ),
            (
                "",
                "6e5bd6325dbc76ae643b5323ba766d6a6afd31cbea445a7bdab8782d9684f68b",
            ),
            (
                r#"{"category": "linear", "symbol": "AVAXUSDT", "side": "Buy", "orderType": "Market", "qty": "1", "orderLinkId": "bot-0001"}"#,
                "31297d67fca075933104b5a930367f4124175e00053bc40cb19a060bf83e20c1",
            ),
            (
                "symbol=AVAXUSDT&category=linear",
                "fa3ac643604c03537fb21871de03d2738571463dc2b08ec230fb51a35d449499",
            ),
            (
                "accountType=UNIFIED",
                "41df8da302ae8d5fde73f74391ee0555bec69c312e572e12f78e40376c2cf059",
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(
                sign_rest(SECRET, TS, KEY, "5000", payload),
                expected,
                "payload {payload}"
            );
            assert!(verify_rest(SECRET, TS, KEY, "5000", payload.as_bytes(), expected));
            assert!(!verify_rest(
                SECRET,
                TS,
                KEY,
                "5001",
                payload.as_bytes(),
                expected
            ));
        }
    }

    #[test]
    fn ws_vector() {
        let sig = sign_ws_auth(SECRET, 1_700_000_010_000);
        assert_eq!(
            sig,
            "dcfeb5084d07b49b0bffa5dfd92e976bb18c684be18efb0c87a3167191e51d7c"
        );
        assert!(verify_ws_auth(SECRET, 1_700_000_010_000, &sig));
        assert!(!verify_ws_auth(SECRET, 1_700_000_010_001, &sig));
        assert!(!verify_ws_auth(SECRET, 1_700_000_010_000, "zz"));
    }
}
