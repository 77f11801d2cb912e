//! The webhook-token parser on arbitrary text: refusals only, and a token that parses must
//! re-serialise to exactly the input.
#![no_main]

use humbex_shared::token::WebhookToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(token) = WebhookToken::parse(text)
    {
        assert_eq!(token.expose_secret(), text);
    }
});
