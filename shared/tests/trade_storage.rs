//! The trading language v2 in PostgreSQL (sql/V5): a signal's `TradeSpec` and the strategy and
//! subscription defaults come back from the claim as the domain types, merge by the one
//! precedence rule, and the schema's CHECKs refuse what the domain refuses.

use humbex_shared::db::{TestDatabase, connect};
use humbex_shared::domain::Price;
use humbex_shared::domain::trade::{
    Level, Leverage, MarginMode, OrderType, Percent, StrategyDefaults, SubscriptionDefaults, TradeSpec,
};
use humbex_shared::store::signals;
use tokio_postgres::types::Json;
use uuid::Uuid;

async fn user(client: &tokio_postgres::Client, email: &str) -> Uuid {
    let id = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) \
             VALUES ($1, $2, $3, 'hbxu_x')",
            &[&id, &email, &id.as_bytes().repeat(2)],
        )
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn the_claim_returns_the_trade_and_the_defaults_that_merge_by_precedence() {
    let db = TestDatabase::create().await.unwrap();
    let client = connect(&db.url.pg_config()).await.unwrap();
    let strategy = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO strategies (id, name, webhook_token_digest, webhook_token_prefix, max_lag_secs, leverage) \
             VALUES ($1, 's', $2, 'hbxs_x', 30, 5)",
            &[&strategy, &strategy.as_bytes().repeat(2)],
        )
        .await
        .unwrap();
    let alice = user(&client, "a@example.com").await;
    let bob = user(&client, "b@example.com").await;
    for (user, leverage, margin) in [(alice, Some("3"), Some("isolated")), (bob, None, None)] {
        client
            .execute(
                "INSERT INTO subscriptions (id, user_id, strategy_id, status, leverage, margin_mode) \
                 VALUES ($1, $2, $3, 'active', $4::text::numeric, $5)",
                &[&Uuid::now_v7(), &user, &strategy, &leverage, &margin],
            )
            .await
            .unwrap();
    }
    let spec = TradeSpec {
        order_type: OrderType::Limit,
        limit_price: Some(Price::parse("20.5").unwrap()),
        take_profit: Some(Level::Percent(Percent::parse("3").unwrap())),
        leverage: Some(Leverage::parse("10").unwrap()),
        ..TradeSpec::default()
    };
    client
        .execute(
            "INSERT INTO signals (id, source, strategy_id, action, symbol, quantity, raw_body, \
                                  idempotency_key, trade) \
             VALUES ($1, 'signed', $2, 'buy', 'AVAXUSDT', 1, '{}', 'k1', $3)",
            &[&Uuid::now_v7(), &strategy, &Json(&spec)],
        )
        .await
        .unwrap();

    let rows = client
        .query(
            signals::CLAIM.as_str(),
            &[&"exec-1", &10i64, &None::<Vec<Uuid>>, &30.0f64],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "one row per subscriber");
    for row in &rows {
        let trade = signals::trade_of(row).unwrap();
        assert_eq!(trade, spec);
        let strategy_defaults = signals::strategy_defaults_of(row).unwrap();
        assert_eq!(
            strategy_defaults,
            StrategyDefaults {
                max_lag_secs: Some(30),
                leverage: Some(Leverage::parse("5").unwrap())
            }
        );
        let sub = signals::subscription_defaults_of(row).unwrap();
        let merged = trade.with_defaults(&strategy_defaults, &sub);
        // The signal's leverage wins; the strategy's lag applies; margin mode only from alice's.
        assert_eq!(merged.leverage, Some(Leverage::parse("10").unwrap()));
        assert_eq!(merged.max_lag_secs, Some(30));
        let target: Uuid = row.get("target_user_id");
        if target == alice {
            assert_eq!(
                sub,
                SubscriptionDefaults {
                    leverage: Some(Leverage::parse("3").unwrap()),
                    margin_mode: Some(MarginMode::Isolated)
                }
            );
            assert_eq!(merged.margin_mode, Some(MarginMode::Isolated));
        } else {
            assert_eq!(sub, SubscriptionDefaults::default());
            assert_eq!(merged.margin_mode, None);
        }
    }
}

#[tokio::test]
async fn the_schema_refuses_what_the_domain_refuses() {
    let db = TestDatabase::create().await.unwrap();
    let client = connect(&db.url.pg_config()).await.unwrap();
    let owner = user(&client, "c@example.com").await;
    let insert =
        |action: &'static str, quantity: Option<i32>, trade: Option<serde_json::Value>, key: &'static str| {
            let client = &client;
            async move {
                client
                    .execute(
                        "INSERT INTO signals (id, source, user_id, action, symbol, quantity, raw_body, \
                                          idempotency_key, trade) \
                     VALUES ($1, 'signed', $2, $3, 'AVAXUSDT', $4::int::numeric, '{}', $5, $6)",
                        &[&Uuid::now_v7(), &owner, &action, &quantity, &key, &trade],
                    )
                    .await
            }
        };
    let target = Some(serde_json::json!({ "target_position": "-1" }));
    assert!(insert("cancel", None, None, "ok-cancel").await.is_ok());
    assert!(insert("buy", None, target.clone(), "ok-target").await.is_ok());
    assert!(insert("close", None, None, "ok-close").await.is_ok());
    for (action, quantity, trade, key) in [
        ("cancel", Some(1), None, "cancel-with-quantity"),
        ("buy", None, None, "buy-without-quantity"),
        ("buy", Some(1), target.clone(), "quantity-and-target"),
        ("hold", Some(1), None, "unknown-action"),
        (
            "buy",
            Some(1),
            Some(serde_json::json!(["not", "an", "object"])),
            "array-trade",
        ),
    ] {
        let refused = insert(action, quantity, trade, key).await;
        assert!(refused.is_err(), "{key} was stored");
    }
    let insert_strategy = |lag: Option<i32>, leverage: Option<&'static str>| {
        let client = &client;
        async move {
            let id = Uuid::now_v7();
            client
                .execute(
                    "INSERT INTO strategies (id, name, webhook_token_digest, webhook_token_prefix, \
                                             max_lag_secs, leverage) \
                     VALUES ($1, $5, $2, 'p', $3, $4::text::numeric)",
                    &[&id, &id.as_bytes().repeat(2), &lag, &leverage, &id.to_string()],
                )
                .await
        }
    };
    insert_strategy(Some(86_400), Some("200")).await.unwrap();
    assert!(insert_strategy(Some(0), None).await.is_err());
    assert!(insert_strategy(Some(86_401), None).await.is_err());
    assert!(insert_strategy(None, Some("0.5")).await.is_err());
    assert!(insert_strategy(None, Some("200.01")).await.is_err());
    let insert_sub = |leverage: Option<&'static str>, margin: Option<&'static str>| {
        let client = &client;
        async move {
            client
                .execute(
                    "INSERT INTO subscriptions (id, user_id, status, leverage, margin_mode) \
                     VALUES ($1, $2, 'active', $3::text::numeric, $4) \
                     ON CONFLICT (user_id) DO UPDATE SET leverage = EXCLUDED.leverage, \
                         margin_mode = EXCLUDED.margin_mode",
                    &[&Uuid::now_v7(), &owner, &leverage, &margin],
                )
                .await
        }
    };
    assert!(insert_sub(Some("1"), Some("cross")).await.is_ok());
    assert!(insert_sub(Some("201"), None).await.is_err());
    assert!(insert_sub(None, Some("portfolio")).await.is_err());
}
