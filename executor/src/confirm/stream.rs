//! The lifecycle of one account's private stream: opened once per account (a second caller gets the
//! same one), its pushes dispatched in order as they arrive, a catch-up over REST after every
//! (re)subscription, closed for good when the key is disabled, the account leaves or the confirmer
//! stops.

use std::sync::Arc;

use anyhow::Context;
use humbex_bybit::{Credentials, PrivateStream, PrivateStreamConfig, PrivateTopic, StreamEvent};
use humbex_shared::api_key_store;
use humbex_shared::metrics::{StreamGauge, StreamState as GaugeState};
use tokio::sync::watch;
use uuid::Uuid;

use super::events::is_order_fill;
use super::store::Event;
use super::{AccountEntry, Inner, StreamState, lock};

impl Inner {
    pub(super) fn account_state(&self, api_key_id: Uuid) -> Option<watch::Receiver<StreamState>> {
        let mut accounts = lock(&self.accounts);
        let entry = accounts.get(&api_key_id)?;
        if matches!(*entry.state.borrow(), StreamState::Stopped { .. }) {
            accounts.remove(&api_key_id);
            return None;
        }
        Some(entry.state.clone())
    }

    pub(super) fn open_account(
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

    /// See [`Confirmer::disable_key`]. Removing the account's entry drops its stop sender, which
    /// ends the stream's task.
    #[tracing::instrument(skip_all, fields(%api_key_id))]
    pub(super) async fn disable_key(&self, api_key_id: Uuid, reason: &str) -> anyhow::Result<()> {
        tracing::warn!(%reason, "exchange key marked unusable");
        self.keys.forget(api_key_id);
        self.equity.forget(api_key_id);
        lock(&self.accounts).remove(&api_key_id);
        let client = self.pool.get().await.context("database pool")?;
        api_key_store::mark_unusable(&**client, api_key_id, reason).await?;
        Ok(())
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
        // The position topic keeps `positions` (and feeds break-even's mark price); the wallet
        // topic keeps the equity sizing reads.
        topics: vec![
            PrivateTopic::Order,
            PrivateTopic::Execution,
            PrivateTopic::Position,
            PrivateTopic::Wallet,
        ],
        ..PrivateStreamConfig::new(inner.config.private_ws_url.clone(), credentials.clone())
    };
    let (handle, mut events) = PrivateStream::spawn(config);
    let mut gauge = StreamGauge::new(GaugeState::Connecting);
    let mut shutdown = inner.shutdown.subscribe();
    // The equity cache's token of the current subscription.
    let mut subscription: Option<u64> = None;
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
                if let Some(old) = subscription.take() {
                    inner.equity.dropped(api_key_id, old);
                }
                subscription = Some(inner.equity.subscribed(api_key_id));
                Box::pin(inner.catch_up(api_key_id, &credentials)).await;
            }
            StreamEvent::Disconnected { reason } => {
                tracing::info!(%reason, "private stream disconnected; reconnecting");
                gauge.set(GaugeState::Reconnecting);
                if let Some(old) = subscription.take() {
                    inner.equity.dropped(api_key_id, old);
                }
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
                let symbol = position.symbol.clone();
                if let Err(e) =
                    Box::pin(inner.queue_write(api_key_id, Event::Position(*position), None)).await
                {
                    tracing::warn!(%symbol, error = %e, "position push not recorded");
                }
            }
            StreamEvent::WalletUpdate(wallet) => {
                if let Some(current) = subscription {
                    inner.equity.pushed(api_key_id, current, &wallet);
                }
            }
            StreamEvent::Unparsed { reason } => {
                tracing::warn!(%reason, "undecodable push; reconciling the account");
                if let Err(e) = Box::pin(inner.reconcile_account(api_key_id, &credentials)).await {
                    tracing::warn!(error = %e, "reconciliation after an undecodable push failed");
                }
            }
        }
    };
    if let Some(old) = subscription {
        inner.equity.dropped(api_key_id, old);
    }
    handle.shutdown().await;
    drop(gauge);
    tracing::info!(%reason, "private stream closed");
    state.send_replace(StreamState::Stopped { reason });
}
