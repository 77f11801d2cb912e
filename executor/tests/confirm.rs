//! Fill confirmation end to end: a fresh PostgreSQL database, the paper exchange in-process, real
//! HTTP and WebSocket on 127.0.0.1. Each test seeds its rows with SQL, places a market order with
//! humbex_bybit under the row's orderLinkId, and waits (bounded) for the row to match the exchange.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use humbex_bybit::{
    BybitRest, CreateOrderRequest, Credentials, ExecutionFilter, OrderLinkId, Side, ensure_crypto_provider,
};
use humbex_executor::confirm::{Confirmer, ConfirmerConfig, StreamState};
use humbex_executor::keys::KeyCache;
use humbex_paper_exchange::{AccountSpec, Fault, PaperExchangeConfig, RunningPaperExchange};
use humbex_shared::api_key_vault::Opener;
use humbex_shared::db::{self, TestDatabase};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

const SYMBOL: &str = "AVAXUSDT";
const WAIT: Duration = Duration::from_secs(15);

/// Polls `check` until it yields a value; fails the test after [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone, PartialEq)]
struct OrderRow {
    status: String,
    filled_qty: Decimal,
    avg_price: Option<Decimal>,
    fee: Decimal,
    exchange_order_id: Option<String>,
    acknowledged_at: Option<DateTime<Utc>>,
    filled_at: Option<DateTime<Utc>>,
    fills: i64,
}

struct Harness {
    _db: TestDatabase,
    pg: humbex_shared::db::PgConfig,
    pool: Pool,
    paper: RunningPaperExchange,
    rest: BybitRest,
    confirmer: Confirmer,
    user_id: Uuid,
}

struct Account {
    api_key_id: Uuid,
    credentials: Credentials,
}

impl Harness {
    /// `unconfirmed_after` decides whether the background reconciliation takes part: a long one
    /// isolates the push and reconnect paths.
    async fn start(unconfirmed_after: Duration) -> Harness {
        ensure_crypto_provider();
        let test_db = TestDatabase::create().await.expect("test database");
        let pool = db::pool(&test_db.url, 8).expect("pool");
        let paper = humbex_paper_exchange::spawn(PaperExchangeConfig {
            port: 0,
            ws_subscribe_ack_delay: Duration::from_millis(5),
            ..Default::default()
        })
        .await
        .expect("paper exchange starts");
        let rest = BybitRest::new(paper.base_url()).expect("rest client");
        // The stream credentials are handed over directly; the cache is only what a disabled key
        // is dropped from.
        let keyring =
            humbex_shared::crypto::Keyring::from_config(Some(&"07".repeat(32)), None, None).unwrap();
        let keys = Arc::new(KeyCache::new(Opener::new(Arc::new(keyring))));
        let confirmer = Confirmer::with_config(
            pool.clone(),
            rest.clone(),
            keys,
            ConfirmerConfig {
                reconcile_interval: Duration::from_millis(200),
                unconfirmed_after,
                max_recheck_delay: Duration::from_millis(400),
                reconnect_initial_delay: Duration::from_millis(50),
                reconnect_max_delay: Duration::from_millis(200),
                ..ConfirmerConfig::new(paper.private_ws_url())
            },
        );
        let user_id = Uuid::new_v4();
        let client = pool.get().await.unwrap();
        let digest = [user_id.as_bytes().as_slice(), user_id.as_bytes().as_slice()].concat();
        client
            .execute(
                "INSERT INTO users (id, email, webhook_token_digest, webhook_token_prefix) \
                 VALUES ($1, $2, $3, 'tok_')",
                &[&user_id, &format!("{}@example.com", user_id.simple()), &digest],
            )
            .await
            .unwrap();
        Harness {
            pg: test_db.url.pg_config(),
            _db: test_db,
            pool,
            paper,
            rest,
            confirmer,
            user_id,
        }
    }

    /// An api_keys row plus the matching paper account. `exchange_secret` is what the paper
    /// exchange knows; `our_secret` is what we sign with.
    async fn account_with(&self, api_key: &str, exchange_secret: &str, our_secret: &str) -> Account {
        self.paper
            .exchange()
            .create_account(AccountSpec::new(api_key, exchange_secret, Decimal::from(10_000)))
            .expect("paper account");
        let api_key_id = Uuid::new_v4();
        self.pool
            .get()
            .await
            .unwrap()
            .execute(
                "INSERT INTO api_keys (id, user_id, api_key_enc, api_secret_enc, enc_key_id, api_key_masked) \
                 VALUES ($1, $2, '\\x00'::bytea, '\\x00'::bytea, 1, 'k***')",
                &[&api_key_id, &self.user_id],
            )
            .await
            .unwrap();
        Account {
            api_key_id,
            credentials: Credentials::new(api_key, SecretString::from(our_secret.to_string())),
        }
    }

    async fn account(&self, api_key: &str) -> Account {
        let secret = format!("secret-of-{api_key}");
        self.account_with(api_key, &secret, &secret).await
    }

    /// A signal and its 'pending' order row, as the submit pipeline commits them before sending.
    async fn pending_order(&self, account: &Account, link_id: &str, qty: Decimal) -> Uuid {
        let client = self.pool.get().await.unwrap();
        let signal_id = Uuid::new_v4();
        client
            .execute(
                "INSERT INTO signals (id, source, user_id, action, symbol, quantity, raw_body, idempotency_key) \
                 VALUES ($1, 'signed', $2, 'buy', $3, $4, '{}', $5)",
                &[
                    &signal_id,
                    &self.user_id,
                    &SYMBOL,
                    &qty,
                    &format!("client:{signal_id}"),
                ],
            )
            .await
            .unwrap();
        let order_id = Uuid::new_v4();
        client
            .execute(
                "INSERT INTO orders (id, signal_id, user_id, api_key_id, order_link_id, symbol, side, qty) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'buy', $7)",
                &[
                    &order_id,
                    &signal_id,
                    &self.user_id,
                    &account.api_key_id,
                    &link_id,
                    &SYMBOL,
                    &qty,
                ],
            )
            .await
            .unwrap();
        order_id
    }

    /// Places the market order and records the ack the way the submit pipeline must: only a
    /// still-pending row becomes 'submitted', since a push may already have filled it.
    async fn place(&self, account: &Account, order_id: Uuid, link_id: &str, qty: Decimal) -> String {
        let request =
            CreateOrderRequest::market(SYMBOL, Side::Buy, qty, OrderLinkId::parse(link_id).unwrap());
        let ack = self
            .rest
            .create_order(&account.credentials, &request)
            .await
            .expect("order accepted")
            .value;
        self.pool
            .get()
            .await
            .unwrap()
            .execute(
                "UPDATE orders SET exchange_order_id = COALESCE(exchange_order_id, $2), \
                    submitted_at = now(), \
                    status = CASE WHEN status = 'pending' THEN 'submitted' ELSE status END \
                 WHERE id = $1",
                &[&order_id, &ack.order_id],
            )
            .await
            .unwrap();
        ack.order_id
    }

    async fn row(&self, order_id: Uuid) -> OrderRow {
        let row = self
            .pool
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT status, filled_qty, avg_price, fee, exchange_order_id, acknowledged_at, filled_at, \
                    (SELECT count(*) FROM fills f WHERE f.order_id = o.id) AS fills \
                 FROM orders o WHERE id = $1",
                &[&order_id],
            )
            .await
            .unwrap();
        OrderRow {
            status: row.get("status"),
            filled_qty: row.get("filled_qty"),
            avg_price: row.get("avg_price"),
            fee: row.get("fee"),
            exchange_order_id: row.get("exchange_order_id"),
            acknowledged_at: row.get("acknowledged_at"),
            filled_at: row.get("filled_at"),
            fills: row.get("fills"),
        }
    }

    async fn wait_for_status(&self, order_id: Uuid, status: &str) -> OrderRow {
        eventually(&format!("order {order_id} to reach {status}"), || async {
            let row = self.row(order_id).await;
            (row.status == status).then_some(row)
        })
        .await
    }

    fn fault(&self, fault: serde_json::Value) {
        let fault: Fault = serde_json::from_value(fault).expect("fault parses");
        self.paper.exchange().add_fault(fault).expect("fault accepted");
    }

    /// The expected numbers for a market buy of `qty` at the current paper price, taker fee 0.055 %.
    /// Open the account's private stream, as the executor does before its first order.
    async fn stream(&self, account: &Account) {
        self.confirmer
            .ensure_account(account.api_key_id, account.credentials.clone())
            .await
            .unwrap();
    }

    /// The row is filled once, at the exchange's price and fee for `qty`.
    fn assert_filled(&self, row: &OrderRow, qty: Decimal, exchange_order_id: &str) {
        let (price, fee) = self.expected(qty);
        assert_filled(row, qty, price, fee, exchange_order_id);
    }

    fn expected(&self, qty: Decimal) -> (Decimal, Decimal) {
        let price = self.paper.exchange().price(SYMBOL).unwrap();
        (price, qty * price * Decimal::new(55, 5))
    }

    async fn stop(self) {
        self.confirmer.shutdown().await;
        let _ = self.paper.shutdown().await;
    }
}

fn assert_filled(row: &OrderRow, qty: Decimal, price: Decimal, fee: Decimal, exchange_order_id: &str) {
    assert_eq!(row.status, "filled");
    assert_eq!(row.filled_qty, qty);
    assert_eq!(row.avg_price, Some(price));
    assert_eq!(row.fee.normalize(), fee.normalize());
    assert_eq!(row.exchange_order_id.as_deref(), Some(exchange_order_id));
    assert!(row.acknowledged_at.is_some(), "acknowledged_at set");
    assert!(row.filled_at.is_some(), "filled_at set");
    assert_eq!(row.fills, 1, "exactly one fill row");
}

#[tokio::test]
async fn push_fills_the_order_row_and_its_fill() {
    // The background pass is kept out of the way: only the stream can fill the row here.
    let h = Harness::start(Duration::from_secs(600)).await;
    let account = h.account("k-push").await;
    h.confirmer
        .ensure_account(account.api_key_id, account.credentials.clone())
        .await
        .expect("stream connects");
    assert!(matches!(
        h.confirmer.stream_state(account.api_key_id),
        Some(StreamState::Connected { session: 1 })
    ));
    // A second call reuses the open stream.
    h.stream(&account).await;

    let qty = Decimal::from(2);
    let order_id = h.pending_order(&account, "push-1", qty).await;
    let exchange_id = h.place(&account, order_id, "push-1", qty).await;
    let row = h.wait_for_status(order_id, "filled").await;
    h.assert_filled(&row, qty, &exchange_id);
    assert_eq!(h.confirmer.stats().order_lookups, 0, "no REST lookup was needed");
    h.stop().await;
}

#[tokio::test]
async fn duplicate_pushes_and_reconciliation_do_not_duplicate_fills() {
    let h = Harness::start(Duration::from_secs(600)).await;
    let account = h.account("k-dup").await;
    h.stream(&account).await;
    let qty = Decimal::from(3);
    let order_id = h.pending_order(&account, "dup-1", qty).await;
    let exchange_id = h.place(&account, order_id, "dup-1", qty).await;
    let before = h.wait_for_status(order_id, "filled").await;
    eventually("the fill row", || async {
        (h.row(order_id).await.fills == 1).then_some(())
    })
    .await;

    // Replay what the exchange reports, as a second push would deliver it.
    let link = OrderLinkId::parse("dup-1").unwrap();
    let fills = h
        .rest
        .execution_list(
            &account.credentials,
            SYMBOL,
            &ExecutionFilter::OrderLinkId(link.clone()),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(fills.len(), 1);
    let order = h
        .rest
        .get_order_by_link_id(&account.credentials, SYMBOL, &link)
        .await
        .unwrap()
        .value
        .unwrap();
    for _ in 0..2 {
        assert!(
            !h.confirmer
                .apply_execution(account.api_key_id, &fills[0])
                .await
                .unwrap()
        );
        let applied = h
            .confirmer
            .apply_order(account.api_key_id, &order)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((applied.order_id, applied.status.as_str()), (order_id, "filled"));
    }
    h.confirmer.reconcile_account(account.api_key_id).await.unwrap();
    // A stale snapshot (New, nothing filled) arriving late moves nothing backwards.
    let mut stale = order.clone();
    stale.order_status = humbex_bybit::OrderStatus::New;
    stale.cum_exec_qty = Decimal::ZERO;
    stale.avg_price = None;
    stale.cum_exec_fee = Some(Decimal::ZERO);
    h.confirmer.apply_order(account.api_key_id, &stale).await.unwrap();

    let after = h.row(order_id).await;
    h.assert_filled(&after, qty, &exchange_id);
    assert_eq!(after.acknowledged_at, before.acknowledged_at);
    assert_eq!(after.filled_at, before.filled_at);
    h.stop().await;
}

#[tokio::test]
async fn withheld_pushes_are_recovered_by_background_reconciliation() {
    let h = Harness::start(Duration::from_millis(300)).await;
    let account = h.account("k-withhold").await;
    h.stream(&account).await;
    h.fault(json!({"kind": "withhold_pushes", "api_key": "k-withhold"}));
    let qty = Decimal::from(2);
    let order_id = h.pending_order(&account, "withheld-1", qty).await;
    let exchange_id = h.place(&account, order_id, "withheld-1", qty).await;
    let row = h.wait_for_status(order_id, "filled").await;
    h.assert_filled(&row, qty, &exchange_id);
    let stats = h.confirmer.stats();
    assert!(stats.order_lookups >= 1, "{stats:?}");
    assert_eq!(stats.order_updates_applied, 1, "no push arrived: {stats:?}");
    h.stop().await;
}

#[tokio::test]
async fn dropped_websocket_reconnects_and_the_fill_is_recorded() {
    // No background pass: the fill must come from the reconnected stream or its reconciliation.
    let h = Harness::start(Duration::from_secs(600)).await;
    let account = h.account("k-drop").await;
    h.stream(&account).await;
    let qty = Decimal::from(2);
    let order_id = h.pending_order(&account, "drop-1", qty).await;
    h.fault(json!({"kind": "drop_ws_connections", "api_key": "k-drop"}));
    let exchange_id = h.place(&account, order_id, "drop-1", qty).await;
    let row = h.wait_for_status(order_id, "filled").await;
    h.assert_filled(&row, qty, &exchange_id);
    eventually("a second session", || async {
        match h.confirmer.stream_state(account.api_key_id) {
            Some(StreamState::Connected { session }) if session >= 2 => Some(()),
            _ => None,
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn reconnect_reconciles_orders_whose_pushes_were_lost() {
    // No background pass and no pushes: only the REST pass after the reconnect can fill the row.
    let h = Harness::start(Duration::from_secs(600)).await;
    let account = h.account("k-resync").await;
    h.stream(&account).await;
    h.fault(json!({"kind": "withhold_pushes", "api_key": "k-resync"}));
    let qty = Decimal::from(2);
    let order_id = h.pending_order(&account, "resync-1", qty).await;
    let exchange_id = h.place(&account, order_id, "resync-1", qty).await;
    assert_eq!(h.row(order_id).await.status, "submitted");
    h.fault(json!({"kind": "drop_ws_connections", "api_key": "k-resync"}));
    let row = h.wait_for_status(order_id, "filled").await;
    h.assert_filled(&row, qty, &exchange_id);
    assert!(matches!(
        h.confirmer.stream_state(account.api_key_id),
        Some(StreamState::Connected { session }) if session >= 2
    ));
    assert!(h.confirmer.stats().order_lookups >= 1);
    h.stop().await;
}

#[tokio::test]
async fn bad_secret_marks_the_key_unusable_and_stops_its_stream() {
    let h = Harness::start(Duration::from_secs(600)).await;
    let account = h.account_with("k-bad", "the-real-secret", "a-wrong-secret").await;
    let err = h
        .confirmer
        .ensure_account(account.api_key_id, account.credentials.clone())
        .await
        .expect_err("a bad secret cannot connect");
    assert!(err.to_string().contains("stopped"), "{err:#}");
    let (reason, at): (Option<String>, Option<DateTime<Utc>>) = {
        let row = h
            .pool
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT unusable_reason, unusable_at FROM api_keys WHERE id = $1",
                &[&account.api_key_id],
            )
            .await
            .unwrap();
        (row.get("unusable_reason"), row.get("unusable_at"))
    };
    assert!(at.is_some());
    let reason = reason.expect("a reason");
    assert!(reason.contains("10004"), "{reason}");
    assert!(!reason.contains("a-wrong-secret"), "the secret is never stored");
    assert_eq!(h.confirmer.stream_state(account.api_key_id), None);
    // Once marked, the key is refused before any connection is tried.
    let again = h
        .confirmer
        .ensure_account(account.api_key_id, account.credentials.clone())
        .await
        .expect_err("refused");
    assert!(again.to_string().contains("unusable"), "{again:#}");
    h.stop().await;
}

#[tokio::test]
async fn pending_order_unknown_to_the_exchange_is_left_pending() {
    let h = Harness::start(Duration::from_millis(100)).await;
    let account = h.account("k-unknown").await;
    h.stream(&account).await;
    let order_id = h.pending_order(&account, "never-sent-1", Decimal::from(1)).await;
    // Several lookups, the later ones after the recheck backoff, all finding nothing.
    eventually("three lookups", || async {
        (h.confirmer.stats().order_lookups >= 3).then_some(())
    })
    .await;
    let row = h.row(order_id).await;
    assert_eq!(row.status, "pending");
    assert_eq!(row.acknowledged_at, None);
    assert_eq!(row.exchange_order_id, None);
    h.stop().await;
}

#[tokio::test]
async fn orders_of_someone_else_are_ignored() {
    let h = Harness::start(Duration::from_secs(600)).await;
    let account = h.account("k-other").await;
    h.stream(&account).await;
    // Placed on the account directly (a manual trade): no row has this orderLinkId.
    let request = CreateOrderRequest::market(
        SYMBOL,
        Side::Buy,
        Decimal::from(1),
        OrderLinkId::parse("manual-1").unwrap(),
    );
    h.rest.create_order(&account.credentials, &request).await.unwrap();
    // Our own order placed after it is confirmed, so the stream got past the foreign pushes.
    let order_id = h.pending_order(&account, "ours-1", Decimal::from(1)).await;
    h.place(&account, order_id, "ours-1", Decimal::from(1)).await;
    h.wait_for_status(order_id, "filled").await;
    let fills: i64 = h
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) AS n FROM fills", &[])
        .await
        .unwrap()
        .get("n");
    assert_eq!(fills, 1);
    h.stop().await;
}

/// A dedicated LISTEN connection driven by poll_message (a pooled one never delivers).
async fn listen(
    pg: &humbex_shared::db::PgConfig,
    channel: &str,
) -> (tokio_postgres::Client, mpsc::UnboundedReceiver<String>) {
    let (client, mut connection) = pg.connect().await.expect("listen connection");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    client.batch_execute(&format!("LISTEN {channel}")).await.unwrap();
    (client, rx)
}

#[tokio::test]
async fn status_changes_are_notified_on_humbex_orders() {
    let h = Harness::start(Duration::from_secs(600)).await;
    let account = h.account("k-notify").await;
    h.stream(&account).await;
    let qty = Decimal::from(1);
    let order_id = h.pending_order(&account, "notify-1", qty).await;
    let (_listener, mut notes) = listen(&h.pg, humbex_shared::channels::ORDERS).await;
    // Placed without touching the row, so the confirmer's pending -> filled is its only change.
    let request = CreateOrderRequest::market(SYMBOL, Side::Buy, qty, OrderLinkId::parse("notify-1").unwrap());
    h.rest.create_order(&account.credentials, &request).await.unwrap();
    let payload = tokio::time::timeout(WAIT, notes.recv())
        .await
        .expect("a notification within the timeout")
        .expect("listener still running");
    assert_eq!(payload, order_id.to_string());
    assert_eq!(h.row(order_id).await.status, "filled");
    h.stop().await;
}

impl Harness {
    /// What the exchange reports for one order: its fills and its state, over REST.
    async fn exchange_view(
        &self,
        account: &Account,
        link_id: &str,
    ) -> (Vec<humbex_bybit::Execution>, humbex_bybit::Order) {
        let link = OrderLinkId::parse(link_id).unwrap();
        let fills = self
            .rest
            .execution_list(
                &account.credentials,
                SYMBOL,
                &ExecutionFilter::OrderLinkId(link.clone()),
            )
            .await
            .unwrap()
            .value;
        let order = self
            .rest
            .get_order_by_link_id(&account.credentials, SYMBOL, &link)
            .await
            .unwrap()
            .value
            .expect("the exchange knows the order");
        (fills, order)
    }

    /// An account without a stream (nothing writes its rows but the test) and one market order
    /// of it filled at the exchange; the row is left 'submitted'.
    async fn filled_at_exchange_only(
        &self,
        api_key: &str,
        link_id: &str,
        qty: Decimal,
    ) -> (Account, Uuid, String) {
        let account = self.account(api_key).await;
        let order_id = self.pending_order(&account, link_id, qty).await;
        let exchange_id = self.place(&account, order_id, link_id, qty).await;
        (account, order_id, exchange_id)
    }
}

// The events below are all queued before the writer runs: the test runtime has one thread and
// `join!`/`join_all` queue every event in their first poll, so the writer takes them as one batch
// (the `largest_batch` assertions check that this is what happened).

#[tokio::test]
async fn many_accounts_fills_at_once_are_recorded_exactly_once() {
    let h = Harness::start(Duration::from_secs(600)).await;
    const ACCOUNTS: usize = 20;
    let qty = Decimal::from(1);
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        let account = h.account(&format!("k-many-{i}")).await;
        h.stream(&account).await;
        let link = format!("many-{i}");
        let order_id = h.pending_order(&account, &link, qty).await;
        accounts.push((account, link, order_id));
    }
    // Every account's order at once, so their pushes reach the writer together.
    let exchange_ids = futures_util::future::join_all(
        accounts
            .iter()
            .map(|(account, link, order_id)| h.place(account, *order_id, link, qty)),
    )
    .await;
    let (price, fee) = h.expected(qty);
    for ((_, _, order_id), exchange_id) in accounts.iter().zip(&exchange_ids) {
        h.wait_for_status(*order_id, "filled").await;
        let row = eventually("the fill row", || async {
            let row = h.row(*order_id).await;
            (row.fills >= 1).then_some(row)
        })
        .await;
        assert_filled(&row, qty, price, fee, exchange_id);
    }
    assert_eq!(h.confirmer.stats().fills_inserted, ACCOUNTS as u64);

    // Every account's fill and final state again, all in one batch: nothing is recorded twice.
    let mut views = Vec::new();
    for (account, link, _) in &accounts {
        views.push(h.exchange_view(account, link).await);
    }
    let (fills, orders) =
        tokio::join!(
            futures_util::future::join_all(accounts.iter().zip(&views).map(
                |((account, _, _), (fills, _))| h.confirmer.apply_execution(account.api_key_id, &fills[0])
            ),),
            futures_util::future::join_all(
                accounts
                    .iter()
                    .zip(&views)
                    .map(|((account, _, _), (_, order))| h.confirmer.apply_order(account.api_key_id, order)),
            ),
        );
    assert!(fills.into_iter().all(|inserted| !inserted.unwrap()));
    for ((_, _, order_id), applied) in accounts.iter().zip(orders) {
        let applied = applied.unwrap().expect("our order");
        assert_eq!((applied.order_id, applied.status.as_str()), (*order_id, "filled"));
    }
    let stats = h.confirmer.stats();
    assert!(stats.largest_batch >= 2 * ACCOUNTS as u64, "{stats:?}");
    assert_eq!(stats.fills_inserted, ACCOUNTS as u64);
    let total: i64 = h
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) AS n FROM fills", &[])
        .await
        .unwrap()
        .get("n");
    assert_eq!(total, ACCOUNTS as i64);
    h.stop().await;
}

#[tokio::test]
async fn one_batch_records_a_duplicate_execution_once_and_applies_order_states_in_order() {
    let h = Harness::start(Duration::from_secs(600)).await;
    let qty = Decimal::from(2);
    let (account, order_id, exchange_id) = h.filled_at_exchange_only("k-batch-dup", "batch-dup-1", qty).await;
    let (fills, order) = h.exchange_view(&account, "batch-dup-1").await;
    assert_eq!(fills.len(), 1);
    let mut stale = order.clone();
    stale.order_status = humbex_bybit::OrderStatus::New;
    stale.cum_exec_qty = Decimal::ZERO;
    stale.avg_price = None;
    stale.cum_exec_fee = Some(Decimal::ZERO);
    let key = account.api_key_id;
    let c = &h.confirmer;
    let (first, second, before, filled, after) = tokio::join!(
        c.apply_execution(key, &fills[0]),
        c.apply_execution(key, &fills[0]),
        c.apply_order(key, &stale),
        c.apply_order(key, &order),
        c.apply_order(key, &stale),
    );
    assert!(first.unwrap(), "the first copy is recorded");
    assert!(!second.unwrap(), "the second copy is a duplicate");
    // As if applied one by one: New, then Filled, then the late New changes nothing.
    let status =
        |r: anyhow::Result<Option<humbex_executor::confirm::AppliedOrder>>| r.unwrap().unwrap().status;
    assert_eq!(status(before), "new");
    assert_eq!(status(filled), "filled");
    assert_eq!(status(after), "filled");
    let stats = h.confirmer.stats();
    assert!(stats.largest_batch >= 5, "{stats:?}");
    assert_eq!(stats.fills_inserted, 1);
    h.assert_filled(&h.row(order_id).await, qty, &exchange_id);
    h.stop().await;
}

#[tokio::test]
async fn a_bad_event_in_a_batch_does_not_lose_the_others() {
    let h = Harness::start(Duration::from_secs(600)).await;
    let qty = Decimal::from(1);
    let mut placed = Vec::new();
    for i in 0..3 {
        let link = format!("batch-bad-{i}");
        let (account, order_id, exchange_id) = h
            .filled_at_exchange_only(&format!("k-batch-bad-{i}"), &link, qty)
            .await;
        let view = h.exchange_view(&account, &link).await;
        placed.push((account, order_id, exchange_id, view));
    }
    // A fill the database refuses (price 0 breaks its CHECK), amid good ones.
    let mut bad = placed[1].3.0[0].clone();
    bad.exec_id = format!("{}-bad", bad.exec_id);
    bad.exec_price = Decimal::ZERO;
    let c = &h.confirmer;
    let (fills, refused, orders) = tokio::join!(
        futures_util::future::join_all(
            placed
                .iter()
                .map(|(account, _, _, (fills, _))| c.apply_execution(account.api_key_id, &fills[0])),
        ),
        c.apply_execution(placed[1].0.api_key_id, &bad),
        futures_util::future::join_all(
            placed
                .iter()
                .map(|(account, _, _, (_, order))| c.apply_order(account.api_key_id, order)),
        ),
    );
    assert!(refused.is_err(), "the bad fill is refused");
    assert!(fills.into_iter().all(|inserted| inserted.unwrap()));
    assert!(
        orders
            .into_iter()
            .all(|applied| applied.unwrap().unwrap().status == "filled")
    );
    let stats = h.confirmer.stats();
    assert!(stats.largest_batch >= 7, "{stats:?}");
    assert_eq!(stats.batches_split, 1);
    assert_eq!(stats.fills_inserted, 3);
    let (price, fee) = h.expected(qty);
    for (_, order_id, exchange_id, _) in &placed {
        assert_filled(&h.row(*order_id).await, qty, price, fee, exchange_id);
    }
    h.stop().await;
}
