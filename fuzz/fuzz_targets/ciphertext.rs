//! Opening arbitrary bytes as a stored ciphertext: an error, never a panic, never a plaintext.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use humbex_shared::crypto::{CellRef, Keyring};
use libfuzzer_sys::fuzz_target;

static KEYRING: LazyLock<Keyring> =
    LazyLock::new(|| Keyring::new(BTreeMap::from([(1, [7u8; 32]), (2, [9u8; 32])]), 2).unwrap());

fuzz_target!(|data: &[u8]| {
    let cell = CellRef { table: humbex_shared::api_key_vault::TABLE, column: humbex_shared::api_key_vault::SECRET_COLUMN, row_id: uuid::Uuid::nil(), user_id: uuid::Uuid::nil() };
    assert!(KEYRING.open(cell, data).is_err());
});
