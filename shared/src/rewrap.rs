//! Moving every sealed secret onto the sealer's key (`humbex keys rewrap`), so that an old
//! encryption key can be removed without downtime: the exchange key pairs of `api_keys` and the
//! users' notification webhook secrets (`notification_settings.webhook_secret_enc`), every column
//! of `api_key_vault::SEALED_COLUMNS`, each re-sealed by the vault's one rule (open in its own cell,
//! seal again for the same cell).
//!
//! The job walks each table in id order, a batch per transaction, and re-seals what is not under
//! the sealer's key. Each UPDATE is guarded by the old ciphertext, so a row changed meanwhile (a
//! concurrent rewrap, a secret issued again) is left alone rather than overwritten; running it again
//! moves only what is left, which makes it idempotent and resumable after an interruption.
//!
//! Every re-seal counts its encryptions under the sealer's key id (crate::key_usage) in the batch's
//! transaction; at the cap the batch rolls back and the run stops with that error, keeping what
//! earlier batches moved.

use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::api_key_store::{self as store, KeyOffPrimary};
use crate::api_key_vault::{self as vault, Opener, Sealer};
use crate::crypto::{CryptoError, blob_key_id};
use crate::db::Statements;
use crate::key_usage::{self, KeyUsageError};
use crate::store::notifications as sql;

pub use crate::api_key_store::rows_per_key;

/// Which kind of sealed secret a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// An `api_keys` row (both halves); its id is the key's.
    ApiKey,
    /// A user's webhook secret in `notification_settings`; its id is the user's.
    WebhookSecret,
}

impl std::fmt::Display for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sealed::ApiKey => "api key",
            Sealed::WebhookSecret => "webhook secret of user",
        })
    }
}

/// One row the job could not move, with the reason (never the plaintext).
#[derive(Debug)]
pub struct RewrapFailure {
    pub sealed: Sealed,
    /// The api key's id, or the user's for a webhook secret.
    pub row_id: Uuid,
    /// The key the row is still under.
    pub key_id: u32,
    pub error: CryptoError,
}

/// What one run did on one kind of secret.
#[derive(Debug, Default)]
pub struct RewrapReport {
    /// Rows re-sealed under the sealer's key by this run.
    pub moved: u64,
    /// Rows already under it (untouched).
    pub already_primary: u64,
    /// Rows on another key that could not be opened (a removed key, a tampered blob).
    pub failed: Vec<RewrapFailure>,
}

/// What one run of `keys rewrap` did, per kind of secret.
#[derive(Debug, Default)]
pub struct Rewrapped {
    pub api_keys: RewrapReport,
    pub webhook_secrets: RewrapReport,
}

impl Rewrapped {
    /// Every row left behind, whatever its kind.
    pub fn failed(&self) -> impl Iterator<Item = &RewrapFailure> {
        self.api_keys.failed.iter().chain(&self.webhook_secrets.failed)
    }
}

/// Re-seal every sealed secret not under the sealer's key, `batch_size` rows per transaction, with
/// at most `max_per_key` encryptions ever counted under that key id: the `api_keys` pairs (two
/// encryptions each), then the users' webhook secrets (one each).
pub async fn rewrap_all(
    client: &mut tokio_postgres::Client,
    opener: &Opener,
    sealer: &Sealer,
    batch_size: i64,
    max_per_key: u64,
) -> Result<Rewrapped, KeyUsageError> {
    Ok(Rewrapped {
        api_keys: rewrap_api_keys(client, opener, sealer, batch_size, max_per_key).await?,
        webhook_secrets: rewrap_column::<WebhookSecrets>(client, opener, sealer, batch_size, max_per_key)
            .await?,
    })
}

/// Re-seal only the `api_keys` rows not on the sealer's key, as [`rewrap_all`] does first.
pub async fn rewrap_api_keys(
    client: &mut tokio_postgres::Client,
    opener: &Opener,
    sealer: &Sealer,
    batch_size: i64,
    max_per_key: u64,
) -> Result<RewrapReport, KeyUsageError> {
    rewrap_column::<ApiKeys>(client, opener, sealer, batch_size, max_per_key).await
}

/// One kind of sealed row, as the job walks it: where its rows are read and written (its store
/// module's SQL) and how one is re-sealed (the vault's rule). The walk itself is
/// [`rewrap_column`]'s, the same for every kind.
trait SealedRows {
    const SEALED: Sealed;
    /// Encryptions one re-seal counts under the sealer's key.
    const SEALS_PER_ROW: u64;
    type Row;
    type Resealed;

    /// Rows known to be under `primary` before the walk; a kind whose key id is only in the blob
    /// counts them as the walk meets them instead (0 here).
    async fn count_on_key(
        client: &tokio_postgres::Client,
        primary: u32,
    ) -> Result<u64, tokio_postgres::Error>;
    /// Lock up to `limit` rows with ids after `after`, in id order.
    async fn lock_batch(
        tx: &Transaction<'_>,
        primary: u32,
        after: Uuid,
        limit: i64,
    ) -> Result<Vec<Self::Row>, tokio_postgres::Error>;
    fn row_id(row: &Self::Row) -> Uuid;
    /// The key the row is under now.
    fn key_id(row: &Self::Row) -> u32;
    /// Already under the sealer's key (format and key id): left alone, counted as such.
    fn is_current(sealer: &Sealer, row: &Self::Row) -> bool;
    fn reseal(opener: &Opener, sealer: &Sealer, row: &Self::Row) -> Result<Self::Resealed, CryptoError>;
    /// Write the new blob only if the row still holds the old one; rows changed (0 or 1).
    async fn replace(
        tx: &Transaction<'_>,
        row: &Self::Row,
        new: &Self::Resealed,
        primary: u32,
    ) -> Result<u64, tokio_postgres::Error>;
}

/// The exchange key pairs of `api_keys`: the key id is a column, so the lock skips rows already
/// under the sealer's key and counts them up front.
struct ApiKeys;

impl SealedRows for ApiKeys {
    const SEALED: Sealed = Sealed::ApiKey;
    const SEALS_PER_ROW: u64 = 2;
    type Row = KeyOffPrimary;
    type Resealed = vault::SealedPair;

    async fn count_on_key(
        client: &tokio_postgres::Client,
        primary: u32,
    ) -> Result<u64, tokio_postgres::Error> {
        Ok(store::count_on_key(client, primary as i32).await? as u64)
    }
    async fn lock_batch(
        tx: &Transaction<'_>,
        primary: u32,
        after: Uuid,
        limit: i64,
    ) -> Result<Vec<KeyOffPrimary>, tokio_postgres::Error> {
        store::lock_off_primary(tx, primary as i32, after, limit).await
    }
    fn row_id(row: &KeyOffPrimary) -> Uuid {
        row.key.row.id
    }
    fn key_id(row: &KeyOffPrimary) -> u32 {
        row.enc_key_id as u32
    }
    fn is_current(_sealer: &Sealer, _row: &KeyOffPrimary) -> bool {
        // The lock returned only rows off the primary key; those on it were counted up front.
        false
    }
    fn reseal(
        opener: &Opener,
        sealer: &Sealer,
        row: &KeyOffPrimary,
    ) -> Result<vault::SealedPair, CryptoError> {
        vault::rewrap(opener, sealer, row.key.row, row.key.sealed.stored())
    }
    async fn replace(
        tx: &Transaction<'_>,
        row: &KeyOffPrimary,
        new: &vault::SealedPair,
        primary: u32,
    ) -> Result<u64, tokio_postgres::Error> {
        store::replace_sealed(tx, row, new, primary as i32).await
    }
}

/// The users' webhook secrets in `notification_settings`: the key id is only inside the blob, so
/// every secret is locked and those already under the sealer's key are counted as they are met.
struct WebhookSecrets;

/// A user's sealed webhook secret as locked.
struct WebhookSecretRow {
    user_id: Uuid,
    blob: Vec<u8>,
}

impl SealedRows for WebhookSecrets {
    const SEALED: Sealed = Sealed::WebhookSecret;
    const SEALS_PER_ROW: u64 = 1;
    type Row = WebhookSecretRow;
    type Resealed = Vec<u8>;

    async fn count_on_key(
        _client: &tokio_postgres::Client,
        _primary: u32,
    ) -> Result<u64, tokio_postgres::Error> {
        Ok(0)
    }
    async fn lock_batch(
        tx: &Transaction<'_>,
        _primary: u32,
        after: Uuid,
        limit: i64,
    ) -> Result<Vec<WebhookSecretRow>, tokio_postgres::Error> {
        let rows = tx.rows(sql::LOCK_WEBHOOK_SECRETS, &[&after, &limit]).await?;
        Ok(rows
            .iter()
            .map(|row| WebhookSecretRow {
                user_id: row.get("user_id"),
                blob: row.get("webhook_secret_enc"),
            })
            .collect())
    }
    fn row_id(row: &WebhookSecretRow) -> Uuid {
        row.user_id
    }
    fn key_id(row: &WebhookSecretRow) -> u32 {
        blob_key_id(&row.blob).unwrap_or(0)
    }
    fn is_current(sealer: &Sealer, row: &WebhookSecretRow) -> bool {
        sealer.is_current(&row.blob)
    }
    fn reseal(opener: &Opener, sealer: &Sealer, row: &WebhookSecretRow) -> Result<Vec<u8>, CryptoError> {
        vault::rewrap_webhook_secret(opener, sealer, row.user_id, &row.blob)
    }
    async fn replace(
        tx: &Transaction<'_>,
        row: &WebhookSecretRow,
        new: &Vec<u8>,
        _primary: u32,
    ) -> Result<u64, tokio_postgres::Error> {
        tx.run(sql::REPLACE_WEBHOOK_SECRET, &[&row.user_id, new, &row.blob])
            .await
    }
}

/// The walk every kind shares: keyset pagination by id, a batch per transaction, each row not
/// under the sealer's key counted against the cap, re-sealed and written back guarded by its old
/// blob; a row that does not open is reported and left.
#[tracing::instrument(skip(client, opener, sealer), fields(sealed = %C::SEALED, primary = sealer.key_id()))]
async fn rewrap_column<C: SealedRows>(
    client: &mut tokio_postgres::Client,
    opener: &Opener,
    sealer: &Sealer,
    batch_size: i64,
    max_per_key: u64,
) -> Result<RewrapReport, KeyUsageError> {
    let primary = sealer.key_id();
    let batch_size = batch_size.max(1);
    let mut report = RewrapReport {
        already_primary: C::count_on_key(client, primary).await?,
        ..RewrapReport::default()
    };
    // Keyset pagination by id: rows that fail stay behind us instead of being fetched forever.
    let mut after = Uuid::nil();
    loop {
        let tx = client.transaction().await?;
        let rows = C::lock_batch(&tx, primary, after, batch_size).await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = C::row_id(last);
        for row in &rows {
            if C::is_current(sealer, row) {
                report.already_primary += 1;
                continue;
            }
            key_usage::reserve(&tx, primary, C::SEALS_PER_ROW, max_per_key).await?;
            match C::reseal(opener, sealer, row) {
                Ok(new) => report.moved += C::replace(&tx, row, &new, primary).await?,
                Err(error) => report.failed.push(RewrapFailure {
                    sealed: C::SEALED,
                    row_id: C::row_id(row),
                    key_id: C::key_id(row),
                    error,
                }),
            }
        }
        tx.commit().await?;
    }
    Ok(report)
}

/// How many webhook secrets are sealed under each key id (read from each blob; an unreadable blob
/// counts under 0).
#[tracing::instrument(skip(client))]
pub async fn webhook_secrets_per_key(
    client: &impl Statements,
) -> Result<Vec<(u32, i64)>, tokio_postgres::Error> {
    let mut per_key = std::collections::BTreeMap::<u32, i64>::new();
    for row in client.rows(sql::ALL_WEBHOOK_SECRETS, &[]).await? {
        let blob: Vec<u8> = row.get("webhook_secret_enc");
        *per_key.entry(blob_key_id(&blob).unwrap_or(0)).or_default() += 1;
    }
    Ok(per_key.into_iter().collect())
}
