//! The durable per-key-id encryption counter and its hard cap
//! (docs/security.md#nonces-and-the-per-key-cap, checklist row 11).
//!
//! Random 96-bit nonces make a key safe for about 2^32 encryptions, so every write that stores new
//! ciphertexts first reserves them here, in its own transaction: the count survives restarts, a
//! rolled-back write gives its reservation back, and the reservation that would pass the cap
//! fails, so nothing is sealed or stored beyond it. The row lock taken by the upsert serialises
//! concurrent writers under one key id, which is fine at the rate keys are added.

use crate::db::Statements;

/// SP 800-38D's bound for random nonces is 2^32; the default stops well before it.
pub const DEFAULT_MAX_PER_KEY: u64 = 1 << 30;
/// The highest cap that may be configured.
pub const MAX_CAP: u64 = 1 << 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyUsageError {
    #[error(
        "encryption key id {key_id} has reached its limit of {cap} encryptions (ENCRYPTION_MAX_PER_KEY): \
         add a new key to ENCRYPTION_KEYS, make it primary and run `humbex keys rewrap`"
    )]
    CapReached { key_id: u32, cap: u64 },
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// Count `count` encryptions under `key_id`, or refuse when that would pass `cap`. Call it inside
/// the transaction that stores the ciphertexts, before sealing them.
#[tracing::instrument(skip(client), err(Display))]
pub async fn reserve(
    client: &impl Statements,
    key_id: u32,
    count: u64,
    cap: u64,
) -> Result<u64, KeyUsageError> {
    let refused = KeyUsageError::CapReached { key_id, cap };
    let (Ok(key), Ok(count_db), Ok(cap_db)) =
        (i32::try_from(key_id), i64::try_from(count), i64::try_from(cap))
    else {
        return Err(refused);
    };
    let row = client
        .row_opt(
            "INSERT INTO encryption_key_usage AS u (key_id, encryptions) \
             SELECT $1::integer, $2::bigint WHERE $2::bigint <= $3::bigint \
             ON CONFLICT (key_id) DO UPDATE SET encryptions = u.encryptions + EXCLUDED.encryptions, \
                                                updated_at = now() \
             WHERE u.encryptions + EXCLUDED.encryptions <= $3::bigint \
             RETURNING encryptions",
            &[&key, &count_db, &cap_db],
        )
        .await?;
    match row {
        Some(row) => Ok(row.get::<_, i64>(0) as u64),
        None => Err(refused),
    }
}

/// Encryptions counted per key id, for operators and tests.
pub async fn usage(client: &impl Statements) -> Result<Vec<(i32, i64)>, tokio_postgres::Error> {
    let rows = client
        .rows(
            "SELECT key_id, encryptions FROM encryption_key_usage ORDER BY key_id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
