//! Storing signals: who owns a token, and the one-statement INSERT + NOTIFY with idempotency.
//!
//! Idempotency rides on the unique `signals.idempotency_key`, so concurrent copies of one request
//! race on the constraint, never on a read-then-write. Body-hash keys expire after the dedupe
//! window: an expired holder is renamed out of the way and the insert is tried again.

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use humbex_shared::domain::{SignalSource, signal_status};
use humbex_shared::token::TokenKind;
use rust_decimal::Decimal;
use uuid::Uuid;

/// Who a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    User(Uuid),
    Strategy(Uuid),
}

impl Owner {
    pub fn key_part(self) -> String {
        match self {
            Owner::User(id) => format!("user:{id}"),
            Owner::Strategy(id) => format!("strategy:{id}"),
        }
    }
}

/// The token's owner and whether it may trade right now.
#[derive(Debug)]
pub struct OwnerStatus {
    pub owner: Owner,
    /// Why this owner may not submit signals now, if it may not.
    pub refusal: Option<String>,
}

/// Look a token's digest up in the table its prefix names.
#[tracing::instrument(skip_all, fields(kind = ?kind))]
pub async fn find_owner(
    client: &Object,
    kind: TokenKind,
    digest: &[u8; 32],
) -> Result<Option<OwnerStatus>, tokio_postgres::Error> {
    let digest = digest.as_slice();
    match kind {
        TokenKind::User => {
            let stmt = client
                .prepare_cached(
                    "SELECT u.id, u.active, s.status, s.expires_at, now() AS now \
                     FROM users u LEFT JOIN subscriptions s ON s.user_id = u.id \
                     WHERE u.webhook_token_digest = $1",
                )
                .await?;
            let Some(row) = client.query_opt(&stmt, &[&digest]).await? else {
                return Ok(None);
            };
            let id: Uuid = row.get(0);
            let active: bool = row.get(1);
            let status: Option<String> = row.get(2);
            let expires_at: Option<DateTime<Utc>> = row.get(3);
            let now: DateTime<Utc> = row.get(4);
            let refusal = if !active {
                Some("the user is deactivated".to_owned())
            } else {
                match (status.as_deref(), expires_at) {
                    (None, _) => Some("the user has no subscription".to_owned()),
                    (Some("active"), Some(at)) if at <= now => {
                        Some(format!("the user's subscription expired at {}", at.to_rfc3339()))
                    }
                    (Some("active"), _) => None,
                    (Some(_), _) => Some("the user's subscription is inactive".to_owned()),
                }
            };
            Ok(Some(OwnerStatus {
                owner: Owner::User(id),
                refusal,
            }))
        }
        TokenKind::Strategy => {
            let stmt = client
                .prepare_cached("SELECT id, active FROM strategies WHERE webhook_token_digest = $1")
                .await?;
            let Some(row) = client.query_opt(&stmt, &[&digest]).await? else {
                return Ok(None);
            };
            let active: bool = row.get(1);
            Ok(Some(OwnerStatus {
                owner: Owner::Strategy(row.get(0)),
                refusal: (!active).then(|| "the strategy is deactivated".to_owned()),
            }))
        }
        TokenKind::Admin => Ok(None),
    }
}

/// What makes a signal unique, in order of preference.
#[derive(Debug, Clone)]
pub enum IdempotencyKey {
    /// The body's `id`, scoped to the token's owner; never expires.
    Client(String),
    /// The signed `webhook-id`, scoped to the owner; never expires.
    WebhookId(String),
    /// SHA-256 of the raw body, within the dedupe window.
    BodyHash(String),
}

impl IdempotencyKey {
    pub fn storage_key(&self, owner: Owner) -> String {
        let owner = owner.key_part();
        match self {
            IdempotencyKey::Client(id) => format!("client:{owner}:{id}"),
            IdempotencyKey::WebhookId(id) => format!("webhook-id:{owner}:{id}"),
            IdempotencyKey::BodyHash(hash) => format!("body:{owner}:{hash}"),
        }
    }
}

/// A signal ready to be stored.
#[derive(Debug)]
pub struct NewSignal<'a> {
    pub source: SignalSource,
    pub owner: Owner,
    pub action: &'a str,
    pub symbol: &'a str,
    pub quantity: Option<Decimal>,
    pub client_id: Option<&'a str>,
    pub price: Option<Decimal>,
    pub signal_time: Option<DateTime<Utc>>,
    pub comment: Option<&'a str>,
    pub raw_body: &'a str,
    pub key: IdempotencyKey,
}

/// Why a signal could not be stored; either way the client gets a 503 and may resend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0:?}")]
    Db(#[from] tokio_postgres::Error),
    #[error("the idempotency key kept changing hands")]
    Contention,
}

/// The outcome of storing a signal.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    New { id: Uuid },
    Duplicate { id: Uuid, status: String },
}

const INSERT_AND_NOTIFY: &str = "\
    WITH ins AS ( \
        INSERT INTO signals (id, source, user_id, strategy_id, action, symbol, quantity, client_id, \
                             price, signal_time, comment, raw_body, idempotency_key) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
        ON CONFLICT (idempotency_key) DO NOTHING \
        RETURNING id) \
    SELECT id, pg_notify('humbex_signals', id::text) FROM ins";

/// Store a new signal and announce it on `humbex_signals` in the same statement, or find the
/// signal that already holds its idempotency key.
#[tracing::instrument(skip_all, fields(signal_id = tracing::field::Empty))]
pub async fn insert_signal(
    client: &Object,
    signal: &NewSignal<'_>,
    dedupe_window_secs: f64,
) -> Result<Stored, StoreError> {
    let key = signal.key.storage_key(signal.owner);
    let (user_id, strategy_id) = owner_columns(signal.owner);
    let insert = client.prepare_cached(INSERT_AND_NOTIFY).await?;
    let find = client
        .prepare_cached(
            "SELECT id, status, received_at < now() - make_interval(secs => $2) \
             FROM signals WHERE idempotency_key = $1",
        )
        .await?;
    // Each pass either inserts, finds a live holder, or retires an expired one; a third pass is
    // only reached under a race with another retirement, and then it settles.
    for _ in 0..3 {
        let id = Uuid::now_v7();
        let rows = client
            .query(
                &insert,
                &[
                    &id,
                    &signal.source.as_str(),
                    &user_id,
                    &strategy_id,
                    &signal.action,
                    &signal.symbol,
                    &signal.quantity,
                    &signal.client_id,
                    &signal.price,
                    &signal.signal_time,
                    &signal.comment,
                    &signal.raw_body,
                    &key,
                ],
            )
            .await?;
        if let Some(row) = rows.first() {
            let id: Uuid = row.get(0);
            tracing::Span::current().record("signal_id", tracing::field::display(id));
            return Ok(Stored::New { id });
        }
        let Some(existing) = client.query_opt(&find, &[&key, &dedupe_window_secs]).await? else {
            continue; // the holder was retired between our insert and our read
        };
        let existing_id: Uuid = existing.get(0);
        let expired: bool = existing.get(2);
        if expired && matches!(signal.key, IdempotencyKey::BodyHash(_)) {
            let retire = client
                .prepare_cached(
                    "UPDATE signals SET idempotency_key = idempotency_key || ':expired:' || id::text \
                     WHERE id = $1 AND idempotency_key = $2",
                )
                .await?;
            client.execute(&retire, &[&existing_id, &key]).await?;
            continue;
        }
        tracing::Span::current().record("signal_id", tracing::field::display(existing_id));
        return Ok(Stored::Duplicate {
            id: existing_id,
            status: existing.get(1),
        });
    }
    // Three races in a row are not plausible; report it as a storage failure (503, retried).
    Err(StoreError::Contention)
}

/// Keep a refused signal for the audit trail. It holds no idempotency key of its own (a
/// `rejected:` key unique to the row), so a later, permitted resend is not taken for a duplicate,
/// and it is not announced: no executor needs to see it.
#[tracing::instrument(skip_all, fields(signal_id = tracing::field::Empty))]
pub async fn insert_rejected(
    client: &Object,
    signal: &NewSignal<'_>,
    reason: &str,
) -> Result<Uuid, tokio_postgres::Error> {
    let id = Uuid::now_v7();
    let key = format!("rejected:{id}:{}", signal.key.storage_key(signal.owner));
    let (user_id, strategy_id) = owner_columns(signal.owner);
    let stmt = client
        .prepare_cached(
            "INSERT INTO signals (id, source, user_id, strategy_id, action, symbol, quantity, client_id, \
                                  price, signal_time, comment, raw_body, idempotency_key, status, reject_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .await?;
    client
        .execute(
            &stmt,
            &[
                &id,
                &signal.source.as_str(),
                &user_id,
                &strategy_id,
                &signal.action,
                &signal.symbol,
                &signal.quantity,
                &signal.client_id,
                &signal.price,
                &signal.signal_time,
                &signal.comment,
                &signal.raw_body,
                &key,
                &signal_status::REJECTED,
                &reason,
            ],
        )
        .await?;
    tracing::Span::current().record("signal_id", tracing::field::display(id));
    Ok(id)
}

fn owner_columns(owner: Owner) -> (Option<Uuid>, Option<Uuid>) {
    match owner {
        Owner::User(id) => (Some(id), None),
        Owner::Strategy(id) => (None, Some(id)),
    }
}
