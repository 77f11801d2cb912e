//! Moving every sealed API key onto the keyring's primary key (`humbex keys rewrap`), so that an
//! old encryption key can be removed from ENCRYPTION_KEYS without downtime.
//!
//! The job walks `api_keys` in id order, a batch per transaction, and re-seals both columns of each
//! row whose `enc_key_id` is not the primary, under the same row-bound AAD with the new key id.
//! Each UPDATE is guarded by the old key id and ciphertext, so a row changed meanwhile (a
//! concurrent rewrap, a re-added key) is left alone rather than overwritten; running it again moves
//! only what is left, which makes it idempotent and resumable after an interruption.
//!
//! Every re-seal counts two encryptions under the primary key id (crate::key_usage) in the batch's
//! transaction; at the cap the batch rolls back and the run stops with that error, keeping what
//! earlier batches moved.

use uuid::Uuid;

use crate::api_key_store::{self as store, KeyOffPrimary};
use crate::api_key_vault::{self as vault, Opener, Sealer};
use crate::crypto::CryptoError;
use crate::key_usage::{self, KeyUsageError};

pub use crate::api_key_store::rows_per_key;

/// One row the job could not move, with the reason (never the plaintext).
#[derive(Debug)]
pub struct RewrapFailure {
    pub api_key_id: Uuid,
    pub enc_key_id: i32,
    pub error: CryptoError,
}

/// What one run did.
#[derive(Debug, Default)]
pub struct RewrapReport {
    /// Rows re-sealed under the primary key by this run.
    pub moved: u64,
    /// Rows already on the primary key (untouched).
    pub already_primary: u64,
    /// Rows on another key that could not be opened (a removed key, a tampered blob).
    pub failed: Vec<RewrapFailure>,
}

/// Re-seal every `api_keys` row not on the sealer's key, `batch_size` rows per transaction, with
/// at most `max_per_key` encryptions ever counted under that key id.
#[tracing::instrument(skip(client, opener, sealer), fields(primary = sealer.key_id()))]
pub async fn rewrap_api_keys(
    client: &mut tokio_postgres::Client,
    opener: &Opener,
    sealer: &Sealer,
    batch_size: i64,
    max_per_key: u64,
) -> Result<RewrapReport, KeyUsageError> {
    let primary = sealer.key_id();
    let primary_db = primary as i32;
    let batch_size = batch_size.max(1);
    let mut report = RewrapReport {
        already_primary: store::count_on_key(&*client, primary_db).await? as u64,
        ..RewrapReport::default()
    };
    // Keyset pagination by id: rows that fail stay behind us instead of being fetched forever.
    let mut after = Uuid::nil();
    loop {
        let tx = client.transaction().await?;
        let rows = store::lock_off_primary(&tx, primary_db, after, batch_size).await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = last.key.row.id;
        for old in &rows {
            let KeyOffPrimary { key, enc_key_id } = old;
            key_usage::reserve(&tx, primary, 2, max_per_key).await?;
            let new = match vault::rewrap(opener, sealer, key.row, key.sealed.stored()) {
                Ok(new) => new,
                Err(error) => {
                    report.failed.push(RewrapFailure {
                        api_key_id: key.row.id,
                        enc_key_id: *enc_key_id,
                        error,
                    });
                    continue;
                }
            };
            report.moved += store::replace_sealed(&tx, old, &new, primary_db).await?;
        }
        tx.commit().await?;
    }
    Ok(report)
}
