//! Exchange credentials, opened once per key and kept in memory while used (the secret and the API
//! key are zeroed when an entry is dropped), so the hot path never decrypts.
//! An entry unused for [`IDLE_EVICTION`] is dropped, so a key that stopped trading does not stay
//! in memory for the life of the process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use humbex_bybit::Credentials;
use humbex_shared::api_key_vault::{KeyRow, Opener, StoredPair};
use humbex_shared::crypto::CryptoError;
use secrecy::ExposeSecret;
use tokio::time::Instant;
use uuid::Uuid;

/// How long an opened key may sit unused before it is forgotten (it is opened again on next use).
pub const IDLE_EVICTION: Duration = Duration::from_secs(3600);

struct Entry {
    credentials: Credentials,
    last_used: Instant,
}

/// Opened credentials by api_keys.id.
pub struct KeyCache {
    opener: Opener,
    opened: Mutex<HashMap<Uuid, Entry>>,
}

impl KeyCache {
    pub fn new(opener: Opener) -> Self {
        KeyCache {
            opener,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// The credentials of one key row, opening its two ciphertexts when not in memory.
    pub fn credentials(&self, row: KeyRow, stored: StoredPair<'_>) -> Result<Credentials, CryptoError> {
        if let Some(found) = self.opened.lock().expect("key cache lock").get_mut(&row.id) {
            found.last_used = Instant::now();
            return Ok(found.credentials.clone());
        }
        let pair = self.opener.open(row, stored)?;
        let credentials = Credentials::new(pair.api_key.expose_secret(), pair.api_secret);
        self.opened.lock().expect("key cache lock").insert(
            row.id,
            Entry {
                credentials: credentials.clone(),
                last_used: Instant::now(),
            },
        );
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

    /// Drop every entry unused for `idle`; returns how many were dropped.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let mut opened = self.opened.lock().expect("key cache lock");
        let before = opened.len();
        opened.retain(|_, entry| entry.last_used.elapsed() < idle);
        before - opened.len()
    }

    /// Keys in memory now.
    pub fn len(&self) -> usize {
        self.opened.lock().expect("key cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Evict idle keys every minute until the task is aborted.
pub async fn evict_idle_forever(cache: std::sync::Arc<KeyCache>, idle: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(60).min(idle));
    loop {
        tick.tick().await;
        let evicted = cache.evict_idle(idle);
        if evicted > 0 {
            tracing::debug!(evicted, "idle API keys dropped from memory");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use humbex_shared::api_key_vault::from_keyring;
    use humbex_shared::crypto::Keyring;

    /// Issue 16, item 8: a key unused for an hour leaves memory; one in use stays.
    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_evicted_and_used_ones_kept() {
        let (sealer, opener) = from_keyring(Keyring::new(BTreeMap::from([(1, [3u8; 32])]), 1).unwrap());
        let cache = Arc::new(KeyCache::new(opener));
        let rows: Vec<KeyRow> = (0..2)
            .map(|_| KeyRow {
                id: Uuid::new_v4(),
                user_id: Uuid::new_v4(),
            })
            .collect();
        let sealed: Vec<_> = rows
            .iter()
            .map(|r| sealer.seal(*r, "KEY", "SECRET").unwrap())
            .collect();
        for (row, pair) in rows.iter().zip(&sealed) {
            cache.credentials(*row, pair.stored()).unwrap();
        }
        let _evictor = tokio::spawn(evict_idle_forever(cache.clone(), IDLE_EVICTION));
        tokio::time::sleep(Duration::from_secs(40 * 60)).await;
        cache.credentials(rows[0], sealed[0].stored()).unwrap();
        tokio::time::sleep(Duration::from_secs(25 * 60)).await;
        assert_eq!(
            cache.len(),
            1,
            "the key unused for 65 minutes is gone, the one used 25 minutes ago stays"
        );
        tokio::time::sleep(Duration::from_secs(40 * 60)).await;
        assert!(cache.is_empty());
        // Evicted is not lost: the next use opens it again.
        cache.credentials(rows[1], sealed[1].stored()).unwrap();
        assert_eq!(cache.len(), 1);
    }
}
