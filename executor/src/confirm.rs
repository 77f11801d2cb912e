//! Fill confirmation: one private WebSocket per account, opened before the account's first order
//! and kept open; pushes update `orders` and insert `fills`; REST reconciliation after every
//! (re)connect and for orders still unconfirmed a few seconds after submission, so a lost push or
//! a dropped socket never loses a fill. Keys the exchange refuses are disabled here, and
//! [`Confirmer::disable_key`] is the one way any part of the executor disables a key.
//!
//! Every write is monotone (see [`store`]): pushes, replays and REST snapshots can arrive in any
//! order and any number of times and the row still ends where the exchange is. All of them go
//! through one [`writer`] task that commits whatever queued meanwhile in one transaction.

pub mod foreign;
pub mod store;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use humbex_bybit::{
    BybitError, BybitRest, Credentials, Execution, ExecutionFilter, Order, OrderLinkId, PrivateStream,
    PrivateStreamConfig, PrivateTopic, StreamEvent,
};
use humbex_shared::api_key_store;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

pub use store::{AppliedOrder, OpenOrder, ProtectJob};

use humbex_shared::metrics::{StreamGauge, StreamState as GaugeState};
use store::{Event, Outcome};

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
        });
        let background = tokio::spawn(run_background(inner.clone()));
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

    /// The account's stream state, if the confirmer has opened it.
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

    pub fn stream_state(&self, api_key_id: Uuid) -> Option<StreamState> {
        lock(&self.inner.accounts)
            .get(&api_key_id)
            .map(|entry| entry.state.borrow().clone())
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

/// What a lookup found.
enum Lookup {
    Applied,
    UnknownToExchange,
}

impl Inner {
    fn request_protection(&self, job: ProtectJob) {
        let sent = lock(&self.protect)
            .as_ref()
            .map(|jobs| jobs.send(job.clone()).is_ok());
        if sent != Some(true) {
            tracing::warn!(order_id = %job.order_id, "a filled entry needs protection and nothing sets it");
        }
    }

    fn account_state(&self, api_key_id: Uuid) -> Option<watch::Receiver<StreamState>> {
        let mut accounts = lock(&self.accounts);
        let entry = accounts.get(&api_key_id)?;
        if matches!(*entry.state.borrow(), StreamState::Stopped { .. }) {
            accounts.remove(&api_key_id);
            return None;
        }
        Some(entry.state.clone())
    }

    fn open_account(
        self: &Arc<Self>,
        api_key_id: Uuid,
        credentials: Credentials,
    ) -> watch::Receiver<StreamState> {
        let mut accounts = lock(&self.accounts);
        // Another caller may have opened it while this one checked the key.
        if let Some(entry) = accounts.get(&api_key_id)
            && !matches!(*entry.state.borrow(), StreamState::Stopped { .. })
        {
            return entry.state.clone();
        }
        let (state_tx, state_rx) = watch::channel(StreamState::Connecting);
        let (stop_tx, stop_rx) = watch::channel(());
        let task = tokio::spawn(run_account(
            self.clone(),
            api_key_id,
            credentials.clone(),
            state_tx,
            stop_rx,
        ));
        accounts.insert(
            api_key_id,
            AccountEntry {
                credentials,
                state: state_rx.clone(),
                _stop: stop_tx,
            },
        );
        drop(accounts);
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        state_rx
    }

    /// Queues one event for the writer; `reply` hears the outcome once it is committed.
    async fn queue_write(
        &self,
        api_key_id: Uuid,
        event: Event,
        reply: Option<oneshot::Sender<anyhow::Result<Outcome>>>,
    ) -> anyhow::Result<()> {
        let request = writer::Request {
            api_key_id,
            event,
            reply,
            queued_at: Instant::now(),
        };
        self.writes
            .send(request)
            .await
            .map_err(|_| anyhow::anyhow!("the confirmation writer has stopped"))
    }

    /// Queues the event and waits until it is committed.
    async fn write(&self, api_key_id: Uuid, event: Event) -> anyhow::Result<Outcome> {
        let (reply, outcome) = oneshot::channel();
        self.queue_write(api_key_id, event, Some(reply)).await?;
        outcome
            .await
            .map_err(|_| anyhow::anyhow!("the confirmation writer stopped before answering"))?
    }

    async fn apply_order(&self, api_key_id: Uuid, order: &Order) -> anyhow::Result<Option<AppliedOrder>> {
        match self.write(api_key_id, Event::Order(order.clone())).await? {
            Outcome::Order(applied) => Ok(applied),
            Outcome::Fill(_) => bail!("the writer answered an order update with a fill outcome"),
        }
    }

    async fn apply_execution(&self, api_key_id: Uuid, execution: &Execution) -> anyhow::Result<bool> {
        if !is_order_fill(execution) {
            return Ok(false);
        }
        match self
            .write(api_key_id, Event::Execution(execution.clone()))
            .await?
        {
            Outcome::Fill(inserted) => Ok(inserted.is_some()),
            Outcome::Order(_) => bail!("the writer answered a fill with an order outcome"),
        }
    }

    /// Looks one order up by orderLinkId and applies what the exchange says, fills first, so
    /// that when the row's NOTIFY of `filled` fires its fills are already there.
    #[tracing::instrument(skip_all, fields(order_link_id = %order.order_link_id, api_key_id = %order.api_key_id))]
    async fn reconcile_order(&self, credentials: &Credentials, order: &OpenOrder) -> anyhow::Result<Lookup> {
        let link_id = OrderLinkId::parse(order.order_link_id.clone()).map_err(anyhow::Error::msg)?;
        self.counters.order_lookups.fetch_add(1, Ordering::Relaxed);
        let found = self
            .exchange_call(
                order.api_key_id,
                self.rest
                    .get_order_by_link_id(credentials, &order.symbol, &link_id),
            )
            .await?;
        let Some(exchange_order) = found else {
            // Only the submit pipeline may decide that a pending order was never placed; a
            // submitted one the exchange cannot find yet is visibility lag, not a verdict.
            tracing::info!(status = %order.status, "order not known to the exchange (yet); left as it is");
            return Ok(Lookup::UnknownToExchange);
        };
        if exchange_order.cum_exec_qty > rust_decimal::Decimal::ZERO {
            let fills = self
                .exchange_call(
                    order.api_key_id,
                    execution_list(&self.rest, credentials, &order.symbol, link_id),
                )
                .await?;
            for fill in &fills {
                self.apply_execution(order.api_key_id, fill).await?;
            }
        }
        self.apply_order(order.api_key_id, &exchange_order).await?;
        Ok(Lookup::Applied)
    }

    /// Runs one exchange call; a key the exchange refuses is disabled on the spot.
    async fn exchange_call<T>(
        &self,
        api_key_id: Uuid,
        call: impl Future<Output = Result<humbex_bybit::BybitResponse<T>, BybitError>>,
    ) -> anyhow::Result<T> {
        match call.await {
            Ok(answer) => Ok(answer.value),
            Err(e) if e.key_unusable() => {
                if let Err(db) = self.disable_key(api_key_id, &e.to_string()).await {
                    tracing::error!(%api_key_id, error = ?db, "could not mark the api key unusable");
                }
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    #[tracing::instrument(skip_all, fields(%api_key_id))]
    async fn reconcile_account(&self, api_key_id: Uuid, credentials: &Credentials) -> anyhow::Result<()> {
        let open = {
            let client = self.pool.get().await.context("database pool")?;
            store::open_orders_of_account(&client, api_key_id).await?
        };
        tracing::info!(open = open.len(), "reconciling the account's open orders");
        for order in &open {
            match self.reconcile_order(credentials, order).await {
                Ok(_) => {}
                Err(e)
                    if e.downcast_ref::<BybitError>()
                        .is_some_and(BybitError::key_unusable) =>
                {
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(order_link_id = %order.order_link_id, error = %e, "reconciliation of an order failed; the background pass retries")
                }
            }
        }
        Ok(())
    }

    /// Start (or resume) serving an account whose stream is now subscribed, the same whether it
    /// was opened at start-up, for an account taken over from another executor, or after a
    /// reconnect. Pushes sent while the socket was down or not yet subscribed are lost and never
    /// sent again; the REST state fills the gap: open orders, then positions (a mark price past
    /// a break-even trigger among them). Pushes arriving meanwhile wait in the stream's channel
    /// and are applied after, which the monotone writes make harmless.
    async fn catch_up(&self, api_key_id: Uuid, credentials: &Credentials) {
        if let Err(e) = self.reconcile_account(api_key_id, credentials).await {
            tracing::warn!(error = %e, "reconciliation after connect failed");
        }
        if let Err(e) = self.catch_up_positions(api_key_id, credentials).await {
            tracing::warn!(error = format!("{e:#}"), "reading positions after connect failed");
        }
    }

    /// A position as the exchange reports it (push or REST): kept in `positions` (not on an
    /// order's path: written directly, newest seq wins in the statement) and held against the
    /// account's break-even watch.
    async fn apply_position(
        &self,
        api_key_id: Uuid,
        credentials: &Credentials,
        position: &humbex_bybit::Position,
    ) -> anyhow::Result<()> {
        let client = self.pool.get().await?;
        foreign::upsert_position(&client, api_key_id, position).await?;
        crate::break_even::on_position(&client, &self.rest, credentials, api_key_id, position).await?;
        Ok(())
    }

    /// The account's open positions over REST (see [`Inner::catch_up`]).
    #[tracing::instrument(skip_all, fields(%api_key_id))]
    async fn catch_up_positions(&self, api_key_id: Uuid, credentials: &Credentials) -> anyhow::Result<()> {
        let positions = self
            .rest
            .open_positions(credentials)
            .await
            .context("position list")?;
        for position in &positions {
            self.apply_position(api_key_id, credentials, position).await?;
        }
        Ok(())
    }

    /// See [`Confirmer::disable_key`]. Removing the account's entry drops its stop sender, which
    /// ends the stream's task.
    #[tracing::instrument(skip_all, fields(%api_key_id))]
    async fn disable_key(&self, api_key_id: Uuid, reason: &str) -> anyhow::Result<()> {
        tracing::warn!(%reason, "exchange key marked unusable");
        self.keys.forget(api_key_id);
        lock(&self.accounts).remove(&api_key_id);
        let client = self.pool.get().await.context("database pool")?;
        api_key_store::mark_unusable(&**client, api_key_id, reason).await?;
        Ok(())
    }

    /// One background pass: look up the unconfirmed orders of every open account whose recheck
    /// time has come.
    async fn reconcile_unconfirmed(
        &self,
        due: &mut HashMap<Uuid, (Instant, Duration)>,
    ) -> anyhow::Result<()> {
        let accounts: HashMap<Uuid, Credentials> = lock(&self.accounts)
            .iter()
            .filter(|(_, entry)| !matches!(*entry.state.borrow(), StreamState::Stopped { .. }))
            .map(|(id, entry)| (*id, entry.credentials.clone()))
            .collect();
        if accounts.is_empty() {
            due.clear();
            return Ok(());
        }
        let ids: Vec<Uuid> = accounts.keys().copied().collect();
        let orders = {
            let client = self.pool.get().await.context("database pool")?;
            store::unconfirmed_orders(
                &client,
                &ids,
                self.config.unconfirmed_after,
                self.config.reconcile_batch,
            )
            .await?
        };
        // Orders that left the result set are settled; forget their backoff.
        due.retain(|id, _| orders.iter().any(|o| o.id == *id));
        let now = Instant::now();
        let ready: Vec<&OpenOrder> = orders
            .iter()
            .filter(|o| due.get(&o.id).is_none_or(|(at, _)| *at <= now))
            .collect();
        futures_util::stream::iter(ready.iter().copied())
            .for_each_concurrent(self.config.reconcile_concurrency.max(1), |order| {
                let credentials = &accounts[&order.api_key_id];
                async move {
                    match self.reconcile_order(credentials, order).await {
                        Ok(Lookup::Applied) | Ok(Lookup::UnknownToExchange) => {}
                        Err(e) => tracing::warn!(order_link_id = %order.order_link_id, error = %e, "background reconciliation failed"),
                    }
                }
            })
            .await;
        let now = Instant::now();
        for order in ready {
            let delay = due
                .get(&order.id)
                .map(|(_, d)| (*d * 2).min(self.config.max_recheck_delay))
                .unwrap_or(self.config.reconcile_interval);
            due.insert(order.id, (now + delay, delay));
        }
        Ok(())
    }
}

/// Fills of an order: a trade, or a liquidation's (`BustTrade`) or ADL's (`AdlTrade`), recorded on
/// the order the exchange created. Funding and settlement rows are not fills of an order.
fn is_order_fill(execution: &Execution) -> bool {
    let fill = matches!(execution.exec_type.as_str(), "Trade" | "BustTrade" | "AdlTrade")
        && execution.exec_qty > rust_decimal::Decimal::ZERO;
    if !fill {
        tracing::debug!(exec_id = %execution.exec_id, exec_type = %execution.exec_type, "execution is not an order fill; ignored");
    }
    fill
}

#[tracing::instrument(skip_all, fields(order_link_id = %link_id))]
async fn execution_list(
    rest: &BybitRest,
    credentials: &Credentials,
    symbol: &str,
    link_id: OrderLinkId,
) -> Result<humbex_bybit::BybitResponse<Vec<Execution>>, BybitError> {
    rest.execution_list(credentials, symbol, &ExecutionFilter::OrderLinkId(link_id))
        .await
}

async fn run_background(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut interval = tokio::time::interval(inner.config.reconcile_interval);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut due = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = interval.tick() => {}
        }
        let pass = inner.reconcile_unconfirmed(&mut due);
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            result = pass => if let Err(e) = result {
                tracing::warn!(error = %e, "background reconciliation pass failed");
            }
        }
        inner.counters.background_passes.fetch_add(1, Ordering::Relaxed);
    }
}

/// One account: owns its private stream and applies what it delivers, in order. Every await on
/// the database or REST below is boxed: a task is allocated at the size of its largest await for
/// as long as it lives, and unboxed they made each idle account's task 10.5 KiB (massif, 500
/// accounts); boxed, that memory exists only while a push or a reconnect is being handled.
#[tracing::instrument(skip_all, fields(%api_key_id))]
async fn run_account(
    inner: Arc<Inner>,
    api_key_id: Uuid,
    credentials: Credentials,
    state: watch::Sender<StreamState>,
    mut stop: watch::Receiver<()>,
) {
    let config = PrivateStreamConfig {
        reconnect_initial_delay: inner.config.reconnect_initial_delay,
        reconnect_max_delay: inner.config.reconnect_max_delay,
        // The position topic keeps `positions` (and feeds break-even's mark price).
        topics: vec![
            PrivateTopic::Order,
            PrivateTopic::Execution,
            PrivateTopic::Position,
        ],
        ..PrivateStreamConfig::new(inner.config.private_ws_url.clone(), credentials.clone())
    };
    let (handle, mut events) = PrivateStream::spawn(config);
    let mut gauge = StreamGauge::new(GaugeState::Connecting);
    let mut shutdown = inner.shutdown.subscribe();
    let reason = loop {
        let event = tokio::select! {
            // Resolves with an error once the entry (and with it the sender) is removed.
            _ = stop.changed() => break "closed".to_string(),
            _ = shutdown.wait_for(|stop| *stop) => break "the confirmer shut down".to_string(),
            event = events.recv() => match event {
                Some(event) => event,
                None => break "the stream ended".to_string(),
            },
        };
        match event {
            StreamEvent::Connected { session } => {
                gauge.set(GaugeState::Connected);
                state.send_replace(StreamState::Connected { session });
                Box::pin(inner.catch_up(api_key_id, &credentials)).await;
            }
            StreamEvent::Disconnected { reason } => {
                tracing::info!(%reason, "private stream disconnected; reconnecting");
                gauge.set(GaugeState::Reconnecting);
                state.send_replace(StreamState::Disconnected { reason });
            }
            StreamEvent::AuthFailed { message } => {
                // A WS auth refusal can also be clock skew; REST says whether the key itself is bad.
                match Box::pin(inner.rest.query_api(&credentials)).await {
                    Err(e) if e.key_unusable() => {
                        if let Err(db) = Box::pin(inner.disable_key(api_key_id, &e.to_string())).await {
                            tracing::error!(error = ?db, "could not mark the api key unusable");
                        }
                        break format!("api key unusable: {e}");
                    }
                    Ok(_) => {
                        tracing::error!(%message, "private stream auth refused but the key works over REST; retrying later")
                    }
                    Err(e) => {
                        tracing::warn!(%message, error = %e, "private stream auth refused; key check over REST failed too, retrying later")
                    }
                }
            }
            // Pushes are queued without waiting for their commit: the writer keeps their order and
            // logs a failed write, which reconciliation then repairs.
            StreamEvent::OrderUpdate(order) => {
                let link_id = order.order_link_id.clone();
                if let Err(e) = Box::pin(inner.queue_write(api_key_id, Event::Order(*order), None)).await {
                    tracing::error!(order_link_id = %link_id, error = %e, "order push not applied; reconciliation will catch up");
                }
            }
            StreamEvent::Execution(fill) => {
                if is_order_fill(&fill) {
                    let exec_id = fill.exec_id.clone();
                    if let Err(e) =
                        Box::pin(inner.queue_write(api_key_id, Event::Execution(*fill), None)).await
                    {
                        tracing::error!(%exec_id, error = %e, "fill push not recorded; reconciliation will catch up");
                    }
                }
            }
            StreamEvent::PositionUpdate(position) => {
                if let Err(e) = Box::pin(inner.apply_position(api_key_id, &credentials, &position)).await {
                    tracing::warn!(symbol = %position.symbol, error = %e, "position push not recorded");
                }
            }
            // Not subscribed by this stream.
            StreamEvent::WalletUpdate(_) => {}
            StreamEvent::Unparsed { reason } => {
                tracing::warn!(%reason, "undecodable push; reconciling the account");
                if let Err(e) = Box::pin(inner.reconcile_account(api_key_id, &credentials)).await {
                    tracing::warn!(error = %e, "reconciliation after an undecodable push failed");
                }
            }
        }
    };
    handle.shutdown().await;
    drop(gauge);
    tracing::info!(%reason, "private stream closed");
    state.send_replace(StreamState::Stopped { reason });
}
