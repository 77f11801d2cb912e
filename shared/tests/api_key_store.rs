//! Every `api_keys` statement against a migrated PostgreSQL: a key stored sealed, listed, due for
//! a re-check, marked unusable (the first reason kept, the listing showing it), and revoked.

use std::collections::BTreeMap;
use std::time::Duration;

use humbex_shared::api_key_store::{self as store, NewKey};
use humbex_shared::api_key_vault::{self as vault, KeyRow};
use humbex_shared::crypto::Keyring;
use humbex_shared::db::{TestDatabase, connect};
use humbex_shared::secrecy::ExposeSecret;
use uuid::Uuid;

#[tokio::test]
async fn a_key_through_every_statement() {
    let db = TestDatabase::create().await.unwrap();
    let client = connect(&db.url.pg_config()).await.unwrap();
    let (sealer, opener) = vault::from_keyring(Keyring::new(BTreeMap::from([(3, [3u8; 32])]), 3).unwrap());
    let user = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) VALUES ($1, 'k@example.com', $2, 'x')",
            &[&user, &Uuid::new_v4().as_bytes().repeat(2)],
        )
        .await
        .unwrap();
    let row = KeyRow {
        id: Uuid::now_v7(),
        user_id: user,
    };
    let sealed = sealer.seal(row, "KEYABC", "SECRETXYZ").unwrap();
    let permissions = serde_json::json!({"read_only": false});
    let new = NewKey {
        row,
        label: "main",
        sealed: &sealed,
        enc_key_id: sealer.key_id(),
        api_key_masked: "KEY****ABC",
        permissions: &permissions,
    };
    let stored = store::insert(&client, &new).await.unwrap().unwrap();
    assert_eq!((stored.id, stored.label.as_str()), (row.id, "main"));
    assert!(stored.permissions_checked_at.is_some());
    assert!(stored.unusable_at.is_none() && stored.unusable_reason.is_none());
    // A key for a user that no longer exists is not stored.
    let gone = NewKey {
        row: KeyRow {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
        },
        ..new
    };
    assert!(store::insert(&client, &gone).await.unwrap().is_none());

    assert_eq!(
        store::list_for_user(&client, user).await.unwrap(),
        vec![stored.clone()]
    );
    assert_eq!(store::rows_per_key(&client).await.unwrap(), vec![(3, 1)]);
    assert_eq!(store::count_on_key(&client, 3).await.unwrap(), 1);
    assert!(
        store::due_for_recheck(&client, Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );
    let due = store::due_for_recheck(&client, Duration::ZERO).await.unwrap();
    assert_eq!(due.len(), 1);
    let pair = opener.open(due[0].row, due[0].sealed.stored()).unwrap();
    assert_eq!(
        (pair.api_key(), pair.api_secret.expose_secret()),
        ("KEYABC", "SECRETXYZ")
    );
    store::mark_checked(&client, row.id).await.unwrap();
    assert!(store::refusal(&client, row.id).await.unwrap().is_none());

    assert!(
        store::mark_unusable(&client, row.id, "Bybit 10010")
            .await
            .unwrap()
    );
    assert!(!store::mark_unusable(&client, row.id, "later").await.unwrap());
    let listed = &store::list_for_user(&client, user).await.unwrap()[0];
    assert_eq!(listed.unusable_reason.as_deref(), Some("Bybit 10010"));
    assert!(listed.unusable_at.is_some() && listed.revoked_at.is_none());
    assert_eq!(
        store::refusal(&client, row.id).await.unwrap().as_deref(),
        Some("marked unusable: Bybit 10010")
    );
    assert!(
        store::due_for_recheck(&client, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );

    let revoked = store::revoke(&client, row.id).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        store::revoke(&client, row.id).await.unwrap().unwrap().revoked_at,
        revoked.revoked_at
    );
    assert!(store::revoke(&client, Uuid::now_v7()).await.unwrap().is_none());
    assert!(store::unrevoked(&client).await.unwrap().is_empty());
    assert!(store::tradable(&client).await.unwrap().is_empty());
    assert_eq!(
        store::refusal(&client, Uuid::now_v7()).await.unwrap().as_deref(),
        Some("no such api key")
    );
}
