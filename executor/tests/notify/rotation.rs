//! Key rotation and the users' webhook secrets: after `keys rewrap`, the sender signs with a secret
//! it opens with the new private key alone.

use std::sync::Arc;

use humbex_ingest::webhook::signature::{StandardHeaders, verify_standard_webhooks};
use humbex_shared::api_key_vault::{Opener, Sealer};
use humbex_shared::config::WebhookSecret;
use humbex_shared::crypto::public_key::{PrivateKeys, generate};

use crate::harness::World;

#[tokio::test]
async fn after_a_rewrap_the_old_key_is_not_needed_to_sign_a_users_webhook() {
    let w = World::start().await;
    w.fill_one().await;

    // The new key pair; an executor holding only its private key.
    let (private_hex, public) = generate();
    let private = PrivateKeys::from_hex_list(&private_hex).unwrap();
    let new_only = Opener::with_keys(Some(private.clone()), None);

    // Before the rewrap the secret is still under the world's keyring key: it cannot be opened.
    let before = w
        .run_until_attempts(new_only.clone(), w.config(), "webhook", 1)
        .await;
    assert_eq!(before[0].0, "retry", "{before:?}");
    assert!(
        before[0]
            .1
            .as_deref()
            .unwrap()
            .contains("cannot open the webhook secret"),
        "{before:?}"
    );
    assert!(w.stand_in.requests("/user-hook").is_empty());

    // `keys rewrap` with both: the old keyring opens, the new public key seals.
    let both = Opener::with_keys(Some(private), Some(world_keyring()));
    let mut client = humbex_shared::db::connect(&w.db.url.pg_config()).await.unwrap();
    let done = humbex_shared::rewrap::rewrap_all(
        &mut client,
        &both,
        &Sealer::public(public),
        10,
        humbex_shared::key_usage::DEFAULT_MAX_PER_KEY,
    )
    .await
    .unwrap();
    assert_eq!(done.webhook_secrets.moved, 1, "{done:?}");

    let after = w.run_until_attempts(new_only, w.config(), "webhook", 2).await;
    assert_eq!(after[1].0, "delivered", "{after:?}");
    let posts = w.stand_in.requests("/user-hook");
    assert_eq!(posts.len(), 1);
    let h = |n: &str| posts[0].headers.get(n).map(String::as_str);
    let key = WebhookSecret::parse(&w.user_webhook_secret).unwrap();
    let headers = StandardHeaders {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
    };
    let now = chrono::Utc::now().timestamp();
    verify_standard_webhooks(key.standard_webhooks_key(), headers, &posts[0].body, now)
        .expect("signed with the user's secret, unchanged by the rewrap");
}

/// The keyring World::start seals with.
fn world_keyring() -> Arc<humbex_shared::crypto::Keyring> {
    Arc::new(humbex_shared::crypto::Keyring::new([(1u32, [7u8; 32])].into(), 1).unwrap())
}
