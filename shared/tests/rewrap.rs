//! Key rotation end to end against a real PostgreSQL: rows under key 1, key 2 added as primary,
//! `rewrap_api_keys`, key 1 removed; a row left behind on a removed key is a per-key error.

use std::collections::BTreeMap;

use humbex_shared::api_key_vault::{self as vault, KeyRow, Opener, Sealer, StoredPair};
use humbex_shared::crypto::{CryptoError, Keyring, blob_key_id};
use humbex_shared::db::{TestDatabase, connect};
use humbex_shared::key_usage::{KeyUsageError, usage};
use humbex_shared::rewrap::{rewrap_api_keys, rows_per_key};
use humbex_shared::secrecy::ExposeSecret;
use uuid::Uuid;

const K1: [u8; 32] = [0x11; 32];
const K2: [u8; 32] = [0x22; 32];
const NO_CAP: u64 = humbex_shared::key_usage::DEFAULT_MAX_PER_KEY;

fn ring(keys: &[(u32, [u8; 32])], primary: u32) -> (Sealer, Opener) {
    vault::from_keyring(Keyring::new(keys.iter().copied().collect::<BTreeMap<_, _>>(), primary).unwrap())
}

/// Insert a user and one sealed key row; returns (row id, user id).
async fn insert_key(
    client: &tokio_postgres::Client,
    (sealer, _): &(Sealer, Opener),
    n: usize,
) -> (Uuid, Uuid) {
    let (row, user) = (Uuid::now_v7(), Uuid::now_v7());
    client
        .execute(
            "INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) VALUES ($1, $2, $3, 'x')",
            &[&user, &format!("u{n}-{user}@example.com"), &Uuid::new_v4().as_bytes().repeat(2)],
        )
        .await
        .unwrap();
    let sealed = sealer
        .seal(
            KeyRow {
                id: row,
                user_id: user,
            },
            &format!("KEY{n}"),
            &format!("SECRET{n}"),
        )
        .unwrap();
    client
        .execute(
            "INSERT INTO api_keys (id, user_id, api_key_enc, api_secret_enc, enc_key_id, api_key_masked) \
             VALUES ($1, $2, $3, $4, $5, 'KEY…')",
            &[
                &row,
                &user,
                &sealed.key_enc,
                &sealed.secret_enc,
                &(sealer.key_id() as i32),
            ],
        )
        .await
        .unwrap();
    (row, user)
}

/// Every row's plaintext, failing on any row that did not open.
fn plain(opened: Vec<(Uuid, Result<String, CryptoError>)>) -> Vec<(Uuid, String)> {
    opened.into_iter().map(|(id, r)| (id, r.unwrap())).collect()
}

/// Open every row with `keyring`; each result is (row, plaintext secret or the error).
async fn open_all(
    client: &tokio_postgres::Client,
    (_, opener): &(Sealer, Opener),
) -> Vec<(Uuid, Result<String, CryptoError>)> {
    let rows = client
        .query(
            "SELECT id, user_id, api_key_enc, api_secret_enc, enc_key_id FROM api_keys ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let (row, user): (Uuid, Uuid) = (r.get(0), r.get(1));
            let key_blob: Vec<u8> = r.get(2);
            let secret_blob: Vec<u8> = r.get(3);
            let enc_key_id: i32 = r.get(4);
            // The column and the id inside each blob agree.
            assert_eq!(blob_key_id(&key_blob).unwrap() as i32, enc_key_id);
            assert_eq!(blob_key_id(&secret_blob).unwrap() as i32, enc_key_id);
            let stored = StoredPair {
                key_enc: &key_blob,
                secret_enc: &secret_blob,
            };
            let opened = opener
                .open(
                    KeyRow {
                        id: row,
                        user_id: user,
                    },
                    stored,
                )
                .map(|pair| format!("{}/{}", pair.api_key(), pair.api_secret.expose_secret()));
            (row, opened)
        })
        .collect()
}

#[tokio::test]
async fn rotation_rewrap_then_removal() {
    let db = TestDatabase::create().await.unwrap();
    let mut client = connect(&db.url.pg_config()).await.unwrap();

    let only_k1 = ring(&[(1, K1)], 1);
    for n in 0..7 {
        insert_key(&client, &only_k1, n).await;
    }
    let before = open_all(&client, &only_k1).await;

    // Step 1–2: key 2 added and made primary; every old row still opens.
    let both = ring(&[(1, K1), (2, K2)], 2);
    let opened = open_all(&client, &both).await;
    assert!(opened.iter().all(|(_, r)| r.is_ok()));

    // Step 3: rewrap in small batches; a second run moves nothing.
    let report = rewrap_api_keys(&mut client, &both.1, &both.0, 3, NO_CAP)
        .await
        .unwrap();
    assert_eq!((report.moved, report.already_primary), (7, 0));
    assert!(report.failed.is_empty());
    assert_eq!(rows_per_key(&client).await.unwrap(), vec![(2, 7)]);
    let again = rewrap_api_keys(&mut client, &both.1, &both.0, 3, NO_CAP)
        .await
        .unwrap();
    assert_eq!((again.moved, again.already_primary), (0, 7));

    // Step 4: key 1 removed; everything opens, with the same plaintexts as before.
    let only_k2 = ring(&[(2, K2)], 2);
    let after = open_all(&client, &only_k2).await;
    assert_eq!(plain(after), plain(before));

    // A row left on key 1 after its removal: a clear error naming key 1, for that row only, and
    // rewrap reports it instead of failing or looping.
    let (leftover, _) = insert_key(&client, &only_k1, 99).await;
    let opened = open_all(&client, &only_k2).await;
    for (id, result) in &opened {
        if *id == leftover {
            let err = result.as_ref().unwrap_err();
            assert!(matches!(err, CryptoError::UnknownKey(1)), "{err:?}");
            assert!(err.to_string().contains("encryption key id 1"), "{err}");
        } else {
            assert!(result.is_ok());
        }
    }
    let report = rewrap_api_keys(&mut client, &only_k2.1, &only_k2.0, 3, NO_CAP)
        .await
        .unwrap();
    assert_eq!(report.moved, 0);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].row_id, leftover);
    assert_eq!(report.failed[0].key_id, 1);
    assert!(matches!(report.failed[0].error, CryptoError::UnknownKey(1)));
    assert_eq!(rows_per_key(&client).await.unwrap(), vec![(1, 1), (2, 7)]);

    // Put key 1 back (decrypt-only) and the leftover moves too.
    let report = rewrap_api_keys(&mut client, &both.1, &both.0, 100, NO_CAP)
        .await
        .unwrap();
    assert_eq!((report.moved, report.failed.len()), (1, 0));
    assert!(open_all(&client, &only_k2).await.iter().all(|(_, r)| r.is_ok()));
}

/// docs/security.md#nonces-and-the-per-key-cap: with a tiny cap, the rewrap that would pass it is
/// refused, its batch rolls back (the row stays on the old key, nothing new is stored) and the
/// count stays at the cap.
#[tokio::test]
async fn rewrap_stops_at_the_encryption_cap() {
    let db = TestDatabase::create().await.unwrap();
    let mut client = connect(&db.url.pg_config()).await.unwrap();
    let only_k1 = ring(&[(1, K1)], 1);
    for n in 0..3 {
        insert_key(&client, &only_k1, n).await;
    }
    let both = ring(&[(1, K1), (2, K2)], 2);
    // Room for two rows (four encryptions) under key 2; batches of one row each.
    let err = rewrap_api_keys(&mut client, &both.1, &both.0, 1, 4)
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeyUsageError::CapReached { key_id: 2, cap: 4 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("ENCRYPTION_MAX_PER_KEY"), "{err}");
    assert_eq!(rows_per_key(&client).await.unwrap(), vec![(1, 1), (2, 2)]);
    assert_eq!(usage(&client).await.unwrap(), vec![(2, 4)]);
    // Every row still opens: the refused one is untouched on key 1.
    assert!(open_all(&client, &both).await.iter().all(|(_, r)| r.is_ok()));
    // A higher cap lets the run finish.
    let report = rewrap_api_keys(&mut client, &both.1, &both.0, 1, 6)
        .await
        .unwrap();
    assert_eq!(report.moved, 1);
    assert_eq!(usage(&client).await.unwrap(), vec![(2, 6)]);
}

/// Issue 16, item 5: `keys rewrap` with ENCRYPTION_PUBLIC_KEY set moves keyring (AES-GCM) rows to
/// the public key; afterwards the private key alone opens every row, with the same plaintexts.
#[tokio::test]
async fn rewrap_moves_keyring_rows_to_the_public_key() {
    use humbex_shared::crypto::public_key::{PrivateKeys, generate};
    use humbex_shared::crypto::{Format, blob_format};
    let db = TestDatabase::create().await.unwrap();
    let mut client = connect(&db.url.pg_config()).await.unwrap();
    let old = ring(&[(1, K1)], 1);
    for n in 0..5 {
        insert_key(&client, &old, n).await;
    }
    let before = open_all(&client, &old).await;

    let (private_hex, public) = generate();
    let private = PrivateKeys::from_hex_list(&private_hex).unwrap();
    let keyring = Keyring::new(BTreeMap::from([(1, K1)]), 1).unwrap();
    let sealer = Sealer::public(public.clone());
    let opener = Opener::with_keys(Some(private.clone()), Some(std::sync::Arc::new(keyring)));
    let report = rewrap_api_keys(&mut client, &opener, &sealer, 2, NO_CAP)
        .await
        .unwrap();
    assert_eq!((report.moved, report.already_primary), (5, 0));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        rows_per_key(&client).await.unwrap(),
        vec![(public.key_id() as i32, 5)]
    );
    for r in client
        .query("SELECT api_secret_enc FROM api_keys", &[])
        .await
        .unwrap()
    {
        let blob: Vec<u8> = r.get(0);
        assert_eq!(blob_format(&blob).unwrap(), (Format::PublicKey, public.key_id()));
    }
    let only_private = (sealer.clone(), Opener::with_keys(Some(private), None));
    let after = open_all(&client, &only_private).await;
    assert_eq!(plain(before), plain(after));
    let again = rewrap_api_keys(&mut client, &opener, &sealer, 2, NO_CAP)
        .await
        .unwrap();
    assert_eq!((again.moved, again.already_primary), (0, 5));
}

/// Insert a user with a notification webhook secret sealed by `sealer`; returns (user, secret).
async fn insert_webhook_secret(client: &tokio_postgres::Client, sealer: &Sealer, n: usize) -> (Uuid, String) {
    let user = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) VALUES ($1, $2, $3, 'x')",
            &[&user, &format!("w{n}-{user}@example.com"), &Uuid::new_v4().as_bytes().repeat(2)],
        )
        .await
        .unwrap();
    let secret = format!("whsec_secret-number-{n}");
    let sealed = sealer.seal_webhook_secret(user, &secret).unwrap();
    client
        .execute(
            "INSERT INTO notification_settings (user_id, webhook_url, webhook_secret_enc) \
             VALUES ($1, 'https://hooks.example.com/h', $2)",
            &[&user, &sealed],
        )
        .await
        .unwrap();
    (user, secret)
}

/// Every webhook secret opened with `opener`, in user order.
async fn open_webhook_secrets(
    client: &tokio_postgres::Client,
    opener: &Opener,
) -> Vec<(Uuid, Result<String, CryptoError>)> {
    client
        .query(
            "SELECT user_id, webhook_secret_enc FROM notification_settings ORDER BY user_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let user: Uuid = r.get("user_id");
            let blob: Vec<u8> = r.get("webhook_secret_enc");
            let opened = opener
                .open_webhook_secret(user, &blob)
                .map(|s| s.expose_secret().to_owned());
            (user, opened)
        })
        .collect()
}

/// Issue 14: `keys rewrap` moves the users' webhook secrets with the API keys, so the old key can
/// go; a secret left on a removed key is reported, not skipped in silence.
#[tokio::test]
async fn rewrap_moves_webhook_secrets_with_the_api_keys() {
    use humbex_shared::crypto::public_key::{PrivateKeys, generate};
    use humbex_shared::rewrap::{Sealed, rewrap_all, webhook_secrets_per_key};
    let db = TestDatabase::create().await.unwrap();
    let mut client = connect(&db.url.pg_config()).await.unwrap();
    let old = ring(&[(1, K1)], 1);
    insert_key(&client, &old, 0).await;
    let mut secrets = Vec::new();
    for n in 0..5 {
        secrets.push(insert_webhook_secret(&client, &old.0, n).await);
    }
    secrets.sort();

    let (private_hex, public) = generate();
    let private = PrivateKeys::from_hex_list(&private_hex).unwrap();
    let keyring = Keyring::new(BTreeMap::from([(1, K1)]), 1).unwrap();
    let sealer = Sealer::public(public.clone());
    let opener = Opener::with_keys(Some(private.clone()), Some(std::sync::Arc::new(keyring)));
    let done = rewrap_all(&mut client, &opener, &sealer, 2, NO_CAP)
        .await
        .unwrap();
    assert_eq!((done.api_keys.moved, done.webhook_secrets.moved), (1, 5));
    assert_eq!(done.failed().count(), 0);
    assert_eq!(
        webhook_secrets_per_key(&client).await.unwrap(),
        vec![(public.key_id(), 5)]
    );
    // The private key alone opens every secret, each the same as before.
    let only_private = Opener::with_keys(Some(private), None);
    let opened: Vec<(Uuid, String)> = open_webhook_secrets(&client, &only_private)
        .await
        .into_iter()
        .map(|(u, r)| (u, r.unwrap()))
        .collect();
    assert_eq!(opened, secrets);
    let again = rewrap_all(&mut client, &opener, &sealer, 2, NO_CAP)
        .await
        .unwrap();
    assert_eq!(
        (again.webhook_secrets.moved, again.webhook_secrets.already_primary),
        (0, 5)
    );

    // A secret issued under key 1 after the old key left the opener: reported with its user.
    let (late, _) = insert_webhook_secret(&client, &old.0, 9).await;
    let new_only = Opener::with_keys(None, None);
    let left = rewrap_all(&mut client, &new_only, &sealer, 2, NO_CAP)
        .await
        .unwrap();
    let failed: Vec<_> = left.failed().collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (failed[0].sealed, failed[0].row_id, failed[0].key_id),
        (Sealed::WebhookSecret, late, 1)
    );
    assert!(matches!(failed[0].error, CryptoError::UnknownKey(1)));
}

/// Every bytea column of the schema named `*_enc` is one rewrap moves: a new sealed column
/// cannot be added without telling `keys rewrap` (api_key_vault::SEALED_COLUMNS).
#[tokio::test]
async fn every_sealed_column_of_the_schema_is_one_rewrap_moves() {
    let db = TestDatabase::create().await.unwrap();
    let client = connect(&db.url.pg_config()).await.unwrap();
    let mut found: Vec<(String, String)> = client
        .query(
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type = 'bytea' AND column_name LIKE '%\\_enc'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("t"), r.get("c")))
        .collect();
    found.sort();
    let mut covered: Vec<(String, String)> = vault::SEALED_COLUMNS
        .iter()
        .map(|(t, c)| (t.to_string(), c.to_string()))
        .collect();
    covered.sort();
    assert_eq!(found, covered);
}
