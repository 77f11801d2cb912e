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

/// Re-seal every sealed secret not under the sealer's key: [`rewrap_api_keys`], then
/// [`rewrap_webhook_secrets`].
pub async fn rewrap_all(
    client: &mut tokio_postgres::Client,
    opener: &Opener,
    sealer: &Sealer,
    batch_size: i64,
    max_per_key: u64,
) -> Result<Rewrapped, KeyUsageError> {
    Ok(Rewrapped {
        api_keys: rewrap_api_keys(client, opener, sealer, batch_size, max_per_key).await?,
        webhook_secrets: rewrap_webhook_secrets(client, opener, sealer, batch_size, max_per_key).await?,
    })
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
                        sealed: Sealed::ApiKey,
                        row_id: key.row.id,
                        key_id: *enc_key_id as u32,
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

/// Re-seal every user's webhook secret not under the sealer's key, `batch_size` rows per
/// transaction, one encryption counted per re-seal.
#[tracing::instrument(skip(client, opener, sealer), fields(primary = sealer.key_id()))]
pub async fn rewrap_webhook_secrets(
    client: &mut tokio_postgres::Client,
    opener: &Opener,
    sealer: &Sealer,
    batch_size: i64,
    max_per_key: u64,
) -> Result<RewrapReport, KeyUsageError> {
    let mut report = RewrapReport::default();
    let mut after = Uuid::nil();
    loop {
        let tx = client.transaction().await?;
        let rows = tx
            .rows(sql::LOCK_WEBHOOK_SECRETS, &[&after, &batch_size.max(1)])
            .await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = last.get("user_id");
        for row in &rows {
            let user_id: Uuid = row.get("user_id");
            let old: Vec<u8> = row.get("webhook_secret_enc");
            if sealer.is_current(&old) {
                report.already_primary += 1;
                continue;
            }
            key_usage::reserve(&tx, sealer.key_id(), 1, max_per_key).await?;
            match vault::rewrap_webhook_secret(opener, sealer, user_id, &old) {
                Ok(new) => {
                    report.moved += tx
                        .run(sql::REPLACE_WEBHOOK_SECRET, &[&user_id, &new, &old])
                        .await?;
                }
                Err(error) => report.failed.push(RewrapFailure {
                    sealed: Sealed::WebhookSecret,
                    row_id: user_id,
                    key_id: blob_key_id(&old).unwrap_or(0),
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
