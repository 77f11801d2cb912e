//! Signature checks on the raw body bytes, before any parsing or database access.
//!
//! Two schemes: the original's `X-Signature` (hex HMAC-SHA256 of the body, exactly what
//! `openssl dgst -sha256 -hmac "$TRADINGVIEW_SECRET"` prints) and Standard Webhooks
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature` over `id.timestamp.body`, ±5 minutes).
//! Every comparison goes through `Mac::verify_slice`, which is constant-time.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a Standard Webhooks timestamp, or a signal's own timestamp, may be from our clock, in
/// either direction, before it counts as a replay.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused. The distinction goes to the log; the client sees a generic 401
/// (or a 400 for a malformed header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Signature or webhook-signature header")]
    Missing,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("header {0} is missing")]
    MissingHeader(&'static str),
    #[error("header {0} is malformed")]
    MalformedHeader(&'static str),
    #[error("webhook-timestamp is more than 5 minutes from the server clock")]
    OutsideWindow,
}

impl SignatureError {
    /// Malformed headers are the client's syntax error (400); everything else is 401.
    pub fn is_malformed(&self) -> bool {
        matches!(self, SignatureError::MalformedHeader(_))
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// Check `X-Signature: <hex>` (an optional `sha256=` prefix, as GitHub writes it, is accepted).
pub fn verify_x_signature(key: &[u8], body: &[u8], header: &str) -> Result<(), SignatureError> {
    let hex_text = header.trim();
    let hex_text = hex_text.strip_prefix("sha256=").unwrap_or(hex_text);
    let expected = hex::decode(hex_text).map_err(|_| SignatureError::Mismatch)?;
    let mut m = mac(key);
    m.update(body);
    m.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// The three Standard Webhooks headers as received.
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Verify a Standard Webhooks request at time `now` (unix seconds). Returns the webhook id, which
/// the signature covers and which then serves as the idempotency key.
pub fn verify_standard_webhooks<'a>(
    key: &[u8],
    headers: StandardHeaders<'a>,
    body: &[u8],
    now: i64,
) -> Result<&'a str, SignatureError> {
    let id = headers.id.ok_or(SignatureError::MissingHeader("webhook-id"))?;
    let ts_text = headers
        .timestamp
        .ok_or(SignatureError::MissingHeader("webhook-timestamp"))?;
    let signatures = headers
        .signature
        .ok_or(SignatureError::MissingHeader("webhook-signature"))?;

    // The spec asks that ids never contain '.', which would make `id.ts.body` ambiguous.
    let id_ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !id_ok {
        return Err(SignatureError::MalformedHeader("webhook-id"));
    }
    let ts_ok = (1..=12).contains(&ts_text.len()) && ts_text.bytes().all(|b| b.is_ascii_digit());
    if !ts_ok {
        return Err(SignatureError::MalformedHeader("webhook-timestamp"));
    }
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| SignatureError::MalformedHeader("webhook-timestamp"))?;
    if (now - ts).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::OutsideWindow);
    }

    let signed = humbex_shared::standard_webhooks::signed_content(key, id, ts_text, body);

    // Any one valid v1 entry suffices (rotation sends several); other versions are ignored.
    for entry in signatures.split(' ').filter(|e| !e.is_empty()) {
        let Some(b64) = entry.strip_prefix("v1,") else {
            continue;
        };
        let Ok(candidate) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        if signed.clone().verify_slice(&candidate).is_ok() {
            return Ok(id);
        }
    }
    Err(SignatureError::Mismatch)
}

/// Hex HMAC-SHA256 of `body`: what clients send in X-Signature.
pub fn sign_x_signature(key: &[u8], body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// A Standard Webhooks `v1,<base64>` signature entry (the rule lives in
/// `humbex_shared::standard_webhooks`, which the notification sender signs with too).
pub fn sign_standard_webhooks(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    humbex_shared::standard_webhooks::sign(key, id, timestamp, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use humbex_shared::config::WebhookSecret;

    fn sw_key(secret: &str) -> Vec<u8> {
        WebhookSecret::parse(secret)
            .unwrap()
            .standard_webhooks_key()
            .to_vec()
    }

    const SW1: (&str, &str, i64, &str, &str) = (
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1649367553,
        r#"{"email":"test@example.com","username":"test_user"}"#,
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    );
    const SW2: (&str, &str, i64, &str, &str) = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        r#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> StandardHeaders<'a> {
        StandardHeaders {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn standard_webhooks_vectors_sign_exactly() {
        for (secret, id, ts, body, expected) in [SW1, SW2] {
            assert_eq!(
                sign_standard_webhooks(&sw_key(secret), id, ts, body.as_bytes()),
                expected
            );
            let ts_text = ts.to_string();
            assert_eq!(
                verify_standard_webhooks(
                    &sw_key(secret),
                    headers(id, &ts_text, expected),
                    body.as_bytes(),
                    ts
                ),
                Ok(id)
            );
        }
    }

    #[test]
    fn standard_webhooks_negative_cases() {
        let (secret, id, ts, body, good) = SW2;
        let key = sw_key(secret);
        let ts_text = ts.to_string();
        let verify = |sig: &str, now: i64| {
            verify_standard_webhooks(&key, headers(id, &ts_text, sig), body.as_bytes(), now).map(|_| ())
        };
        assert_eq!(
            verify("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", ts),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "v1,",
            &good[..8],
            "v1,dawfeoifkpqwoekfpqoekf",
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        ] {
            assert_eq!(verify(bad, ts), Err(SignatureError::Mismatch), "{bad}");
        }
        // Only v1 counts: the same bytes labelled v1a are ignored.
        assert_eq!(
            verify(&good.replacen("v1,", "v1a,", 1), ts),
            Err(SignatureError::Mismatch)
        );
        // One good entry among bad ones is enough.
        assert_eq!(verify(&format!("v1,bad {good}"), ts), Ok(()));
        // ±300 s inclusive, refused beyond.
        assert_eq!(verify(good, ts + 300), Ok(()));
        assert_eq!(verify(good, ts - 299), Ok(()));
        assert_eq!(verify(good, ts + 301), Err(SignatureError::OutsideWindow));
        assert_eq!(verify(good, ts - 301), Err(SignatureError::OutsideWindow));
        // A re-serialised body no longer matches.
        assert_eq!(
            verify_standard_webhooks(&key, headers(id, &ts_text, good), br#"{"test":2432232314}"#, ts)
                .map(|_| ()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn standard_webhooks_header_format() {
        let key = b"0123456789abcdef";
        for bad_ts in ["hello", "1e9", "-5", "1234567890123456789012345", ""] {
            assert_eq!(
                verify_standard_webhooks(key, headers("msg_1", bad_ts, "v1,x"), b"{}", 0),
                Err(SignatureError::MalformedHeader("webhook-timestamp")),
                "{bad_ts}"
            );
        }
        let long = "a".repeat(65);
        for bad_id in ["msg.1", "msg 1", long.as_str(), ""] {
            assert_eq!(
                verify_standard_webhooks(key, headers(bad_id, "1", "v1,x"), b"{}", 1),
                Err(SignatureError::MalformedHeader("webhook-id")),
                "{bad_id}"
            );
        }
        let missing = StandardHeaders {
            id: Some("a"),
            timestamp: None,
            signature: Some("v1,x"),
        };
        assert_eq!(
            verify_standard_webhooks(key, missing, b"{}", 0),
            Err(SignatureError::MissingHeader("webhook-timestamp"))
        );
    }

    #[test]
    fn x_signature_known_answers() {
        // GitHub's published vector: the same HMAC-SHA256 over the body.
        let sig = sign_x_signature(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(
            sig,
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(verify_x_signature(b"It's a Secret to Everybody", b"Hello, World!", &sig).is_ok());
        assert!(
            verify_x_signature(
                b"It's a Secret to Everybody",
                b"Hello, World!",
                &format!("sha256={sig}")
            )
            .is_ok()
        );
        assert!(
            verify_x_signature(
                b"It's a Secret to Everybody",
                b"Hello, World!",
                &sig.to_uppercase()
            )
            .is_ok()
        );
        // Truncated, empty, non-hex and wrong-key signatures fail.
        for bad in [
            &sig[..32],
            "",
            "zz",
            &sign_x_signature(b"other", b"Hello, World!"),
        ] {
            assert!(verify_x_signature(b"It's a Secret to Everybody", b"Hello, World!", bad).is_err());
        }
        assert!(verify_x_signature(b"It's a Secret to Everybody", b"Hello, World!!", &sig).is_err());
    }
}
