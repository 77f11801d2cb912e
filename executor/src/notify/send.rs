//! Claiming due deliveries and sending them: grouped per destination (a burst is one Telegram
//! message or one email), one POST per notification on a webhook (its `webhook-id` is the
//! notification's id), each outcome recorded with its attempt in one statement.
//!
//! Each claim has a token of its own, and right before a send the rows are taken again under it
//! (`TAKE_FOR_SEND`), with a lease longer than the send's deadline: a delivery whose lease ran out
//! while its sender waited (pacing, a stall) and that a later claim took over is sent by that claim
//! only. What is left is docs/notifications.md#delivery-what-is-guaranteed.

use humbex_shared::db::Statements;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use humbex_shared::config::WebhookSecret;
use humbex_shared::notify::{Channel, Event};
use humbex_shared::store::notifications as sql;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use super::channels::{self, SendError};
use super::message::{self, Item};
use super::{Notifier, min_gap};

/// Webhook deliveries claimed per destination at once: they are sent one by one, each within the
/// lease.
const WEBHOOK_PER_CLAIM: i64 = 20;

/// Telegram refuses longer texts.
const TELEGRAM_MAX_CHARS: usize = 4000;

/// One claimed delivery with what it reports.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub notification_id: Uuid,
    pub event: Event,
    pub user_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

/// The deliveries of one claim that go to one destination.
#[derive(Debug, Clone)]
pub struct Group {
    /// The claim that leased these rows (the sender's id and a token of the claim).
    pub claim: String,
    pub channel: Channel,
    /// `user` or `ops`.
    pub audience: String,
    pub user_id: Option<Uuid>,
    pub destination: String,
    pub deliveries: Vec<Delivery>,
}

impl Group {
    fn ids(&self) -> Vec<Uuid> {
        self.deliveries.iter().map(|d| d.id).collect()
    }
}

/// The webhook body of the contract: `{"event", "occurred_at", "user_id", "data"}`.
pub fn webhook_body(d: &Delivery) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event": d.event.as_str(),
        "occurred_at": d.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "user_id": d.user_id,
        "data": d.data,
    }))
    .expect("a JSON value serialises")
}

impl Notifier {
    /// Lease due deliveries and group them per destination.
    #[tracing::instrument(skip_all, fields(sender_id = %self.settings.sender_id))]
    pub async fn claim(&self) -> anyhow::Result<Vec<Group>> {
        let claim = format!(
            "{}/{}",
            self.settings.sender_id,
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let client = self.pool.get().await?;
        let rows = client
            .rows(
                sql::CLAIM_DUE,
                &[
                    &claim,
                    &self.settings.lease.as_secs_f64(),
                    &(self.settings.batch * 4),
                    &WEBHOOK_PER_CLAIM,
                    &self.settings.batch,
                ],
            )
            .await?;
        let mut groups: BTreeMap<(Channel, String, Option<Uuid>, String), Group> = BTreeMap::new();
        for row in rows {
            let id: Uuid = row.get("id");
            let (Some(channel), Some(event)) =
                (Channel::parse(row.get("channel")), Event::parse(row.get("event")))
            else {
                tracing::error!(delivery_id = %id, "unknown channel or event; left for an operator");
                continue;
            };
            let audience: String = row.get("audience");
            let destination: String = row.get("destination");
            let user_id: Option<Uuid> = row.get("user_id");
            let group = groups
                .entry((channel, audience.clone(), user_id, destination.clone()))
                .or_insert_with(|| Group {
                    claim: claim.clone(),
                    channel,
                    audience,
                    user_id,
                    destination,
                    deliveries: Vec::new(),
                });
            group.deliveries.push(Delivery {
                id,
                notification_id: row.get("notification_id"),
                event,
                user_id,
                occurred_at: row.get("occurred_at"),
                data: row.get("data"),
            });
        }
        let mut out: Vec<Group> = groups.into_values().collect();
        for g in &mut out {
            g.deliveries.sort_by_key(|d| (d.occurred_at, d.notification_id));
        }
        Ok(out)
    }

    /// Wait until `destination` may be sent to again, and book the next slot.
    async fn pace(&self, channel: Channel, destination: &str) {
        let gap = min_gap(channel);
        if gap.is_zero() {
            return;
        }
        let at = {
            let mut next = self.next_send.lock().expect("not poisoned");
            let now = Instant::now();
            let key = (channel, destination.to_owned());
            let at = next.get(&key).copied().filter(|t| *t > now).unwrap_or(now);
            next.insert(key, at + gap);
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// Send one destination's group and record the outcome of each delivery.
    pub async fn send_group(self: Arc<Self>, mut group: Group) {
        self.pace(group.channel, &group.destination).await;
        match group.channel {
            Channel::Telegram | Channel::Email => {
                let held = self.take(&group.claim, &group.ids()).await;
                group.deliveries.retain(|d| held.contains(&d.id));
                if group.deliveries.is_empty() {
                    return;
                }
                let started = Utc::now();
                let result = self.within_deadline(self.send_grouped(&group)).await;
                self.record(group.channel, &group.ids(), started, result).await;
            }
            Channel::Webhook => self.send_webhooks(&group).await,
        }
    }

    /// The rows of `ids` that `claim` still holds, leased for one send; none when the database
    /// cannot say (nothing is sent, the lease runs out and they are claimed again).
    async fn take(&self, claim: &str, ids: &[Uuid]) -> Vec<Uuid> {
        // A send ends within send_timeout (within_deadline); the lease outlasts it twice over.
        let lease = self
            .settings
            .lease
            .max(self.settings.send_timeout * 2)
            .as_secs_f64();
        let taken = async {
            let client = self.pool.get().await?;
            let rows = client.rows(sql::TAKE_FOR_SEND, &[&claim, &ids, &lease]).await?;
            anyhow::Ok(rows.iter().map(|r| r.get::<_, Uuid>("id")).collect::<Vec<Uuid>>())
        }
        .await;
        let taken = taken.unwrap_or_else(|e| {
            tracing::warn!(error = ?e, "could not take notifications for sending; they are claimed again");
            Vec::new()
        });
        if taken.len() < ids.len() {
            tracing::info!(
                lost = ids.len() - taken.len(),
                "deliveries taken over by another claim are left to it"
            );
        }
        taken
    }

    /// One send, however many requests it makes, within `send_timeout`.
    async fn within_deadline(
        &self,
        send: impl Future<Output = Result<(), SendError>>,
    ) -> Result<(), SendError> {
        let limit = self.settings.send_timeout;
        tokio::time::timeout(limit, send).await.unwrap_or_else(|_| {
            Err(SendError::Retry {
                detail: format!("timed out after {} ms", limit.as_millis()),
                after: None,
            })
        })
    }

    async fn send_grouped(&self, group: &Group) -> Result<(), SendError> {
        let items: Vec<Item> = group
            .deliveries
            .iter()
            .map(|d| Item {
                event: d.event,
                data: d.data.clone(),
            })
            .collect();
        let mut text = message::text(&items, &self.settings.egress_ips);
        match group.channel {
            Channel::Telegram => {
                let telegram = self
                    .config
                    .telegram
                    .as_ref()
                    .ok_or_else(|| SendError::Refused("TELEGRAM_BOT_TOKEN is not set".into()))?;
                if text.chars().count() > TELEGRAM_MAX_CHARS {
                    text = text.chars().take(TELEGRAM_MAX_CHARS).collect::<String>() + "…";
                }
                channels::telegram_send(&self.http, telegram, &group.destination, &text).await
            }
            _ => {
                let mailer = self
                    .mailer
                    .as_ref()
                    .ok_or_else(|| SendError::Refused("SMTP_URL is not set".into()))?;
                let message_id = group.deliveries[0].notification_id.to_string();
                mailer
                    .send(&group.destination, &message::subject(&items), &text, &message_id)
                    .await
            }
        }
    }

    /// The signing key of a group's webhook: OPS_WEBHOOK_SECRET, or the user's sealed secret.
    async fn webhook_key(&self, group: &Group) -> Result<WebhookSecret, SendError> {
        if group.audience == "ops" {
            return self
                .config
                .ops
                .webhook
                .as_ref()
                .map(|(_, secret)| secret.clone())
                .ok_or_else(|| SendError::Refused("OPS_WEBHOOK_URL is no longer set".into()));
        }
        let user_id = group
            .user_id
            .ok_or_else(|| SendError::Refused("a user webhook without a user".into()))?;
        let retry = |detail: String| SendError::Retry { detail, after: None };
        let client = self.pool.get().await.map_err(|e| retry(e.to_string()))?;
        let row = client
            .row_opt(sql::WEBHOOK_SECRET, &[&user_id])
            .await
            .map_err(|e| retry(e.to_string()))?;
        let blob: Option<Vec<u8>> = row.and_then(|r| r.get("webhook_secret_enc"));
        let blob = blob.ok_or_else(|| SendError::Refused("the user's webhook was removed".into()))?;
        let secret = self
            .opener
            .open_webhook_secret(user_id, &blob)
            .map_err(|e| retry(format!("cannot open the webhook secret: {e}")))?;
        WebhookSecret::parse(secret.expose_secret())
            .map_err(|_| SendError::Refused("stored secret unreadable".into()))
    }

    /// One POST per notification, in order; after a failure the rest wait for the next try.
    async fn send_webhooks(&self, group: &Group) {
        let started = Utc::now();
        let key = match self.webhook_key(group).await {
            Ok(key) => key,
            Err(e) => return self.record(group.channel, &group.ids(), started, Err(e)).await,
        };
        for (i, d) in group.deliveries.iter().enumerate() {
            if self.take(&group.claim, &[d.id]).await.is_empty() {
                // Taken over after this claim's lease ran out: the rest are the other claim's too.
                return;
            }
            let started = Utc::now();
            let body = webhook_body(d);
            let id = d.notification_id.to_string();
            let result = self
                .within_deadline(channels::webhook_send(
                    &self.http,
                    &group.destination,
                    key.standard_webhooks_key(),
                    &id,
                    &body,
                ))
                .await;
            let failed = result.is_err();
            self.record(group.channel, &[d.id], started, result).await;
            let rest: Vec<Uuid> = group.deliveries[i + 1..].iter().map(|d| d.id).collect();
            if failed {
                self.release(&group.claim, &rest).await;
                return;
            }
            self.renew(&group.claim, &rest).await;
        }
    }

    /// Keep the leases of the deliveries still to send in this batch.
    async fn renew(&self, claim: &str, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let result = async {
            let client = self.pool.get().await?;
            let lease = self.settings.lease.as_secs_f64();
            client.run(sql::RENEW, &[&claim, &ids, &lease]).await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = ?e, "could not renew notification leases");
        }
    }

    async fn release(&self, claim: &str, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let result = async {
            let client = self.pool.get().await?;
            let wait = self.settings.backoff_base.as_secs_f64();
            client.run(sql::RELEASE, &[&ids, &wait, &claim]).await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = ?e, "could not release notification leases; they expire instead");
        }
    }

    /// Record a send's outcome for `ids` with its attempt, and count it. If the write fails the
    /// leases expire and the deliveries are sent again: at least once, never lost.
    #[tracing::instrument(skip_all, fields(deliveries = ids.len()))]
    async fn record(
        &self,
        channel: Channel,
        ids: &[Uuid],
        started: DateTime<Utc>,
        result: Result<(), SendError>,
    ) {
        let outcome = match &result {
            Ok(()) => super::Attempt::Delivered,
            Err(SendError::Retry { .. }) => super::Attempt::Retry,
            Err(SendError::Refused(_)) => super::Attempt::Refused,
        };
        let write = async {
            let client = self.pool.get().await?;
            let given_up = match &result {
                Ok(()) => {
                    client.run(sql::MARK_DELIVERED, &[&ids, &started, &"ok"]).await?;
                    0
                }
                Err(SendError::Retry { detail, after }) => {
                    let base = self.settings.backoff_base.as_secs_f64();
                    let floor = after.map(|a| a.as_secs_f64()).unwrap_or(0.0);
                    let row = client
                        .row(
                            sql::MARK_RETRY,
                            &[&ids, &started, detail, &base, &self.settings.max_attempts, &floor],
                        )
                        .await?;
                    row.get::<_, i64>("dead") as usize
                }
                Err(SendError::Refused(detail)) => {
                    client.run(sql::MARK_REFUSED, &[&ids, &started, detail]).await?;
                    0
                }
            };
            anyhow::Ok(given_up)
        };
        // A retry that used the last attempt is given up: counted `failed`, not `retried`.
        let given_up = match write.await {
            Ok(n) => n.min(ids.len()),
            Err(e) => {
                tracing::warn!(error = ?e, ?outcome, "could not record a notification attempt; it will be sent again");
                0
            }
        };
        super::count(channel, ids.len() - given_up, outcome);
        super::count(channel, given_up, super::Attempt::Refused);
        if let Err(e) = result {
            tracing::info!(error = %e, ?outcome, given_up, "notification not delivered");
        }
    }
}
