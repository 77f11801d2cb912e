//! HUMBEX executor: wakes on NOTIFY or a sweep, claims signals under a lease, plans one order per
//! target account, commits the rows, and places them on Bybit over REST without ever sending one
//! twice.

pub mod account_order;
pub mod break_even;
pub mod cancel;
pub mod claim;
pub mod confirm;
pub mod failpoint;
pub mod instruments;
pub mod key_recheck;
pub mod keys;
pub mod metrics;
pub mod notify;
pub mod orders;
pub mod owned_orders;
pub mod ownership;
pub mod pipeline;
pub mod plan;
pub mod plan_v2;
pub mod protect;
pub mod settle;
pub mod submit;
pub mod trade;
pub mod wakeup;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use deadpool_postgres::Pool;
use humbex_bybit::BybitRest;
use humbex_shared::api_key_vault::Opener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::pipeline::Context;
use crate::wakeup::Wakeup;

/// How the executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// Unique per process: who holds a claim.
    pub executor_id: String,
    pub poll_interval: Duration,
    /// A claim not renewed for this long is taken over by another executor.
    pub lease: Duration,
    /// Signals processed at once.
    pub concurrency: usize,
    /// Symbols whose instrument rules are loaded at start-up.
    pub symbols: Vec<String>,
    /// How often every usable key is asked about again (KEY_RECHECK_INTERVAL_SECS).
    pub key_recheck_interval: Duration,
    /// The rule those re-checks apply (the one ingest applies when a key is added).
    pub key_policy: humbex_bybit::KeyPolicy,
    /// Private streams opened per minute at most when accounts are taken over
    /// (EXECUTOR_STREAM_CONNECTS_PER_MINUTE).
    pub stream_connects_per_minute: u32,
}

impl ExecutorSettings {
    pub fn new(poll_interval: Duration, symbols: Vec<String>) -> Self {
        ExecutorSettings {
            executor_id: format!(
                "executor-{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            poll_interval,
            // Short enough that a dead executor's signals move on within seconds; a live one
            // renews every third of it. Even a wrongly expired lease cannot double an order: the
            // order rows and their orderLinkIds are fixed, so a second try is found, not re-sent.
            lease: Duration::from_secs(10),
            // Signals, not connections: a signal holds a pooled connection only for its grouped
            // writes, and waits on the exchange (and its account's pace) without one.
            concurrency: 256,
            symbols,
            key_recheck_interval: Duration::from_secs(86_400),
            key_policy: humbex_bybit::KeyPolicy::default(),
            stream_connects_per_minute: 100,
        }
    }
}

/// A built executor, ready to run.
pub struct Executor {
    ctx: Arc<Context>,
    pg: humbex_shared::db::PgConfig,
    settings: ExecutorSettings,
    /// The notification sender, run beside the executor's own tasks (docs/notifications.md).
    notifier: Option<Arc<notify::Notifier>>,
}

impl Executor {
    /// `private_ws_url` is Bybit's private WebSocket (or the paper exchange's). Needs a Tokio runtime.
    pub fn new(
        settings: ExecutorSettings,
        pool: Pool,
        pg: humbex_shared::db::PgConfig,
        opener: Opener,
        rest: BybitRest,
        private_ws_url: &str,
    ) -> Self {
        let keys = Arc::new(keys::KeyCache::new(opener));
        let rest = rest.observed(Arc::new(metrics::ExchangeMetrics));
        let ctx = Context {
            executor_id: settings.executor_id.clone(),
            in_flight: Default::default(),
            confirmer: confirm::Confirmer::new(pool.clone(), rest.clone(), keys.clone(), private_ws_url),
            pool: pool.clone(),
            keys,
            instruments: instruments::InstrumentCache::new(rest.clone()),
            rest,
            pacer: submit::AccountPacer::default(),
            settler: settle::Settler::start(pool.clone(), settings.executor_id.clone()),
            ownership: ownership::Ownership::new(
                settings.executor_id.clone(),
                settings.lease,
                settings.stream_connects_per_minute,
            ),
            accounts: Default::default(),
        };
        Executor {
            ctx: Arc::new(ctx),
            pg,
            settings,
            notifier: None,
        }
    }

    /// The confirmer this executor keeps its private streams with (tests watch its state).
    pub fn confirmer(&self) -> confirm::Confirmer {
        self.ctx.confirmer.clone()
    }

    /// Also run `notifier` (it starts after the encryption keys are checked).
    pub fn with_notifier(mut self, notifier: notify::Notifier) -> Self {
        self.notifier = Some(Arc::new(notifier));
        self
    }

    /// Run until `shutdown` completes, then let in-flight signals finish (bounded).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Executor {
            ctx,
            pg,
            settings,
            notifier,
        } = self;
        check_encryption_keys(&ctx).await?;
        let _notifier = match notifier {
            Some(n) => {
                n.check_destinations().await?;
                Some(AbortOnDrop(tokio::spawn(n.run_until(std::future::pending()))))
            }
            None => None,
        };
        ctx.instruments.warm(&settings.symbols).await;
        let (wake_tx, mut wakeups) = mpsc::channel(1024);
        // Abort-on-drop: if this future is dropped (the task is aborted), the renewer must not
        // keep a dead executor's leases alive.
        let _listener = AbortOnDrop(tokio::spawn(wakeup::run(pg, settings.poll_interval, wake_tx)));
        let _renewer = AbortOnDrop(tokio::spawn(renew_leases(ctx.clone(), settings.lease)));
        let _evictor = AbortOnDrop(tokio::spawn(keys::evict_idle_forever(
            ctx.keys.clone(),
            keys::IDLE_EVICTION,
        )));
        // Entries filled with protection to set after the fill (percent TP/SL, trailing stop).
        let (protect_tx, protect_rx) = mpsc::unbounded_channel();
        ctx.confirmer.protect_with(protect_tx);
        let _protector = AbortOnDrop(tokio::spawn(protect::run(ctx.clone(), protect_rx)));
        // cancel_after_secs timers (durable in orders.cancel_at).
        let _cancels = AbortOnDrop(tokio::spawn(cancel::sweep(ctx.clone())));
        // The accounts this executor owns in the fleet, and their streams
        // (docs/deployment.md#several-executors). The first pass registers the executor before
        // any claim routes orders by account.
        if let Err(e) = ctx.ownership.pass(&ctx).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "first account lease pass failed; retrying"
            );
        }
        let _ownership = AbortOnDrop(tokio::spawn(ownership::run(ctx.clone())));
        let owned_stop = Arc::new(tokio::sync::Notify::new());
        let mut owned_orders = AbortOnDrop(tokio::spawn(owned_orders::run(
            ctx.clone(),
            settings.poll_interval,
            owned_stop.clone(),
        )));
        let _pending = AbortOnDrop(tokio::spawn(metrics::count_pending_forever(
            ctx.pool.clone(),
            metrics::PENDING_INTERVAL,
        )));
        let _rechecks = AbortOnDrop(tokio::spawn(key_recheck::run(
            ctx.clone(),
            settings.key_recheck_interval,
            settings.key_policy.clone(),
        )));
        let permits = Arc::new(Semaphore::new(settings.concurrency));
        let mut in_flight = JoinSet::new();
        tracing::info!(executor_id = %settings.executor_id, "executor running");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a signal task panicked; its lease will expire and it is retried");
                    }
                }
                wake = wakeups.recv() => {
                    let Some(wake) = wake else { break };
                    // Every wake-up already queued is served by one claim: under load, one
                    // statement claims the signals of many notifications.
                    let mut named = Vec::new();
                    let mut sweep = false;
                    for wake in std::iter::once(wake).chain(std::iter::from_fn(|| wakeups.try_recv().ok())) {
                        match wake {
                            Wakeup::Signal(id) => named.push(id),
                            Wakeup::Sweep => {
                                sweep = true;
                                ctx.ownership.pending.notify_one();
                            }
                            Wakeup::Accounts(to) if to == "*" => ctx.ownership.rebalance.notify_one(),
                            Wakeup::Accounts(to) if to == settings.executor_id => {
                                ctx.ownership.pending.notify_one()
                            }
                            Wakeup::Accounts(_) => {}
                        }
                        if named.len() >= CLAIM_BATCH as usize {
                            break;
                        }
                    }
                    if !sweep && named.is_empty() {
                        continue;
                    }
                    let only = (!sweep).then_some(named.as_slice());
                    if let Err(e) = claim_and_spawn(&ctx, &settings, only, &permits, &mut in_flight).await {
                        tracing::warn!(error = ?e, "claiming signals failed; the next wake-up retries");
                    }
                }
            }
        }
        drop(_renewer);
        // In-flight orders, the claimed signals' and the owned accounts' alike, finish recording
        // (their rows say what happened), in one bound so a hung exchange cannot hold shutdown
        // forever. Leases cover anything cut short. Then every account is handed over at once.
        owned_stop.notify_one();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while in_flight.join_next().await.is_some() {}
            let _ = (&mut owned_orders.0).await;
        })
        .await;
        drop(_ownership);
        // Streams close first, so the next owners' streams never overlap with these.
        ctx.confirmer.stop_now();
        match ctx.pool.get().await {
            Ok(client) => match ctx.ownership.hand_over(&client).await {
                Ok(()) => tracing::info!("accounts handed over to the fleet"),
                Err(e) => tracing::warn!(error = ?e, "handing the accounts over failed; their leases expire"),
            },
            Err(e) => {
                tracing::warn!(error = ?e, "no database connection to hand the accounts over; their leases expire")
            }
        }
        ctx.confirmer.shutdown().await;
        tracing::info!("executor stopped");
        Ok(())
    }
}

/// Refuse to start when a stored API key does not open with the configured encryption keys (one
/// per key id): a wrong ENCRYPTION_PRIVATE_KEY or ENCRYPTION_KEY_HEX is a configuration error, found
/// here before any order, rather than a failure of every user's key.
async fn check_encryption_keys(ctx: &Context) -> anyhow::Result<()> {
    use humbex_shared::crypto::{CryptoError, Format, blob_format};
    let client = ctx
        .pool
        .get()
        .await
        .context("database for the encryption key check")?;
    for key in humbex_shared::api_key_store::newest_per_key_id(&**client).await? {
        let Err(error) = ctx.keys.check_opens(key.row, key.sealed.stored()) else {
            continue;
        };
        let variable = match blob_format(&key.sealed.secret_enc) {
            Ok((Format::PublicKey, _)) | Err(CryptoError::UnknownPrivateKey(_)) => "ENCRYPTION_PRIVATE_KEY",
            _ => "ENCRYPTION_KEY_HEX / ENCRYPTION_KEYS",
        };
        let key_id = humbex_shared::crypto::blob_key_id(&key.sealed.secret_enc)
            .map(|id| id.to_string())
            .unwrap_or_else(|_| "?".into());
        anyhow::bail!(
            "{variable}: the stored API key {} (encryption key id {key_id}) does not open with the \
             configured keys ({error}); the executor will not start with a wrong key. No API key was \
             marked unusable.",
            key.row.id
        );
    }
    Ok(())
}

/// Aborts the task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long a stopping executor lets its in-flight orders finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Signals claimed by one statement at most.
const CLAIM_BATCH: i64 = 128;

/// Claim what can be worked on now (only among `only`, when given) and start each claimed batch
/// as one task. Permits are taken before the claim, so nothing is claimed that must then wait.
async fn claim_and_spawn(
    ctx: &Arc<Context>,
    settings: &ExecutorSettings,
    only: Option<&[uuid::Uuid]>,
    permits: &Arc<Semaphore>,
    in_flight: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    loop {
        let wanted = match only {
            Some(ids) => ids.len().max(1),
            None => CLAIM_BATCH as usize,
        };
        let mut held = vec![permits.clone().acquire_owned().await?];
        while held.len() < wanted {
            match permits.clone().try_acquire_owned() {
                Ok(permit) => held.push(permit),
                Err(_) => break,
            }
        }
        let limit = held.len() as i64;
        let claimed = {
            let client = ctx.pool.get().await?;
            claim::claim(&client, &settings.executor_id, limit, only, settings.lease).await?
        };
        let count = claimed.len() as i64;
        if count > 0 {
            let batch = claimed
                .into_iter()
                .zip(held.drain(..))
                .map(|(work, permit)| {
                    let id = work.signal.id;
                    (work, pipeline::Held::new(ctx.clone(), id, permit))
                })
                .collect();
            in_flight.spawn(pipeline::process_batch(ctx.clone(), batch));
        }
        // Unused permits go back with `held`.
        if count < limit || only.is_some_and(|ids| limit as usize >= ids.len()) {
            return Ok(());
        }
    }
}

async fn renew_leases(ctx: Arc<Context>, lease: Duration) {
    let mut every = tokio::time::interval(lease / 3);
    loop {
        every.tick().await;
        match ctx.pool.get().await {
            Ok(client) => {
                let working: Vec<uuid::Uuid> = ctx
                    .in_flight
                    .lock()
                    .expect("in-flight lock")
                    .iter()
                    .copied()
                    .collect();
                if let Err(e) = claim::renew(&client, &ctx.executor_id, &working, lease).await {
                    tracing::warn!(error = ?e, "renewing leases failed");
                }
            }
            Err(e) => tracing::warn!(error = ?e, "renewing leases: no database connection"),
        }
    }
}
