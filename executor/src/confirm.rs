//! Fill confirmation: one private WebSocket per account, opened before the account's first order
//! and kept open; pushes update `orders` and insert `fills`; REST reconciliation after every
//! (re)connect and for orders still unconfirmed a few seconds after submission, so a lost push or
//! a dropped socket never loses a fill. Keys the exchange refuses are disabled here, and
//! [`Confirmer::disable_key`] is the one way any part of the executor disables a key.
//!
//! Every write is monotone (see [`store`]): pushes, replays and REST snapshots can arrive in any
//! order and any number of times and the row still ends where the exchange is. All of them go
//! through one [`writer`] task that commits whatever queued meanwhile in one transaction.
//!
//! Here: the [`Confirmer`] handle and its shared state. A stream's lifecycle is in [`stream`], what
//! it delivers is applied by [`events`], the REST catch-up and background lookups are in
//! [`catch_up`], and the equity the `wallet` topic keeps fresh in [`equity`].

mod catch_up;
pub mod equity;
mod events;
pub mod foreign;
pub mod store;
mod stream;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use deadpool_postgres::Pool;
use humbex_bybit::{BybitRest, Credentials, Execution, Order};
use humbex_shared::api_key_store;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use store::{AppliedOrder, OpenOrder, ProtectJob};

use crate::keys::KeyCache;

/// The queue of the [`writer`] task.
type Writes = mpsc::Sender<writer::Request>;

#[derive(Clone, Debug)]
pub struct ConfirmerConfig {
    /// e.g. `wss://stream.bybit.com/v5/private` or the paper exchange's `ws://127.0.0.1:PORT/v5/private`.
    pub private_ws_url: String,
    /// How long [`Confirmer::ensure_account`] waits for the first subscription.
    pub connect_wait: Duration,
    /// How often the background reconciliation looks for unconfirmed orders.
    pub reconcile_interval: Duration,
    /// An order still `pending`/`submitted` (or `new`/`partially_filled` without change) this long
    /// is looked up over REST.
    pub unconfirmed_after: Duration,
    /// Upper bound on the wait between two lookups of the same still-open order, so an order the
    /// exchange keeps open (or does not know yet) costs little rate limit.
    pub max_recheck_delay: Duration,
    /// Orders looked up per background pass.
    pub reconcile_batch: i64,
    /// Lookups in flight at once, so one slow account does not hold up the others.
    pub reconcile_concurrency: usize,
    pub reconnect_initial_delay: Duration,
    pub reconnect_max_delay: Duration,
    /// How long a pushed equity is trusted while a position is open (Bybit does not push the
    /// wallet when only unrealised PnL moves; see [`equity`]).
    pub equity_max_age_with_position: Duration,
}

impl ConfirmerConfig {
    pub fn new(private_ws_url: impl Into<String>) -> Self {
        ConfirmerConfig {
            private_ws_url: private_ws_url.into(),
            connect_wait: Duration::from_secs(5),
            reconcile_interval: Duration::from_secs(1),
            unconfirmed_after: Duration::from_secs(3),
            max_recheck_delay: Duration::from_secs(60),
            reconcile_batch: 200,
            reconcile_concurrency: 8,
            reconnect_initial_delay: Duration::from_millis(500),
            reconnect_max_delay: Duration::from_secs(30),
            equity_max_age_with_position: Duration::from_secs(15),
        }
    }
}

/// Where one account's private stream is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// Never subscribed yet.
    Connecting,
    Connected {
        session: u64,
    },
    /// Was subscribed; reconnecting on its own.
    Disconnected {
        reason: String,
    },
    /// Closed for good (key unusable, or the confirmer shut down).
    Stopped {
        reason: String,
    },
}

/// Counters, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfirmStats {
    pub order_updates_applied: u64,
    pub fills_inserted: u64,
    /// REST lookups by orderLinkId (after reconnects and in the background).
    pub order_lookups: u64,
    /// Completed background passes.
    pub background_passes: u64,
    /// Batches the writer took from its queue.
    pub write_batches: u64,
    /// Events in the largest of them.
    pub largest_batch: u64,
    /// Batches whose transaction failed and whose events were then written one by one.
    pub batches_split: u64,
}

#[derive(Default)]
struct Counters {
    order_updates_applied: AtomicU64,
    fills_inserted: AtomicU64,
    order_lookups: AtomicU64,
    background_passes: AtomicU64,
    write_batches: AtomicU64,
    largest_batch: AtomicU64,
    batches_split: AtomicU64,
}

struct AccountEntry {
    credentials: Credentials,
    state: watch::Receiver<StreamState>,
    // Dropping it (removing the entry) stops the account's task.
    _stop: watch::Sender<()>,
}

struct Inner {
    pool: Pool,
    rest: BybitRest,
    config: ConfirmerConfig,
    /// The opened credentials a disabled key must be dropped from.
    keys: Arc<KeyCache>,
    accounts: Mutex<HashMap<Uuid, AccountEntry>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shutdown: watch::Sender<bool>,
    counters: Counters,
    writes: Writes,
    /// Where filled entries waiting for their protection go ([`Confirmer::protect_with`]).
    protect: Mutex<Option<tokio::sync::mpsc::UnboundedSender<ProtectJob>>>,
    /// Each subscribed account's equity from the `wallet` topic.
    equity: equity::EquityCache,
}

/// Keeps `orders` and `fills` true to the exchange. Cheap to clone; call [`Confirmer::shutdown`]
/// to close the streams (the tasks hold the shared state, so dropping the last clone does not).
#[derive(Clone)]
pub struct Confirmer {
    inner: Arc<Inner>,
}

impl Confirmer {
    /// Starts the background reconciliation; must be called inside a Tokio runtime.
    pub fn new(
        pool: Pool,
        rest: BybitRest,
        keys: Arc<KeyCache>,
        private_ws_url: impl Into<String>,
    ) -> Confirmer {
        Confirmer::with_config(pool, rest, keys, ConfirmerConfig::new(private_ws_url))
    }

    pub fn with_config(
        pool: Pool,
        rest: BybitRest,
        keys: Arc<KeyCache>,
        config: ConfirmerConfig,
    ) -> Confirmer {
        let (writes, queue) = writer::channel();
        let equity = equity::EquityCache::new(config.equity_max_age_with_position);
        let inner = Arc::new(Inner {
            pool,
            rest,
            config,
            keys,
            accounts: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            shutdown: watch::channel(false).0,
            counters: Counters::default(),
            writes,
            protect: Mutex::new(None),
            equity,
        });
        let background = tokio::spawn(catch_up::run_background(inner.clone()));
        let writer = tokio::spawn(writer::run(inner.clone(), queue));
        lock(&inner.tasks).extend([background, writer]);
        Confirmer { inner }
    }

    /// Opens the account's private stream unless it is open already, and returns once it has been
    /// subscribed at least once. After `connect_wait` without that it returns an error but the
    /// stream keeps trying (fills are then still found by reconciliation). Refuses keys that are
    /// revoked or marked unusable.
    #[tracing::instrument(skip_all, fields(%api_key_id))]
    pub async fn ensure_account(&self, api_key_id: Uuid, credentials: Credentials) -> anyhow::Result<()> {
        if *self.inner.shutdown.borrow() {
            bail!("the confirmer is shut down");
        }
        let mut state = match self.inner.account_state(api_key_id) {
            Some(state) => state,
            None => {
                let client = self.inner.pool.get().await.context("database pool")?;
                if let Some(refusal) = api_key_store::refusal(&**client, api_key_id).await? {
                    bail!("api key {api_key_id} cannot be used: {refusal}");
                }
                drop(client);
                self.inner.open_account(api_key_id, credentials)
            }
        };
        let waited = tokio::time::timeout(
            self.inner.config.connect_wait,
            state.wait_for(|s| !matches!(s, StreamState::Connecting)),
        )
        .await;
        match waited {
            Err(_) => bail!(
                "private stream of api key {api_key_id} not subscribed within {:?}; it keeps trying",
                self.inner.config.connect_wait
            ),
            Ok(Err(_)) => bail!("private stream task of api key {api_key_id} ended"),
            Ok(Ok(state)) => match &*state {
                StreamState::Stopped { reason } => {
                    bail!("private stream of api key {api_key_id} stopped: {reason}")
                }
                _ => Ok(()),
            },
        }
    }

    /// Filled entries whose protection waits for the fill price are sent here (crate::protect).
    pub fn protect_with(&self, jobs: tokio::sync::mpsc::UnboundedSender<ProtectJob>) {
        *lock(&self.inner.protect) = Some(jobs);
    }

    /// The opened credentials of an account whose stream is kept.
    pub fn credentials(&self, api_key_id: Uuid) -> Option<Credentials> {
        lock(&self.inner.accounts)
            .get(&api_key_id)
            .map(|a| a.credentials.clone())
    }

    /// The account's stream state, if the confirmer has opened it.
    pub fn stream_state(&self, api_key_id: Uuid) -> Option<StreamState> {
        lock(&self.inner.accounts)
            .get(&api_key_id)
            .map(|entry| entry.state.borrow().clone())
    }

    /// The equities the private streams keep fresh (sizing reads them before asking REST).
    pub fn equity(&self) -> &equity::EquityCache {
        &self.inner.equity
    }

    pub fn stats(&self) -> ConfirmStats {
        let c = &self.inner.counters;
        ConfirmStats {
            order_updates_applied: c.order_updates_applied.load(Ordering::Relaxed),
            fills_inserted: c.fills_inserted.load(Ordering::Relaxed),
            order_lookups: c.order_lookups.load(Ordering::Relaxed),
            background_passes: c.background_passes.load(Ordering::Relaxed),
            write_batches: c.write_batches.load(Ordering::Relaxed),
            largest_batch: c.largest_batch.load(Ordering::Relaxed),
            batches_split: c.batches_split.load(Ordering::Relaxed),
        }
    }

    /// Applies one exchange order state (a push, or a REST answer the caller already has, such as
    /// the lookup after a 110072) to the row with that orderLinkId of that account, returning once
    /// committed. `None` when no such row exists.
    pub async fn apply_order(&self, api_key_id: Uuid, order: &Order) -> anyhow::Result<Option<AppliedOrder>> {
        self.inner.apply_order(api_key_id, order).await
    }

    /// Records one fill, returning once committed; false when it was already recorded or the
    /// order is not ours.
    pub async fn apply_execution(&self, api_key_id: Uuid, execution: &Execution) -> anyhow::Result<bool> {
        self.inner.apply_execution(api_key_id, execution).await
    }

    /// Disables a key: marks its row unusable with `reason` (the first reason is kept), drops its
    /// opened credentials and closes its private stream, so nothing is sent with it again. The
    /// in-memory parts happen even when the database cannot be written; the error says so.
    pub async fn disable_key(&self, api_key_id: Uuid, reason: &str) -> anyhow::Result<()> {
        self.inner.disable_key(api_key_id, reason).await
    }

    /// Looks up every open order of the account over REST now (what happens after each reconnect).
    pub async fn reconcile_account(&self, api_key_id: Uuid) -> anyhow::Result<()> {
        let credentials = lock(&self.inner.accounts)
            .get(&api_key_id)
            .map(|entry| entry.credentials.clone())
            .with_context(|| format!("api key {api_key_id} has no open stream"))?;
        self.inner.reconcile_account(api_key_id, &credentials).await
    }

    /// Closes the account's private stream (its task ends), if open: the account moved to another
    /// executor (docs/deployment.md#several-executors). Its rows stay as they are; the new owner's
    /// stream reconciles them after it connects.
    pub fn close_account(&self, api_key_id: Uuid) -> bool {
        self.inner.equity.forget(api_key_id);
        lock(&self.inner.accounts).remove(&api_key_id).is_some()
    }

    /// The accounts whose stream this confirmer keeps (connected or reconnecting).
    pub fn open_accounts(&self) -> Vec<Uuid> {
        lock(&self.inner.accounts)
            .iter()
            .filter(|(_, entry)| !matches!(*entry.state.borrow(), StreamState::Stopped { .. }))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Closes every stream and stops the background reconciliation without waiting for them: what
    /// an executor dropped without a shutdown (a killed task in a test) does, as a killed process's
    /// sockets would close.
    pub fn stop_now(&self) {
        self.inner.shutdown.send_replace(true);
        lock(&self.inner.accounts).clear();
    }

    /// Closes every stream and stops the background reconciliation.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        lock(&self.inner.accounts).clear();
        let tasks: Vec<JoinHandle<()>> = lock(&self.inner.tasks).drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// The protected maps are only touched in short critical sections with no await inside, so a
/// poisoned lock can only come from a panic elsewhere; the data is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
