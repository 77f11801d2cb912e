//! Applying what the exchange says about one account, from a push or a REST answer: order states,
//! fills and positions through the [`super::writer`] queue (each caller chooses whether to wait for
//! the commit), and what follows a commit: the protection a filled entry still needs, a break-even
//! move.

use anyhow::bail;
use humbex_bybit::{Execution, Order};
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::store::{AppliedOrder, Event, Outcome, ProtectJob};
use super::{Inner, lock, writer};
use crate::trade::break_even::{Armed, Decision};

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
            other => bail!("the writer answered an order update with {other:?}"),
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
            other => bail!("the writer answered a fill with {other:?}"),
        }
    }

    /// A position as the exchange reports it over REST (the catch-up), written through the writer
    /// as pushes are, and waited for.
    pub(super) async fn apply_position(
        &self,
        api_key_id: Uuid,
        position: &humbex_bybit::Position,
    ) -> anyhow::Result<()> {
        match self.write(api_key_id, Event::Position(position.clone())).await? {
            Outcome::Position(_) => Ok(()),
            other => bail!("the writer answered a position with {other:?}"),
        }
    }

    /// A position push or snapshot met the account's armed break-even watch: when its mark price
    /// reaches the trigger, the move runs on its own task (a claim, one REST call, a finish), so the
    /// writer never waits for the exchange.
    pub(super) fn watch_break_even(
        &self,
        api_key_id: Uuid,
        position: &humbex_bybit::Position,
        armed: &Armed,
    ) {
        let decision = crate::break_even::decision(armed, position);
        if decision == Decision::Wait {
            return;
        }
        let Some(credentials) = lock(&self.accounts)
            .get(&api_key_id)
            .map(|entry| entry.credentials.clone())
        else {
            tracing::debug!(%api_key_id, "break-even reached on an account no longer served here");
            return;
        };
        let (pool, rest, position) = (self.pool.clone(), self.rest.clone(), position.clone());
        tokio::spawn(async move {
            if let Err(e) =
                crate::break_even::fire(&pool, &rest, &credentials, api_key_id, &position, decision).await
            {
                tracing::warn!(%api_key_id, symbol = %position.symbol, error = format!("{e:#}"), "break-even move failed; the next push tries again");
            }
        });
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
