//! Sending one order to Bybit, never twice: the same orderLinkId on every try, a lookup by that id
//! whenever an earlier try may have landed, definitive refusals recorded as such, and a pace per
//! account below Bybit's order-create limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::time::Instant;

use humbex_bybit::{
    BybitError, BybitRest, CreateOrderRequest, Credentials, OrderLinkId, Side, TimeInForce, TriggerDirection,
};
use uuid::Uuid;

use crate::orders::{Outcome, PendingOrder};

/// Tries of one order before it is recorded as failed (about half a minute with the backoff).
pub const MAX_ATTEMPTS: i32 = 8;
/// Order creates per second per account; Bybit's default allows 10.
pub const ORDERS_PER_SECOND: u32 = 8;

/// Spaces each account's order creates, and honours the exchange's own "come back at" hints.
#[derive(Default)]
pub struct AccountPacer {
    next_slot: Mutex<HashMap<Uuid, Instant>>,
}

impl AccountPacer {
    /// Wait for this account's next free slot.
    pub async fn wait_turn(&self, api_key_id: Uuid) {
        let spacing = Duration::from_secs(1) / ORDERS_PER_SECOND;
        let at = {
            let mut slots = self.next_slot.lock().expect("pacer lock");
            let now = Instant::now();
            let at = slots
                .get(&api_key_id)
                .copied()
                .filter(|t| *t > now)
                .unwrap_or(now);
            slots.insert(api_key_id, at + spacing);
            at
        };
        // Only a slot in the future is slept for: Tokio's timer rounds a deadline up to its next
        // millisecond tick, so sleeping "until now" would cost up to a millisecond on every order.
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Read the exchange's own count: with nothing left in the window, wait for its reset.
    pub fn observe(&self, api_key_id: Uuid, status: &humbex_bybit::RateLimitStatus) {
        if let (Some(0), Some(reset_ms)) = (status.remaining, status.reset_at_ms) {
            let now_ms = chrono::Utc::now().timestamp_millis();
            let wait = Duration::from_millis((reset_ms - now_ms).clamp(0, 2_000) as u64);
            self.hold_off(api_key_id, wait);
        }
    }

    /// The exchange said to wait: nothing more for this account until then.
    pub fn hold_off(&self, api_key_id: Uuid, wait: Duration) {
        let until = Instant::now() + wait;
        let mut slots = self.next_slot.lock().expect("pacer lock");
        let slot = slots.entry(api_key_id).or_insert(until);
        if *slot < until {
            *slot = until;
        }
    }
}

fn backoff(attempt: i32) -> Duration {
    Duration::from_millis(100u64 << attempt.clamp(0, 6) as u64).min(Duration::from_secs(5))
}

/// What submitting an order came to, and whether the key turned out unusable.
pub struct Submission {
    pub outcome: Outcome,
    pub attempts: i32,
    pub key_unusable: Option<String>,
}

/// The create call for a row: a market order, or a limit with its price and time in force.
fn order_request(order: &PendingOrder, side: Side, link_id: OrderLinkId) -> CreateOrderRequest {
    let request = match order.limit_price.filter(|_| order.order_type == "limit") {
        Some(price) => {
            let mut request =
                CreateOrderRequest::limit(order.symbol.clone(), side, order.qty, price, link_id);
            request.time_in_force = order.time_in_force.as_deref().map(|tif| match tif {
                "ioc" => TimeInForce::ImmediateOrCancel,
                "fok" => TimeInForce::FillOrKill,
                "post_only" => TimeInForce::PostOnly,
                _ => TimeInForce::GoodTillCancel,
            });
            request
        }
        None => CreateOrderRequest::market(order.symbol.clone(), side, order.qty, link_id),
    };
    let mut request = request.reduce_only(order.reduce_only);
    // Order-attached protection (prices known before the fill): no extra call.
    request.take_profit = order.take_profit;
    request.stop_loss = order.stop_loss;
    request
}

/// The last traded price of `symbol`, for a trigger's direction; a few tries, as for the order.
async fn last_price(rest: &BybitRest, symbol: &str) -> Result<Decimal, String> {
    let mut last_error = String::new();
    for attempt in 0..3 {
        match rest.ticker(symbol).await {
            Ok(answer) => match answer.value {
                Some(ticker) => return Ok(ticker.last_price),
                None => {
                    return Err(format!(
                        "{symbol} has no ticker: cannot set the trigger direction"
                    ));
                }
            },
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
    Err(format!(
        "could not read {symbol}'s price to set the trigger direction: {last_error}"
    ))
}

/// Place `order` until the exchange holds it, refuses it, or the tries run out.
#[tracing::instrument(skip_all, fields(order_link_id = %order.order_link_id, api_key_id = %order.api_key_id))]
pub async fn submit(
    rest: &BybitRest,
    pacer: &AccountPacer,
    credentials: &Credentials,
    order: &PendingOrder,
) -> Submission {
    let link_id = match OrderLinkId::parse(order.order_link_id.clone()) {
        Ok(id) => id,
        Err(e) => {
            return Submission {
                outcome: Outcome::Failed {
                    message: format!("invalid orderLinkId: {e}"),
                },
                attempts: order.attempts,
                key_unusable: None,
            };
        }
    };
    let side = if order.side == "buy" {
        Side::Buy
    } else {
        Side::Sell
    };
    let mut request = order_request(order, side, link_id.clone());
    if let Some(trigger) = order.trigger_price {
        // Bybit wants the direction that reaches the trigger from where the price is now; read
        // just before sending, so a conditional entry waits instead of filling at once.
        match last_price(rest, &order.symbol).await {
            Ok(current) => request = request.trigger(trigger, TriggerDirection::towards(trigger, current)),
            Err(message) => {
                return Submission {
                    outcome: Outcome::Failed { message },
                    attempts: order.attempts,
                    key_unusable: None,
                };
            }
        }
    }
    // An earlier executor may have sent this order before it died: look first when retrying.
    let mut maybe_sent = order.attempts > 0;
    let mut attempts = order.attempts;
    let mut last_error = String::new();
    while attempts < MAX_ATTEMPTS {
        if maybe_sent {
            match rest
                .get_order_by_link_id(credentials, &order.symbol, &link_id)
                .await
            {
                Ok(found) => {
                    if let Some(existing) = found.value {
                        return Submission {
                            outcome: Outcome::Submitted {
                                exchange_order_id: existing.order_id,
                            },
                            attempts,
                            key_unusable: None,
                        };
                    }
                }
                Err(e) => {
                    // Cannot tell yet; sending again is still safe because the id is the same.
                    tracing::warn!(error = %e, "order lookup failed");
                }
            }
        }
        pacer.wait_turn(order.api_key_id).await;
        attempts += 1;
        match rest.create_order(credentials, &request).await {
            Ok(ack) => {
                pacer.observe(order.api_key_id, &ack.rate_limit);
                return Submission {
                    outcome: Outcome::Submitted {
                        exchange_order_id: ack.value.order_id,
                    },
                    attempts,
                    key_unusable: None,
                };
            }
            Err(BybitError::DuplicateOrderLinkId { .. }) => {
                // The exchange already holds an order with this id: it is ours; find it.
                maybe_sent = true;
                last_error = "duplicate orderLinkId; looking the order up".into();
                continue;
            }
            Err(e @ BybitError::KeyUnusable { .. }) => {
                let message = e.to_string();
                return Submission {
                    outcome: Outcome::Rejected {
                        code: e.code().map(|c| c.to_string()),
                        message: message.clone(),
                    },
                    attempts,
                    key_unusable: Some(message),
                };
            }
            Err(e @ (BybitError::Rejected { .. } | BybitError::InvalidRequest { .. })) => {
                return Submission {
                    outcome: Outcome::Rejected {
                        code: e.code().map(|c| c.to_string()),
                        message: e.to_string(),
                    },
                    attempts,
                    key_unusable: None,
                };
            }
            Err(BybitError::RateLimited { retry_after }) => {
                tracing::info!(
                    retry_after_ms = retry_after.as_millis() as u64,
                    "rate limited; waiting"
                );
                pacer.hold_off(order.api_key_id, retry_after);
                last_error = "rate limited (10006)".into();
            }
            Err(e) => {
                // Ambiguous (timeout, 5xx, broken connection after sending) or transient: the next
                // pass looks the id up before sending again.
                maybe_sent = maybe_sent || e.requires_order_lookup();
                last_error = e.to_string();
                tracing::warn!(error = %e, attempts, "order create did not settle; retrying");
                tokio::time::sleep(backoff(attempts)).await;
            }
        }
    }
    // Out of tries: one last look, since an ambiguous try may have placed it after all. If even
    // the look fails, the order stays pending and the signal is retried later, lookup first.
    let outcome = match rest
        .get_order_by_link_id(credentials, &order.symbol, &link_id)
        .await
    {
        Ok(found) => match found.value {
            Some(existing) => Outcome::Submitted {
                exchange_order_id: existing.order_id,
            },
            None => Outcome::Failed {
                message: format!("not placed after {attempts} tries: {last_error}"),
            },
        },
        Err(e) if maybe_sent => Outcome::Unsettled {
            message: format!("{last_error}; lookup failed: {e}"),
        },
        Err(_) => Outcome::Failed {
            message: format!("not placed after {attempts} tries: {last_error}"),
        },
    };
    Submission {
        outcome,
        attempts,
        key_unusable: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_one_accounts_orders_and_honours_hold_offs() {
        let pacer = AccountPacer::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let started = tokio::time::Instant::now();
        for _ in 0..ORDERS_PER_SECOND {
            pacer.wait_turn(a).await;
        }
        // Eight turns of one account take seven spacings; another account is not held up.
        let spacing = Duration::from_secs(1) / ORDERS_PER_SECOND;
        assert_eq!(started.elapsed(), spacing * (ORDERS_PER_SECOND - 1));
        let before_b = tokio::time::Instant::now();
        pacer.wait_turn(b).await;
        assert_eq!(before_b.elapsed(), Duration::ZERO);
        // The exchange says the window is used up until a second from now.
        let reset = chrono::Utc::now().timestamp_millis() + 1_000;
        pacer.observe(
            b,
            &humbex_bybit::RateLimitStatus {
                limit: Some(10),
                remaining: Some(0),
                reset_at_ms: Some(reset),
            },
        );
        let before = tokio::time::Instant::now();
        pacer.wait_turn(b).await;
        assert!(
            before.elapsed() >= Duration::from_millis(900),
            "{:?}",
            before.elapsed()
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(20), Duration::from_secs(5));
    }
}
