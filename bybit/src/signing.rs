//! Bybit V5 request signing: REST HMAC-SHA256 signatures and the private WebSocket auth signature,
//! plus [`Credentials`], which owns an API key pair and never prints its secret.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// One Bybit API key and its secret.
///
/// The HMAC key schedule is computed once here and cloned per signature, so signing on the hot path
/// does no key setup. The keyed HMAC state is as sensitive as the secret, so neither is ever
/// printed: `Debug` shows only the API key, masked (a full key in a log is half a credential).
#[derive(Clone)]
pub struct Credentials {
    api_key: secrecy::zeroize::Zeroizing<String>,
    // Kept so the secret can be handed over (e.g. re-encrypted) without the caller keeping a copy.
    secret: SecretString,
    keyed_mac: HmacSha256,
}

impl Credentials {
    pub fn new(api_key: impl Into<String>, api_secret: SecretString) -> Credentials {
        let keyed_mac = HmacSha256::new_from_slice(api_secret.expose_secret().as_bytes())
            .expect("HMAC-SHA256 accepts keys of any length");
        Credentials {
            api_key: secrecy::zeroize::Zeroizing::new(api_key.into()),
            secret: api_secret,
            keyed_mac,
        }
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The key as logs and Debug show it: enough to recognise, too little to use.
    pub fn masked_key(&self) -> String {
        mask_key(&self.api_key)
    }

    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// `hex(HMAC_SHA256(secret, timestamp + api_key + recv_window + payload))`; `payload` is the
    /// query string exactly as sent (no `?`) or the JSON body exactly as sent.
    pub fn sign_rest(&self, timestamp_ms: &str, recv_window_ms: &str, payload: &str) -> String {
        let mut mac = self.keyed_mac.clone();
        for part in [timestamp_ms, self.api_key.as_str(), recv_window_ms, payload] {
            mac.update(part.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// `hex(HMAC_SHA256(secret, "GET/realtime" + expires))` for the private WebSocket `auth` op.
    pub fn sign_ws_auth(&self, expires_ms: i64) -> String {
        let mut mac = self.keyed_mac.clone();
        mac.update(b"GET/realtime");
        mac.update(expires_ms.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// An API key as logs, Debug and the admin API show it: enough to recognise, too little to use
/// (the first and last 3 characters; keys of 8 or fewer show nothing).
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "****".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}****{tail}")
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &mask_key(&self.api_key))
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Inputs and expected signatures from docs/bybit.md#test-vectors.
    const KEY: &str = "TESTAPIKEY0000000001";
    const SECRET: &str = "TESTSECRETabcdefghijklmnopqrstuvwxyz0123";
    const TS: &str = "1700000000000";
    const RECV: &str = "5000";

    fn creds() -> Credentials {
        Credentials::new(KEY, SecretString::from(SECRET))
    }

    #[test]
    fn rest_signatures_match_the_reference_vectors() {
        let cases = [
            (
                "TV1",
                "category=linear&symbol=AVAXUSDT",
                "72352c461339018165a4a23d070ceee0b8c52ea689b90aed4983585b25ce8391",
            ),
            (
                "TV2",
                r#"{"category":"linear","symbol":"AVAXUSDT","side":"Buy","orderType":"Market","qty":"1","orderLinkId":"bot-0001"}"#,
                "f8cada5ff12260e95a4d03877ec43e709c9e76cd56f99bb9beb5e0ddf7fd5fd8",
            ),
            (
                "TV4",
                "",
                "6e5bd6325dbc76ae643b5323ba766d6a6afd31cbea445a7bdab8782d9684f68b",
            ),
            (
                "TV5",
                r#"{"category": "linear", "symbol": "AVAXUSDT", "side": "Buy", "orderType": "Market", "qty": "1", "orderLinkId": "bot-0001"}"#,
                "31297d67fca075933104b5a930367f4124175e00053bc40cb19a060bf83e20c1",
            ),
            (
                "TV6",
                "symbol=AVAXUSDT&category=linear",
                "fa3ac643604c03537fb21871de03d2738571463dc2b08ec230fb51a35d449499",
            ),
            (
                "TV7",
                "accountType=UNIFIED",
                "41df8da302ae8d5fde73f74391ee0555bec69c312e572e12f78e40376c2cf059",
            ),
        ];
        let creds = creds();
        for (name, payload, expected) in cases {
            assert_eq!(creds.sign_rest(TS, RECV, payload), expected, "{name}");
        }
    }

    #[test]
    fn ws_auth_signature_matches_tv3() {
        assert_eq!(
            creds().sign_ws_auth(1_700_000_010_000),
            "dcfeb5084d07b49b0bffa5dfd92e976bb18c684be18efb0c87a3167191e51d7c"
        );
    }

    #[test]
    fn nautilus_cross_check_vectors() {
        let creds = Credentials::new("test_api_key", SecretString::from("test_secret"));
        assert_eq!(
            creds.sign_rest(TS, RECV, "category=linear&symbol=BTCUSDT"),
            "fd4f31228a46109dc6673062328693696df9a96c7ff04e6491a45e7f63a0fdd7"
        );
        assert_eq!(
            creds.sign_ws_auth(1_700_000_000_000),
            "bacffe7500499eb829bb58c45d36d1b3e5ac67c14eaeba91df5e99ccee013925"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", creds());
        assert!(
            !shown.contains(KEY),
            "the full API key is not shown either: {shown}"
        );
        assert!(!shown.contains(SECRET));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn signing_is_repeatable_with_the_cached_key() {
        let creds = creds();
        let first = creds.sign_rest(TS, RECV, "a=1");
        assert_eq!(first, creds.sign_rest(TS, RECV, "a=1"));
    }
}
