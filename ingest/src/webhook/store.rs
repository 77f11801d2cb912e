//! Storing signals: token lookup, subscription check, INSERT and NOTIFY in one statement, with
//! idempotency. (`group` decides which transaction that statement runs in.)
//!
//! Idempotency rides on the unique `signals.idempotency_key`, so concurrent copies of one request
//! race on the constraint, never on a read-then-write. Body-hash keys expire after the dedupe
//! window: an expired holder is renamed out of the way and the insert is tried again.

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use humbex_shared::db::Statements;
use humbex_shared::db::statements::Prepared;
use humbex_shared::domain::trade::TradeSpec;
use humbex_shared::domain::{SignalSource, TradingRefusal, signal_status};
use humbex_shared::store::signals;
use humbex_shared::token::TokenKind;
use rust_decimal::Decimal;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

/// Who a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    User(Uuid),
    Strategy(Uuid),
}

impl Owner {
    /// The user's or the strategy's id.
    pub fn id(self) -> Uuid {
        match self {
            Owner::User(id) | Owner::Strategy(id) => id,
        }
    }

    pub fn key_part(self) -> String {
        match self {
            Owner::User(id) => format!("user:{id}"),
            Owner::Strategy(id) => format!("strategy:{id}"),
        }
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
    /// The key's kind prefix and value; the stored key is `<kind><owner>:<value>`.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            IdempotencyKey::Client(id) => ("client:", id),
            IdempotencyKey::WebhookId(id) => ("webhook-id:", id),
            IdempotencyKey::BodyHash(hash) => ("body:", hash),
        }
    }

    pub fn storage_key(&self, owner: Owner) -> String {
        let (kind, value) = self.parts();
        format!("{kind}{}:{value}", owner.key_part())
    }
}

/// A signal ready to be stored. Owned, because it waits in the group committer's queue.
#[derive(Debug)]
pub struct NewSignal {
    pub source: SignalSource,
    pub action: &'static str,
    pub symbol: String,
    pub quantity: Option<Decimal>,
    pub client_id: Option<String>,
    pub price: Option<Decimal>,
    pub signal_time: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub raw_body: String,
    pub key: IdempotencyKey,
    /// The v2 fields; None (stored as NULL) for a plain v1 signal.
    pub trade: Option<Json<TradeSpec>>,
}

/// The outcome of the fast path: one round trip that looks the token up, checks the owner's
/// subscription, inserts and notifies.
#[derive(Debug)]
pub enum Submission {
    /// Stored and announced.
    New { id: Uuid, owner: Owner },
    /// No user or strategy has this token.
    UnknownToken,
    /// The owner may not trade now; nothing was stored yet.
    Refused { owner: Owner, reason: String },
    /// The idempotency key is taken: the slow path decides between duplicate and expired holder.
    KeyTaken { owner: Owner },
}

/// The fast statement's text for a user or a strategy token.
pub fn fast_sql(kind: TokenKind) -> &'static str {
    if kind == TokenKind::User {
        &signals::SUBMIT_USER
    } else {
        &signals::SUBMIT_STRATEGY
    }
}

/// The one-round-trip path every accepted signal takes, in autocommit.
pub async fn submit(
    client: &Object,
    kind: TokenKind,
    digest: &[u8; 32],
    fields: &NewSignal,
) -> Result<Submission, tokio_postgres::Error> {
    if kind == TokenKind::Admin {
        return Ok(Submission::UnknownToken);
    }
    let stmt = Prepared::new(client, fast_sql(kind)).await?;
    let plain: &tokio_postgres::Client = client;
    run_fast(plain, &stmt, kind, digest, fields).await
}

/// Run the prepared fast statement (`fast_sql(kind)`) on a client or inside a transaction.
#[tracing::instrument(skip_all, fields(kind = ?kind, signal_id = tracing::field::Empty))]
pub async fn run_fast(
    client: &tokio_postgres::Client,
    stmt: &Prepared,
    kind: TokenKind,
    digest: &[u8; 32],
    fields: &NewSignal,
) -> Result<Submission, tokio_postgres::Error> {
    if kind == TokenKind::Admin {
        return Ok(Submission::UnknownToken);
    }
    let id = Uuid::now_v7();
    let (key_kind, key_value) = fields.key.parts();
    let row = stmt
        .row_opt(
            client,
            &[
                &digest.as_slice(),
                &id,
                &fields.source.as_str(),
                &fields.action,
                &fields.symbol,
                &fields.quantity,
                &fields.client_id,
                &fields.price,
                &fields.signal_time,
                &fields.comment,
                &fields.raw_body,
                &key_kind,
                &key_value,
                &fields.trade,
            ],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Submission::UnknownToken);
    };
    let owner_id: Uuid = row.get("owner_id");
    let owner = match kind {
        TokenKind::User => Owner::User(owner_id),
        _ => Owner::Strategy(owner_id),
    };
    if let Some(code) = row.get::<_, Option<&str>>("refusal") {
        let reason = refusal_reason(code, row.get("expires_at"));
        return Ok(Submission::Refused { owner, reason });
    }
    match row.get::<_, Option<Uuid>>("signal_id") {
        Some(id) => {
            tracing::Span::current().record("signal_id", tracing::field::display(id));
            Ok(Submission::New { id, owner })
        }
        None => Ok(Submission::KeyTaken { owner }),
    }
}

/// How the fast statement's refusal code reads to the sender: `strategy_deactivated`, or a
/// [`TradingRefusal`] code (the user's expiry is then named, to the second, in UTC).
fn refusal_reason(code: &str, expires_at: Option<DateTime<Utc>>) -> String {
    match (code, TradingRefusal::from_code(code)) {
        ("strategy_deactivated", _) => "the strategy is deactivated".to_owned(),
        (_, Some(TradingRefusal::UserDeactivated)) => "the user is deactivated".to_owned(),
        (_, Some(TradingRefusal::NoSubscription)) => "the user has no subscription".to_owned(),
        (_, Some(TradingRefusal::SubscriptionInactive)) => "the user's subscription is inactive".to_owned(),
        (_, Some(TradingRefusal::SubscriptionExpired)) => match expires_at {
            Some(at) => format!(
                "the user's subscription expired at {}",
                at.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            None => "the user's subscription expired".to_owned(),
        },
        (other, None) => format!("refused ({other})"),
    }
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

/// The slow path, once the owner is known: store a new signal and announce it in the same
/// statement, or find the signal that already holds its idempotency key, retiring an expired
/// body-hash holder on the way.
#[tracing::instrument(skip_all, fields(signal_id = tracing::field::Empty))]
pub async fn insert_signal(
    client: &Object,
    owner: Owner,
    signal: &NewSignal,
    dedupe_window_secs: f64,
) -> Result<Stored, StoreError> {
    let key = signal.key.storage_key(owner);
    let (user_id, strategy_id) = owner_columns(owner);
    // Each pass either inserts, finds a live holder, or retires an expired one; a third pass is
    // only reached under a race with another retirement, and then it settles.
    for _ in 0..3 {
        let id = Uuid::now_v7();
        let source = signal.source.as_str();
        let rows = client
            .rows(
                signals::INSERT_AND_NOTIFY,
                &row_values(&id, &source, &user_id, &strategy_id, signal, &key),
            )
            .await?;
        if let Some(row) = rows.first() {
            let id: Uuid = row.get("id");
            tracing::Span::current().record("signal_id", tracing::field::display(id));
            return Ok(Stored::New { id });
        }
        let Some(existing) = client
            .row_opt(signals::FIND_BY_KEY, &[&key, &dedupe_window_secs])
            .await?
        else {
            continue; // the holder was retired between our insert and our read
        };
        let existing_id: Uuid = existing.get("id");
        let expired: bool = existing.get("expired");
        if expired && matches!(signal.key, IdempotencyKey::BodyHash(_)) {
            client.run(signals::RETIRE_KEY, &[&existing_id, &key]).await?;
            continue;
        }
        tracing::Span::current().record("signal_id", tracing::field::display(existing_id));
        return Ok(Stored::Duplicate {
            id: existing_id,
            status: existing.get("status"),
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
    owner: Owner,
    signal: &NewSignal,
    reason: &str,
) -> Result<Uuid, tokio_postgres::Error> {
    let id = Uuid::now_v7();
    let key = format!("rejected:{id}:{}", signal.key.storage_key(owner));
    let (user_id, strategy_id) = owner_columns(owner);
    let source = signal.source.as_str();
    let values = row_values(&id, &source, &user_id, &strategy_id, signal, &key);
    let mut values = values.to_vec();
    values.extend([&signal_status::REJECTED as &(dyn ToSql + Sync), &reason]);
    client.run(signals::INSERT_REJECTED, &values).await?;
    tracing::Span::current().record("signal_id", tracing::field::display(id));
    Ok(id)
}

/// The fourteen values both signal inserts share, in their column order ($1 … $14).
fn row_values<'a>(
    id: &'a Uuid,
    source: &'a &'static str,
    user_id: &'a Option<Uuid>,
    strategy_id: &'a Option<Uuid>,
    signal: &'a NewSignal,
    key: &'a String,
) -> [&'a (dyn ToSql + Sync); 14] {
    [
        id,
        source,
        user_id,
        strategy_id,
        &signal.action,
        &signal.symbol,
        &signal.quantity,
        &signal.client_id,
        &signal.price,
        &signal.signal_time,
        &signal.comment,
        &signal.raw_body,
        key,
        &signal.trade,
    ]
}

fn owner_columns(owner: Owner) -> (Option<Uuid>, Option<Uuid>) {
    match owner {
        Owner::User(id) => (Some(id), None),
        Owner::Strategy(id) => (None, Some(id)),
    }
}
