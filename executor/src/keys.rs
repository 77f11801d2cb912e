//! Exchange credentials, decrypted once per key and kept in memory (the secret lives in a
//! `SecretString`, zeroized when the entry is dropped), so the hot path never decrypts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use humbex_bybit::Credentials;
use humbex_shared::crypto::{CellRef, Keyring};
use uuid::Uuid;

pub const TABLE: &str = "api_keys";
pub const KEY_COLUMN: &str = "api_key_enc";
pub const SECRET_COLUMN: &str = "api_secret_enc";

/// Opened credentials by api_keys.id.
pub struct KeyCache {
    keyring: Arc<Keyring>,
    opened: Mutex<HashMap<Uuid, Credentials>>,
}

impl KeyCache {
    pub fn new(keyring: Arc<Keyring>) -> Self {
        KeyCache {
            keyring,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// The credentials of one key row, opening its two ciphertexts the first time.
    pub fn credentials(
        &self,
        api_key_id: Uuid,
        user_id: Uuid,
        key_enc: &[u8],
        secret_enc: &[u8],
    ) -> Result<Credentials, humbex_shared::crypto::CryptoError> {
        if let Some(found) = self.opened.lock().expect("key cache lock").get(&api_key_id) {
            return Ok(found.clone());
        }
        let cell = |column| CellRef {
            table: TABLE,
            column,
            row_id: api_key_id,
            user_id,
        };
        let key = self.keyring.open(cell(KEY_COLUMN), key_enc)?;
        let key = String::from_utf8(key).map_err(|_| humbex_shared::crypto::CryptoError::NotUtf8)?;
        let secret = self.keyring.open_string(cell(SECRET_COLUMN), secret_enc)?;
        let credentials = Credentials::new(key, secret);
        self.opened
            .lock()
            .expect("key cache lock")
            .insert(api_key_id, credentials.clone());
        Ok(credentials)
    }

    /// Forget a key (revoked or unusable).
    pub fn forget(&self, api_key_id: Uuid) {
        self.opened.lock().expect("key cache lock").remove(&api_key_id);
    }
}
