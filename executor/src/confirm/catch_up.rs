//! Reconciliation over REST: the open orders and positions of an account after its stream
//! (re)subscribes, and in the background the orders still unconfirmed a few seconds after submission,
//! with a growing delay between two lookups of one order. A key the exchange refuses on the way is
//! disabled.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use humbex_bybit::{BybitError, BybitRest, Credentials, Execution, ExecutionFilter, OrderLinkId};
use humbex_shared::db::Statements;
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

use super::store::{self, OpenOrder};
use super::{Inner, StreamState, lock};

/// What a lookup found.
enum Lookup {
    Applied,
    UnknownToExchange,
}

impl Inner {
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
    pub(super) async fn exchange_call<T>(
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
    pub(super) async fn reconcile_account(
        &self,
        api_key_id: Uuid,
        credentials: &Credentials,
    ) -> anyhow::Result<()> {
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
    pub(super) async fn catch_up(&self, api_key_id: Uuid, credentials: &Credentials) {
        if let Err(e) = self.reconcile_account(api_key_id, credentials).await {
            tracing::warn!(error = %e, "reconciliation after connect failed");
        }
        if let Err(e) = self.catch_up_positions(api_key_id, credentials).await {
            tracing::warn!(error = format!("{e:#}"), "reading positions after connect failed");
        }
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
            self.apply_position(api_key_id, position).await?;
        }
        // A position closed while no push could arrive is not in the list: flat here too. Pushes
        // that came meanwhile wait in this stream's channel, so none is overwritten.
        let open: Vec<&str> = positions
            .iter()
            .filter(|p| p.size > rust_decimal::Decimal::ZERO)
            .map(|p| p.symbol.as_str())
            .collect();
        let client = self.pool.get().await.context("database pool")?;
        client
            .run(
                humbex_shared::store::positions::FLATTEN_UNLISTED,
                &[&api_key_id as &(dyn tokio_postgres::types::ToSql + Sync), &open],
            )
            .await
            .context("flattening positions closed meanwhile")?;
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

pub(super) async fn run_background(inner: Arc<Inner>) {
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
