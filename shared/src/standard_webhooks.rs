//! The one home of the Standard Webhooks HMAC rule: HMAC-SHA256 over `id.timestamp.body`, sent as
//! `v1,<base64>`. ingest verifies incoming webhooks with it, the notification sender signs outgoing
//! ones with it (docs/notifications.md#the-json-webhook).

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub type HmacSha256 = Hmac<Sha256>;

/// A MAC keyed with `key` (any length).
pub fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// The MAC over the signed content `id.timestamp.body`, ready to finalize or to verify against.
pub fn signed_content(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut m = mac(key);
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// A `webhook-signature` entry: `v1,<base64 of the MAC>`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let m = signed_content(key, id, &timestamp.to_string(), body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    )
}
