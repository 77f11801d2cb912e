//! Applying what the exchange says about one account, from a push or a REST answer: order states
//! and fills through the [`super::writer`] queue (each caller chooses whether to wait for the commit),
//! positions directly, and the protection a filled entry still needs.

use anyhow::bail;
use humbex_bybit::{Credentials, Execution, Order};
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::store::{AppliedOrder, Event, Outcome, ProtectJob};
use super::{Inner, foreign, lock, writer};

impl Inner {
    pub(super) fn request_protection(&self, job: ProtectJob) {
        let sent = lock(&self.protect)
            .as_ref()
            .map(|jobs| jobs.send(job.clone()).is_ok());
        if sent != Some(true) {
            tracing::warn!(order_id = %job.order_id, "a filled entry needs protection and nothing sets it");
        }
    }

    /// Queues one event for the writer; `reply` hears the outcome once it is committed.
    pub(super) async fn queue_write(
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

    pub(super) async fn apply_order(
        &self,
        api_key_id: Uuid,
        order: &Order,
    ) -> anyhow::Result<Option<AppliedOrder>> {
        match self.write(api_key_id, Event::Order(order.clone())).await? {
            Outcome::Order(applied) => Ok(applied),
            Outcome::Fill(_) => bail!("the writer answered an order update with a fill outcome"),
        }
    }

    pub(super) async fn apply_execution(
        &self,
        api_key_id: Uuid,
        execution: &Execution,
    ) -> anyhow::Result<bool> {
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

    /// A position as the exchange reports it (push or REST): kept in `positions` (not on an
    /// order's path: written directly, newest seq wins in the statement) and held against the
    /// account's break-even watch.
    pub(super) async fn apply_position(
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
}

/// Fills of an order: a trade, or a liquidation's (`BustTrade`) or ADL's (`AdlTrade`), recorded on
/// the order the exchange created. Funding and settlement rows are not fills of an order.
pub(super) fn is_order_fill(execution: &Execution) -> bool {
    let fill = matches!(execution.exec_type.as_str(), "Trade" | "BustTrade" | "AdlTrade")
        && execution.exec_qty > rust_decimal::Decimal::ZERO;
    if !fill {
        tracing::debug!(exec_id = %execution.exec_id, exec_type = %execution.exec_type, "execution is not an order fill; ignored");
    }
    fill
}
