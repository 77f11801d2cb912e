//! Each account's USDT equity as its private stream's `wallet` topic last pushed it, so sizing by
//! `equity_percent` / `risk_percent` costs no REST read per signal
//! (docs/trading-v2-executor.md#equity).
//!
//! A value belongs to one subscription of the stream: pushes sent while it is down are lost, so a
//! drop forgets the value, and the next one is a push of the new subscription or one REST read by
//! the sizing that found nothing ([`EquityCache::seed`], kept only if no push came meanwhile).
//! Bybit does not push the wallet when only unrealised PnL moves, so while a position is open a
//! value is trusted for a bounded time only; a flat account's equity changes only with its balance,
//! which pushes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use humbex_bybit::WalletAccount;
use rust_decimal::Decimal;
use tokio::time::Instant;
use uuid::Uuid;

/// The equity figure sizing uses, and whether a position was open when it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub equity: Decimal,
    /// Unrealised PnL moves this equity without a push.
    pub position_open: bool,
}

impl Reading {
    /// From one unified account (a push, or one row of a REST answer): the USDT coin's equity, else
    /// the account's total equity (USD). `None` when it has neither.
    pub fn of_account(wallet: &WalletAccount) -> Option<Reading> {
        let coin = wallet.coin.iter().find(|c| c.coin == "USDT");
        let equity = coin.and_then(|c| c.equity).or(wallet.total_equity)?;
        let figures = [
            coin.and_then(|c| c.total_position_im),
            coin.and_then(|c| c.unrealised_pnl),
            wallet.total_perp_upl,
        ];
        // Nothing said about positions: assume one is open, which only shortens the trust.
        let position_open =
            figures.iter().all(Option::is_none) || figures.iter().flatten().any(|f| !f.is_zero());
        Some(Reading {
            equity,
            position_open,
        })
    }

    /// The first account of a REST answer that has a figure.
    pub fn of_answer(wallets: &[WalletAccount]) -> Option<Reading> {
        wallets.iter().find_map(Reading::of_account)
    }
}

/// What the cache holds for an account.
#[derive(Debug, PartialEq, Eq)]
pub enum Cached {
    Fresh(Decimal),
    /// Nothing fresh: read over REST, and hand the ticket (present while the stream is subscribed)
    /// to [`EquityCache::seed`] with the answer.
    Missing(Option<Ticket>),
}

/// Where an account's entry stood when a REST read started.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    api_key_id: Uuid,
    subscription: u64,
    version: u64,
}

struct Slot {
    /// The stream's current subscription; values of an earlier one are never taken.
    subscription: u64,
    /// Bumped by every push, so a REST answer read before one does not overwrite it.
    version: u64,
    value: Option<(Reading, Instant)>,
}

pub struct EquityCache {
    /// Accounts whose stream is subscribed now.
    slots: Mutex<HashMap<Uuid, Slot>>,
    next_subscription: AtomicU64,
    /// How long a value is trusted while a position is open.
    max_age_with_position: Duration,
}

impl EquityCache {
    pub fn new(max_age_with_position: Duration) -> Self {
        EquityCache {
            slots: Mutex::new(HashMap::new()),
            next_subscription: AtomicU64::new(1),
            max_age_with_position,
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Slot>> {
        // No await and no panic inside: a poisoned map is still consistent.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The account's stream is subscribed (again): start with nothing, as pushes may have been lost.
    /// Returns the subscription's token for [`EquityCache::pushed`] and [`EquityCache::dropped`].
    pub fn subscribed(&self, api_key_id: Uuid) -> u64 {
        let subscription = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        self.slots().insert(
            api_key_id,
            Slot {
                subscription,
                version: 0,
                value: None,
            },
        );
        subscription
    }

    /// The subscription ended (disconnect, close): its value is no longer kept fresh.
    pub fn dropped(&self, api_key_id: Uuid, subscription: u64) {
        let mut slots = self.slots();
        if slots
            .get(&api_key_id)
            .is_some_and(|s| s.subscription == subscription)
        {
            slots.remove(&api_key_id);
        }
    }

    /// The account's stream was closed here (moved to another executor, key disabled): forget its
    /// value now rather than when its task notices.
    pub fn forget(&self, api_key_id: Uuid) {
        self.slots().remove(&api_key_id);
    }

    /// A `wallet` push of the subscription.
    pub fn pushed(&self, api_key_id: Uuid, subscription: u64, wallet: &WalletAccount) {
        let reading = Reading::of_account(wallet);
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(&api_key_id)
            && slot.subscription == subscription
        {
            slot.version += 1;
            slot.value = reading.map(|r| (r, Instant::now()));
        }
    }

    /// The equity to size with, if a fresh one is known.
    pub fn get(&self, api_key_id: Uuid) -> Cached {
        let slots = self.slots();
        let Some(slot) = slots.get(&api_key_id) else {
            return Cached::Missing(None);
        };
        match slot.value {
            Some((reading, at)) if !reading.position_open || at.elapsed() <= self.max_age_with_position => {
                Cached::Fresh(reading.equity)
            }
            _ => Cached::Missing(Some(Ticket {
                api_key_id,
                subscription: slot.subscription,
                version: slot.version,
            })),
        }
    }

    /// A REST answer read after `ticket` was taken: kept unless the subscription changed or a push
    /// came in the meantime (the push is at least as new).
    pub fn seed(&self, ticket: Ticket, reading: Reading) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(&ticket.api_key_id)
            && slot.subscription == ticket.subscription
            && slot.version == ticket.version
        {
            slot.value = Some((reading, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallet(equity: &str, position_im: &str, upl: &str) -> WalletAccount {
        serde_json::from_value(serde_json::json!({
            "accountType": "UNIFIED", "totalEquity": "1", "totalPerpUPL": upl,
            "coin": [{"coin": "USDT", "equity": equity, "totalPositionIM": position_im, "unrealisedPnl": upl}]
        }))
        .expect("a wallet")
    }

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn the_usdt_row_wins_over_the_total_and_positions_are_seen() {
        let flat = Reading::of_account(&wallet("500.5", "0", "0")).unwrap();
        assert_eq!(
            flat,
            Reading {
                equity: d("500.5"),
                position_open: false
            }
        );
        assert!(
            Reading::of_account(&wallet("500", "12", "0"))
                .unwrap()
                .position_open
        );
        assert!(
            Reading::of_account(&wallet("500", "0", "-0.3"))
                .unwrap()
                .position_open
        );
        let no_usdt: WalletAccount =
            serde_json::from_value(serde_json::json!({"accountType": "UNIFIED", "totalEquity": "42"}))
                .unwrap();
        assert_eq!(
            Reading::of_account(&no_usdt),
            Some(Reading {
                equity: d("42"),
                position_open: true
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_lives_for_its_subscription_and_a_late_rest_answer_loses_to_a_push() {
        let cache = EquityCache::new(Duration::from_secs(10));
        let id = Uuid::from_u128(7);
        assert_eq!(cache.get(id), Cached::Missing(None));
        let first = cache.subscribed(id);
        let Cached::Missing(Some(ticket)) = cache.get(id) else {
            panic!("a ticket")
        };
        // A push lands while the REST read is on its way: the push is kept.
        cache.pushed(id, first, &wallet("900", "0", "0"));
        cache.seed(
            ticket,
            Reading {
                equity: d("800"),
                position_open: false,
            },
        );
        assert_eq!(cache.get(id), Cached::Fresh(d("900")));
        // A flat account's value does not age.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(cache.get(id), Cached::Fresh(d("900")));
        // With a position open it is trusted for the bound only.
        cache.pushed(id, first, &wallet("950", "10", "1"));
        tokio::time::advance(Duration::from_secs(11)).await;
        let Cached::Missing(Some(ticket)) = cache.get(id) else {
            panic!("stale")
        };
        cache.seed(
            ticket,
            Reading {
                equity: d("960"),
                position_open: true,
            },
        );
        assert_eq!(cache.get(id), Cached::Fresh(d("960")));
        // A drop forgets; a push of the old subscription after a new one started is ignored.
        cache.dropped(id, first);
        assert_eq!(cache.get(id), Cached::Missing(None));
        let second = cache.subscribed(id);
        cache.pushed(id, first, &wallet("1", "0", "0"));
        cache.dropped(id, first);
        assert!(matches!(cache.get(id), Cached::Missing(Some(_))));
        cache.pushed(id, second, &wallet("990", "0", "0"));
        assert_eq!(cache.get(id), Cached::Fresh(d("990")));
    }
}
