//! Which accounts this executor owns (docs/deployment.md#several-executors): each account is
//! owned by one executor of the fleet at a time through a lease in PostgreSQL
//! (`store::account_leases`). The owner alone keeps the account's private stream and places its
//! orders. A pass every third of the lease heartbeats, renews, takes this executor's fair share of
//! the accounts nobody holds, hands what is above it to the least-loaded executor, and opens or
//! closes streams to match.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use humbex_shared::db::Statements;
use humbex_shared::store::account_leases as leases;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use uuid::Uuid;

use crate::orders::PendingOrder;
use crate::pipeline::Context;

/// Accounts handed to another executor by one pass at most, so a rebalance moves streams
/// gradually.
const HAND_OVER_PER_PASS: usize = 500;

/// This executor's accounts, as its last renewal (or takeover) found them.
pub struct Ownership {
    executor_id: String,
    lease: Duration,
    owned: Mutex<Owned>,
    /// Spaces the stream opens of accounts taken over.
    connects: ConnectPacer,
    /// Accounts waiting for a paced stream open.
    to_open: mpsc::UnboundedSender<Uuid>,
    opening: Mutex<Option<mpsc::UnboundedReceiver<Uuid>>>,
    /// Run a pass now (accounts were released somewhere in the fleet).
    pub rebalance: Notify,
    /// Look for pending orders of owned accounts now (another executor's claim wrote some).
    pub pending: Notify,
}

struct Owned {
    keys: HashSet<Uuid>,
    /// When the database last confirmed `keys`; beyond a lease from it, nothing is known to be ours.
    confirmed_at: Option<Instant>,
}

impl Ownership {
    pub fn new(executor_id: String, lease: Duration, connects_per_minute: u32) -> Self {
        let (to_open, opening) = mpsc::unbounded_channel();
        Ownership {
            executor_id,
            lease,
            owned: Mutex::new(Owned {
                keys: HashSet::new(),
                confirmed_at: None,
            }),
            connects: ConnectPacer::per_minute(connects_per_minute),
            to_open,
            opening: Mutex::new(Some(opening)),
            rebalance: Notify::new(),
            pending: Notify::new(),
        }
    }

    /// Whether this executor holds the account's lease, as far as it knows: a lease not confirmed
    /// for a whole lease time may have been taken over.
    pub fn owns(&self, api_key_id: Uuid) -> bool {
        let owned = self.owned.lock().expect("ownership lock");
        owned.confirmed_at.is_some_and(|at| at.elapsed() < self.lease) && owned.keys.contains(&api_key_id)
    }

    /// How many accounts this executor owns.
    pub fn count(&self) -> usize {
        self.owned.lock().expect("ownership lock").keys.len()
    }

    /// The orders of a claimed batch this executor places itself: those of accounts it owns, after
    /// taking the accounts nobody holds; the owners of the others are told to place theirs
    /// (`humbex_accounts`). With one executor every account is its own and no statement is run.
    /// If the routing statement fails every order is kept: sending an order twice is harmless
    /// (the same orderLinkId), leaving it unsent is not.
    pub async fn keep_mine(&self, client: &impl Statements, orders: Vec<PendingOrder>) -> Vec<PendingOrder> {
        let foreign: Vec<Uuid> = orders
            .iter()
            .filter(|o| o.key_usable && !self.owns(o.api_key_id))
            .map(|o| o.api_key_id)
            .collect();
        if foreign.is_empty() {
            return orders;
        }
        let mine = match self.route(client, &foreign).await {
            Ok(mine) => mine,
            Err(e) => {
                tracing::warn!(error = ?e, "routing orders to their accounts' owners failed; sending them all");
                return orders;
            }
        };
        orders
            .into_iter()
            .filter(|o| !o.key_usable || mine.contains(&o.api_key_id) || self.owns(o.api_key_id))
            .collect()
    }

    #[tracing::instrument(skip_all, fields(executor = %self.executor_id, accounts = keys.len()))]
    async fn route(&self, client: &impl Statements, keys: &[Uuid]) -> anyhow::Result<HashSet<Uuid>> {
        let row = client
            .row(
                leases::ROUTE,
                &[&self.executor_id, &keys, &self.lease.as_secs_f64()],
            )
            .await?;
        let mine: HashSet<Uuid> = row
            .get::<_, Option<Vec<Uuid>>>("mine")
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut owned = self.owned.lock().expect("ownership lock");
        owned.keys.extend(mine.iter().copied());
        drop(owned);
        for key in &mine {
            let _ = self.to_open.send(*key);
        }
        Ok(mine)
    }

    /// A graceful stop: the executor's row and every lease go at once, and the fleet is told to
    /// take the accounts now.
    #[tracing::instrument(skip_all, fields(executor = %self.executor_id))]
    pub async fn hand_over(&self, client: &impl Statements) -> anyhow::Result<()> {
        client.row(leases::STOP, &[&self.executor_id]).await?;
        let mut owned = self.owned.lock().expect("ownership lock");
        owned.keys.clear();
        owned.confirmed_at = None;
        Ok(())
    }

    /// One pass; returns whether accounts were gained (their pending orders should be looked at).
    #[tracing::instrument(skip_all, fields(executor = %self.executor_id))]
    pub(crate) async fn pass(&self, ctx: &Context) -> anyhow::Result<bool> {
        let client = ctx.pool.get().await.context("no database connection")?;
        let secs = self.lease.as_secs_f64();
        let me = &self.executor_id;
        let started = Instant::now();
        client.row(leases::HEARTBEAT, &[me, &secs]).await?;
        client.run(leases::PURGE_DEAD, &[]).await?;
        client.rows(leases::DROP_UNTRADABLE.as_str(), &[me]).await?;
        let mut keys: HashSet<Uuid> = client
            .rows(leases::RENEW, &[me, &secs])
            .await?
            .iter()
            .map(|r| r.get("api_key_id"))
            .collect();
        let fleet = client.row(leases::FLEET.as_str(), &[]).await?;
        let live: i64 = fleet.get("live");
        let accounts: i64 = fleet.get("accounts");
        let fair = fair_share(accounts, live);
        let mut taken = Vec::new();
        if keys.len() < fair {
            let want = (fair - keys.len()) as i64;
            taken = client
                .rows(leases::CLAIM_SHARE.as_str(), &[me, &secs, &want])
                .await?
                .iter()
                .map(|r| r.get::<_, Uuid>("api_key_id"))
                .collect();
            keys.extend(taken.iter().copied());
        } else if keys.len() > fair
            && let Some(least) = client.row_opt(leases::LEAST_LOADED, &[me]).await?
        {
            // Only as many as the least-loaded executor lacks: shares converge without accounts
            // going back and forth.
            let held: i64 = least.get("held");
            let to: String = least.get("id");
            let room = fair.saturating_sub(held.max(0) as usize);
            let excess: Vec<Uuid> = keys
                .iter()
                .copied()
                .take((keys.len() - fair).min(room).min(HAND_OVER_PER_PASS))
                .collect();
            if !excess.is_empty() {
                client.row(leases::HAND_TO, &[me, &excess, &secs, &to]).await?;
                for key in &excess {
                    keys.remove(key);
                }
                tracing::info!(handed = excess.len(), to = %to, fair, "accounts above the fair share handed over");
            }
        }
        drop(client);
        // Streams follow ownership: close what is no longer ours, queue opens for what is.
        for key in ctx.confirmer.open_accounts() {
            if !keys.contains(&key) {
                ctx.confirmer.close_account(key);
            }
        }
        let open: HashSet<Uuid> = ctx.confirmer.open_accounts().into_iter().collect();
        for key in keys.iter().filter(|k| !open.contains(k)) {
            let _ = self.to_open.send(*key);
        }
        if !taken.is_empty() {
            tracing::info!(
                taken = taken.len(),
                owned = keys.len(),
                fair,
                live,
                "accounts taken over"
            );
        }
        let mut owned = self.owned.lock().expect("ownership lock");
        // Taken here, or handed to this executor by another since the last pass.
        let gained = keys.iter().any(|k| !owned.keys.contains(k));
        owned.keys = keys;
        owned.confirmed_at = Some(started);
        Ok(gained)
    }
}

/// This executor's share of `accounts` among `live` executors (itself included), rounded up so the
/// shares cover every account.
pub fn fair_share(accounts: i64, live: i64) -> usize {
    let live = live.max(1);
    ((accounts.max(0) + live - 1) / live) as usize
}

/// Run the ownership passes (every third of the lease, or at once when the fleet asks) and the
/// paced stream opener, until aborted. Dropped (the executor killed), nothing renews the leases and
/// the fleet takes the accounts when they run out.
pub async fn run(ctx: Arc<Context>) {
    let ownership = &ctx.ownership;
    let opening = ownership.opening.lock().expect("ownership lock").take();
    let _opener = opening.map(|queue| crate::AbortOnDrop(tokio::spawn(open_streams(ctx.clone(), queue))));
    let mut every = tokio::time::interval(ownership.lease / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = ownership.rebalance.notified() => {}
        }
        match ownership.pass(&ctx).await {
            Ok(true) => ownership.pending.notify_one(),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "account lease pass failed; retrying"),
        }
    }
}

/// Open the streams of accounts queued by the passes, one per connect slot, skipping those no
/// longer owned or already open.
async fn open_streams(ctx: Arc<Context>, mut queue: mpsc::UnboundedReceiver<Uuid>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 1024).await > 0 {
        let wanted: Vec<Uuid> = {
            let open: HashSet<Uuid> = ctx.confirmer.open_accounts().into_iter().collect();
            let mut seen = HashSet::new();
            batch
                .drain(..)
                .filter(|k| ctx.ownership.owns(*k) && !open.contains(k) && seen.insert(*k))
                .collect()
        };
        if wanted.is_empty() {
            continue;
        }
        let keys = match ctx.pool.get().await {
            Ok(client) => humbex_shared::api_key_store::tradable_among(&**client, &wanted).await,
            Err(e) => {
                tracing::warn!(error = %e, "no database connection to open streams; the next pass retries");
                continue;
            }
        };
        let keys = match keys {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(error = %e, "reading keys to open streams failed; the next pass retries");
                continue;
            }
        };
        for key in keys {
            if !ctx.ownership.owns(key.row.id) || ctx.confirmer.stream_state(key.row.id).is_some() {
                continue;
            }
            let Ok(credentials) = ctx.keys.credentials(key.row, key.sealed.stored()) else {
                tracing::warn!(api_key_id = %key.row.id, "API key does not open; no stream");
                continue;
            };
            ctx.ownership.connects.wait_turn().await;
            let ctx = ctx.clone();
            tokio::spawn(async move {
                if let Err(e) = ctx.confirmer.ensure_account(key.row.id, credentials).await {
                    tracing::warn!(api_key_id = %key.row.id, error = %e, "private stream not open yet");
                }
            });
        }
    }
}

/// Evenly spaced connects: at most `n` per minute, never in a burst (Bybit counts new connections
/// per IP over 5 minutes).
pub struct ConnectPacer {
    spacing: Duration,
    next: Mutex<Option<Instant>>,
}

impl ConnectPacer {
    pub fn per_minute(n: u32) -> Self {
        ConnectPacer {
            spacing: Duration::from_secs(60) / n.max(1),
            next: Mutex::new(None),
        }
    }

    /// Wait for the next connect slot.
    pub async fn wait_turn(&self) {
        let at = {
            let mut next = self.next.lock().expect("pacer lock");
            let now = Instant::now();
            let at = next.filter(|t| *t > now).unwrap_or(now);
            *next = Some(at + self.spacing);
            at
        };
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_shares_cover_every_account() {
        assert_eq!(fair_share(10, 3), 4);
        assert_eq!(fair_share(9, 3), 3);
        assert_eq!(
            fair_share(5, 0),
            5,
            "no live executor counted yet: take everything"
        );
        assert_eq!(fair_share(0, 2), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn connects_are_evenly_spaced() {
        let pacer = ConnectPacer::per_minute(120);
        let started = Instant::now();
        for _ in 0..11 {
            pacer.wait_turn().await;
        }
        // Eleven connects at 120 per minute: the first at once, then one every half second.
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
