//! Every statement of `humbex_shared::store` prepares against a freshly migrated database, so a
//! typo or a renamed column fails here rather than in production; and the SQL rule functions of
//! sql/V4 answer what the Rust side reads.

use std::collections::HashSet;

use humbex_shared::db::{TestDatabase, connect};
use humbex_shared::domain::TradingRefusal;
use humbex_shared::store;

#[tokio::test]
async fn every_store_statement_prepares_and_names_its_columns_once() {
    let db = TestDatabase::create().await.unwrap();
    let client = connect(&db.url.pg_config()).await.unwrap();
    let statements = store::all_statements();
    assert!(
        statements.len() >= 30,
        "only {} statements listed",
        statements.len()
    );
    let mut failures = Vec::new();
    for sql in statements {
        match client.prepare(sql).await {
            Ok(stmt) => {
                // Rows are read by column name: a name given twice would be read ambiguously.
                let mut seen = HashSet::new();
                for column in stmt.columns() {
                    if !seen.insert(column.name()) {
                        failures.push(format!("column {:?} twice in: {sql}", column.name()));
                    }
                }
            }
            Err(e) => failures.push(format!("{e:?}\n  in: {sql}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn the_trading_refusal_codes_are_the_ones_rust_reads() {
    let db = TestDatabase::create().await.unwrap();
    let client = connect(&db.url.pg_config()).await.unwrap();
    let rows = client
        .query(
            "SELECT label, humbex_trading_refusal(user_active, status, expires_at) AS refusal, \
                    humbex_subscription_active(status, expires_at) AS active \
             FROM (VALUES ('deactivated', false, 'active', NULL::timestamptz), \
                          ('none', true, NULL, NULL), \
                          ('inactive', true, 'inactive', NULL), \
                          ('expired', true, 'active', now() - interval '1 second'), \
                          ('future', true, 'active', now() + interval '1 day'), \
                          ('open_ended', true, 'active', NULL)) \
                  AS t(label, user_active, status, expires_at)",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, Option<TradingRefusal>, Option<bool>)> = rows
        .iter()
        .map(|r| (r.get("label"), r.get("refusal"), r.get("active")))
        .collect();
    let want = |label: &str, refusal, active| (label.to_owned(), refusal, active);
    assert_eq!(
        got,
        vec![
            want("deactivated", Some(TradingRefusal::UserDeactivated), Some(true)),
            want("none", Some(TradingRefusal::NoSubscription), None),
            want(
                "inactive",
                Some(TradingRefusal::SubscriptionInactive),
                Some(false)
            ),
            want("expired", Some(TradingRefusal::SubscriptionExpired), Some(false)),
            want("future", None, Some(true)),
            want("open_ended", None, Some(true)),
        ]
    );
}
