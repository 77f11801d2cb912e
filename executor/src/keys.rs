//! Exchange credentials, opened once per key and kept in memory (the secret lives in a
//! `SecretString`, zeroized when the entry is dropped), so the hot path never decrypts.

use std::collections::HashMap;
use std::sync::Mutex;

use humbex_bybit::Credentials;
use humbex_shared::api_key_vault::{KeyRow, Opener, StoredPair};
use humbex_shared::crypto::CryptoError;
use secrecy::ExposeSecret;
use uuid::Uuid;

/// Opened credentials by api_keys.id.
pub struct KeyCache {
    opener: Opener,
    opened: Mutex<HashMap<Uuid, Credentials>>,
}

impl KeyCache {
    pub fn new(opener: Opener) -> Self {
        KeyCache {
            opener,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// The credentials of one key row, opening its two ciphertexts the first time.
    pub fn credentials(&self, row: KeyRow, stored: StoredPair<'_>) -> Result<Credentials, CryptoError> {
        if let Some(found) = self.opened.lock().expect("key cache lock").get(&row.id) {
            return Ok(found.clone());
        }
        let pair = self.opener.open(row, stored)?;
        let credentials = Credentials::new(pair.api_key.expose_secret(), pair.api_secret);
        self.opened
            .lock()
            .expect("key cache lock")
            .insert(row.id, credentials.clone());
        Ok(credentials)
    }

    /// Open a stored pair without keeping it: the start-up check that the configured keys are the
    /// right ones.
    pub fn check_opens(&self, row: KeyRow, stored: StoredPair<'_>) -> Result<(), CryptoError> {
        self.opener.open(row, stored).map(drop)
    }

    /// Forget a key (revoked or unusable). Only through [`crate::confirm::Confirmer::disable_key`]
    /// for an unusable one, which also marks the row and closes the key's stream.
    pub fn forget(&self, api_key_id: Uuid) {
        self.opened.lock().expect("key cache lock").remove(&api_key_id);
    }
}
