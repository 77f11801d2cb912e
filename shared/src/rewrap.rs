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

use crate::crypto::{CellRef, CryptoError, Keyring};
use crate::key_usage::{self, KeyUsageError};

pub const TABLE: &str = "api_keys";
pub const KEY_COLUMN: &str = "api_key_enc";
pub const SECRET_COLUMN: &str = "api_secret_enc";

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

/// Re-seal every `api_keys` row not on the primary key, `batch_size` rows per transaction, with at
/// most `max_per_key` encryptions ever counted under the primary key id.
#[tracing::instrument(skip(client, keyring), fields(primary = keyring.primary_key_id()))]
pub async fn rewrap_api_keys(
    client: &mut tokio_postgres::Client,
    keyring: &Keyring,
    batch_size: i64,
    max_per_key: u64,
) -> Result<RewrapReport, KeyUsageError> {
    let primary = keyring.primary_key_id();
    let primary_db = primary as i32;
    let batch_size = batch_size.max(1);
    let mut report = RewrapReport {
        already_primary: client
            .query_one(
                "SELECT count(*) FROM api_keys WHERE enc_key_id = $1",
                &[&primary_db],
            )
            .await?
            .get::<_, i64>(0) as u64,
        ..RewrapReport::default()
    };
    // Keyset pagination by id: rows that fail stay behind us instead of being fetched forever.
    let mut after = Uuid::nil();
    loop {
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT id, user_id, api_key_enc, api_secret_enc, enc_key_id FROM api_keys \
                 WHERE enc_key_id <> $1 AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
                &[&primary_db, &after, &batch_size],
            )
            .await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = last.get(0);
        for row in &rows {
            let (row_id, user_id): (Uuid, Uuid) = (row.get(0), row.get(1));
            let (key_enc, secret_enc): (Vec<u8>, Vec<u8>) = (row.get(2), row.get(3));
            let enc_key_id: i32 = row.get(4);
            let cell = |column| CellRef {
                table: TABLE,
                column,
                row_id,
                user_id,
            };
            key_usage::reserve(&tx, primary, 2, max_per_key).await?;
            let resealed = keyring
                .rewrap(cell(KEY_COLUMN), &key_enc)
                .and_then(|k| Ok((k, keyring.rewrap(cell(SECRET_COLUMN), &secret_enc)?)));
            let (new_key, new_secret) = match resealed {
                Ok(pair) => pair,
                Err(error) => {
                    report.failed.push(RewrapFailure {
                        api_key_id: row_id,
                        enc_key_id,
                        error,
                    });
                    continue;
                }
            };
            report.moved += tx
                .execute(
                    "UPDATE api_keys SET api_key_enc = $2, api_secret_enc = $3, enc_key_id = $4 \
                     WHERE id = $1 AND enc_key_id = $5 AND api_key_enc = $6 AND api_secret_enc = $7",
                    &[
                        &row_id,
                        &new_key,
                        &new_secret,
                        &primary_db,
                        &enc_key_id,
                        &key_enc,
                        &secret_enc,
                    ],
                )
                .await?;
        }
        tx.commit().await?;
    }
    Ok(report)
}

/// How many rows are sealed under each key id (to check that an old key is unused before removal).
pub async fn rows_per_key(client: &tokio_postgres::Client) -> Result<Vec<(i32, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT enc_key_id, count(*) FROM api_keys GROUP BY enc_key_id ORDER BY enc_key_id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
