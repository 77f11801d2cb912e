//! Opening arbitrary bytes as a stored ciphertext, in either format (keyring AES-GCM or HPKE to a
//! public key): an error, never a panic, never a plaintext.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use humbex_shared::api_key_vault::{KeyRow, Opener, StoredPair};
use humbex_shared::crypto::Keyring;
use humbex_shared::crypto::public_key::PrivateKeys;
use libfuzzer_sys::fuzz_target;

static OPENER: LazyLock<Opener> = LazyLock::new(|| {
    let keyring = Keyring::new(BTreeMap::from([(1, [7u8; 32]), (2, [9u8; 32])]), 2).unwrap();
    let private = PrivateKeys::from_hex_list(&"5a".repeat(32)).unwrap();
    Opener::with_keys(Some(private), Some(Arc::new(keyring)))
});

fuzz_target!(|data: &[u8]| {
    let row = KeyRow { id: uuid::Uuid::nil(), user_id: uuid::Uuid::nil() };
    let half = data.len() / 2;
    let stored = StoredPair { key_enc: &data[..half], secret_enc: &data[half..] };
    assert!(OPENER.open(row, stored).is_err());
});
