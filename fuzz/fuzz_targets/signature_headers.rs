//! Both signature verifiers on arbitrary headers and bodies: refusals only, never a panic, and
//! never an acceptance without the key.
#![no_main]

use humbex_ingest::webhook::signature::{StandardHeaders, verify_standard_webhooks, verify_x_signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Split the input into header values and a body at the first three NUL bytes.
    let mut parts = data.splitn(4, |b| *b == 0);
    let (id, ts, sig, body) = (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or_default());
    fn text(b: Option<&[u8]>) -> Option<&str> {
        b.and_then(|b| std::str::from_utf8(b).ok())
    }
    let key = b"fuzzing-key-that-the-input-cannot-know";
    let headers = StandardHeaders { id: text(id), timestamp: text(ts), signature: text(sig) };
    let now = 1_700_000_000;
    assert!(verify_standard_webhooks(key, headers, body, now).is_err());
    if let Some(sig) = text(sig) {
        assert!(verify_x_signature(key, body, sig).is_err());
    }
});
