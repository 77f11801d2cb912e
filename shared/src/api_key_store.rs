//! Every statement on the `api_keys` table (statements that only join it to find a signal's
//! accounts live with those queries). Rows are read by column name.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::db::Statements;
use uuid::Uuid;

use crate::api_key_vault::{KeyRow, SealedPair};

/// What the admin API shows of a key: never a ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub exchange: String,
    pub label: String,
    pub api_key_masked: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub permissions_checked_at: Option<DateTime<Utc>>,
    pub unusable_at: Option<DateTime<Utc>>,
    pub unusable_reason: Option<String>,
}

const RECORD_COLUMNS: &str = "id, user_id, exchange, label, api_key_masked, created_at, revoked_at, \
                              permissions_checked_at, unusable_at, unusable_reason";

impl ApiKeyRecord {
    fn from_row(r: &Row) -> Self {
        ApiKeyRecord {
            id: r.get("id"),
            user_id: r.get("user_id"),
            exchange: r.get("exchange"),
            label: r.get("label"),
            api_key_masked: r.get("api_key_masked"),
            created_at: r.get("created_at"),
            revoked_at: r.get("revoked_at"),
            permissions_checked_at: r.get("permissions_checked_at"),
            unusable_at: r.get("unusable_at"),
            unusable_reason: r.get("unusable_reason"),
        }
    }
}

/// A key's row and its sealed pair, as the roles that open keys read it.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub row: KeyRow,
    pub sealed: SealedPair,
}

const STORED_COLUMNS: &str = "id, user_id, api_key_enc, api_secret_enc";

impl StoredKey {
    fn from_row(r: &Row) -> Self {
        StoredKey {
            row: KeyRow {
                id: r.get("id"),
                user_id: r.get("user_id"),
            },
            sealed: SealedPair {
                key_enc: r.get("api_key_enc"),
                secret_enc: r.get("api_secret_enc"),
            },
        }
    }
}

/// A key about to be stored: sealed for its row, with what the exchange said about it.
#[derive(Debug)]
pub struct NewKey<'a> {
    pub row: KeyRow,
    pub label: &'a str,
    pub sealed: &'a SealedPair,
    pub enc_key_id: u32,
    pub api_key_masked: &'a str,
    /// The query-api answer without the key itself.
    pub permissions: &'a serde_json::Value,
}

/// The newest unrevoked key sealed under each encryption key id: what the executor opens at
/// start-up to prove its keys are the right ones.
#[tracing::instrument(skip_all)]
pub async fn newest_per_key_id(client: &impl Statements) -> Result<Vec<StoredKey>, tokio_postgres::Error> {
    let rows = client
        .rows(
            &format!(
                "SELECT DISTINCT ON (enc_key_id) {STORED_COLUMNS} FROM api_keys \
                 WHERE revoked_at IS NULL ORDER BY enc_key_id, created_at DESC, id"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(StoredKey::from_row).collect())
}

/// Store a checked key; `None` when its user no longer exists.
#[tracing::instrument(skip_all, fields(api_key_id = %key.row.id, user_id = %key.row.user_id))]
pub async fn insert(
    client: &impl Statements,
    key: &NewKey<'_>,
) -> Result<Option<ApiKeyRecord>, tokio_postgres::Error> {
    let row = client
        .row_opt(
            &format!(
                "INSERT INTO api_keys (id, user_id, label, api_key_enc, api_secret_enc, enc_key_id, \
                                       api_key_masked, permissions, permissions_checked_at) \
                 SELECT $1, id, $3, $4, $5, $6, $7, $8, now() FROM users WHERE id = $2 \
                 RETURNING {RECORD_COLUMNS}"
            ),
            &[
                &key.row.id,
                &key.row.user_id,
                &key.label,
                &key.sealed.key_enc,
                &key.sealed.secret_enc,
                &(key.enc_key_id as i32),
                &key.api_key_masked,
                key.permissions,
            ],
        )
        .await?;
    Ok(row.as_ref().map(ApiKeyRecord::from_row))
}

/// A user's keys, newest first.
#[tracing::instrument(skip(client))]
pub async fn list_for_user(
    client: &impl Statements,
    user_id: Uuid,
) -> Result<Vec<ApiKeyRecord>, tokio_postgres::Error> {
    let rows = client
        .rows(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
            ),
            &[&user_id],
        )
        .await?;
    Ok(rows.iter().map(ApiKeyRecord::from_row).collect())
}

/// Revoke a key (revoking twice keeps the first time); `None` when there is no such key.
#[tracing::instrument(skip(client))]
pub async fn revoke(
    client: &impl Statements,
    api_key_id: Uuid,
) -> Result<Option<ApiKeyRecord>, tokio_postgres::Error> {
    let row = client
        .row_opt(
            &format!(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 \
                 RETURNING {RECORD_COLUMNS}"
            ),
            &[&api_key_id],
        )
        .await?;
    Ok(row.as_ref().map(ApiKeyRecord::from_row))
}

/// Every key not revoked (usable or not), sealed.
#[tracing::instrument(skip(client))]
pub async fn unrevoked(client: &impl Statements) -> Result<Vec<StoredKey>, tokio_postgres::Error> {
    let rows = client
        .rows(
            &format!("SELECT {STORED_COLUMNS} FROM api_keys WHERE revoked_at IS NULL"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(StoredKey::from_row).collect())
}

/// Keys neither revoked nor unusable whose owner may trade now (the subscription rule of migration
/// V4): the accounts whose private streams the executor opens at start-up.
#[tracing::instrument(skip(client))]
pub async fn tradable(client: &impl Statements) -> Result<Vec<StoredKey>, tokio_postgres::Error> {
    let rows = client
        .rows(
            &format!("SELECT k.id, k.user_id, k.api_key_enc, k.api_secret_enc FROM {TRADABLE}"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(StoredKey::from_row).collect())
}

/// The accounts that can trade now, as a FROM clause over `api_keys k` (joined to `subscriptions
/// s`) with its WHERE: keys neither revoked nor unusable whose owner may trade (sql/V4). The one
/// home of that rule for [`tradable`] and the account leases (`store::account_leases`).
pub const TRADABLE: &str = "api_keys k JOIN subscriptions s ON s.user_id = k.user_id \
     WHERE k.revoked_at IS NULL AND k.unusable_at IS NULL \
       AND humbex_subscription_active(s.status, s.expires_at)";

/// The keys among `ids` that can trade now (see [`TRADABLE`]), sealed: the accounts an executor
/// has just taken over and opens streams for.
#[tracing::instrument(skip(client, ids), fields(keys = ids.len()))]
pub async fn tradable_among(
    client: &impl Statements,
    ids: &[Uuid],
) -> Result<Vec<StoredKey>, tokio_postgres::Error> {
    let rows = client
        .rows(
            &format!(
                "SELECT k.id, k.user_id, k.api_key_enc, k.api_secret_enc FROM {TRADABLE} AND k.id = ANY($1)"
            ),
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(StoredKey::from_row).collect())
}

/// Keys neither revoked nor unusable whose permissions were last confirmed more than `interval`
/// ago (or never), in id order.
#[tracing::instrument(skip(client))]
pub async fn due_for_recheck(
    client: &impl Statements,
    interval: Duration,
) -> Result<Vec<StoredKey>, tokio_postgres::Error> {
    let rows = client
        .rows(
            &format!(
                "SELECT {STORED_COLUMNS} FROM api_keys \
                 WHERE revoked_at IS NULL AND unusable_at IS NULL \
                   AND (permissions_checked_at IS NULL \
                        OR permissions_checked_at <= now() - make_interval(secs => $1)) \
                 ORDER BY id"
            ),
            &[&interval.as_secs_f64()],
        )
        .await?;
    Ok(rows.iter().map(StoredKey::from_row).collect())
}

/// The exchange confirmed the key's permissions now.
#[tracing::instrument(skip(client))]
pub async fn mark_checked(client: &impl Statements, api_key_id: Uuid) -> Result<(), tokio_postgres::Error> {
    client
        .run(
            "UPDATE api_keys SET permissions_checked_at = now() WHERE id = $1",
            &[&api_key_id],
        )
        .await?;
    Ok(())
}

const MARK_UNUSABLE: &str = "UPDATE api_keys SET unusable_reason = $2, unusable_at = now() \
                             WHERE id = $1 AND unusable_at IS NULL";

/// Mark a key unusable with why; true when this call marked it (the first reason is kept). Only the
/// row: the executor's "disable this key" also drops what it holds of the key.
#[tracing::instrument(skip(client, reason))]
pub async fn mark_unusable(
    client: &impl Statements,
    api_key_id: Uuid,
    reason: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.run(MARK_UNUSABLE, &[&api_key_id, &reason]).await? == 1)
}

const KEY_STATE: &str = "SELECT unusable_reason, unusable_at IS NOT NULL AS unusable, \
                         revoked_at IS NOT NULL AS revoked FROM api_keys WHERE id = $1";

/// Why the key must not be used, or `None` when it may be.
#[tracing::instrument(skip(client))]
pub async fn refusal(
    client: &impl Statements,
    api_key_id: Uuid,
) -> Result<Option<String>, tokio_postgres::Error> {
    let Some(row) = client.row_opt(KEY_STATE, &[&api_key_id]).await? else {
        return Ok(Some("no such api key".into()));
    };
    if row.get::<_, bool>("unusable") {
        let reason: Option<String> = row.get("unusable_reason");
        return Ok(Some(format!(
            "marked unusable: {}",
            reason.unwrap_or_else(|| "no reason recorded".into())
        )));
    }
    if row.get::<_, bool>("revoked") {
        return Ok(Some("revoked".into()));
    }
    Ok(None)
}

/// How many keys are sealed under `enc_key_id`.
#[tracing::instrument(skip(client))]
pub async fn count_on_key(client: &impl Statements, enc_key_id: i32) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .row(
            "SELECT count(*) AS n FROM api_keys WHERE enc_key_id = $1",
            &[&enc_key_id],
        )
        .await?;
    Ok(row.get("n"))
}

/// A key sealed under another encryption key than the one a rewrap moves to.
#[derive(Debug, Clone)]
pub struct KeyOffPrimary {
    pub key: StoredKey,
    pub enc_key_id: i32,
}

/// Lock up to `limit` keys not on `primary` with ids after `after`, in id order (rows locked by
/// someone else are skipped).
#[tracing::instrument(skip(client))]
pub async fn lock_off_primary(
    client: &impl Statements,
    primary: i32,
    after: Uuid,
    limit: i64,
) -> Result<Vec<KeyOffPrimary>, tokio_postgres::Error> {
    let rows = client
        .rows(
            &format!(
                "SELECT {STORED_COLUMNS}, enc_key_id FROM api_keys \
                 WHERE enc_key_id <> $1 AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED"
            ),
            &[&primary, &after, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| KeyOffPrimary {
            key: StoredKey::from_row(r),
            enc_key_id: r.get("enc_key_id"),
        })
        .collect())
}

/// Replace a key's sealed pair, only if the row still holds exactly `old` (so a row changed
/// meanwhile is left alone); the number of rows changed (0 or 1).
#[tracing::instrument(skip(client, old, new), fields(api_key_id = %old.key.row.id))]
pub async fn replace_sealed(
    client: &impl Statements,
    old: &KeyOffPrimary,
    new: &SealedPair,
    new_enc_key_id: i32,
) -> Result<u64, tokio_postgres::Error> {
    client
        .run(
            "UPDATE api_keys SET api_key_enc = $2, api_secret_enc = $3, enc_key_id = $4 \
             WHERE id = $1 AND enc_key_id = $5 AND api_key_enc = $6 AND api_secret_enc = $7",
            &[
                &old.key.row.id,
                &new.key_enc,
                &new.secret_enc,
                &new_enc_key_id,
                &old.enc_key_id,
                &old.key.sealed.key_enc,
                &old.key.sealed.secret_enc,
            ],
        )
        .await
}

/// How many keys are sealed under each key id (to check that an old key is unused before removal).
#[tracing::instrument(skip(client))]
pub async fn rows_per_key(client: &impl Statements) -> Result<Vec<(i32, i64)>, tokio_postgres::Error> {
    let rows = client
        .rows(
            "SELECT enc_key_id, count(*) AS n FROM api_keys GROUP BY enc_key_id ORDER BY enc_key_id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get("enc_key_id"), r.get("n"))).collect())
}
