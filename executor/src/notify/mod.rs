//! The notification sender (docs/notifications.md): runs inside the executor, turns outbox rows
//! into one delivery per destination, sends them on Telegram, the JSON webhook and email, records
//! every attempt, and retries with exponential backoff. At least once: a delivery is taken under
//! its claim's token right before its send and marked in the statement after it, so two senders
//! never send it at once, but a crash between the two sends it again (the webhook's `webhook-id`
//! and the email's Message-ID stay the same for the receiver to drop a repeat; Telegram has none).
//! docs/notifications.md#delivery-what-is-guaranteed.

pub mod channels;
pub mod fan_out;
pub mod message;
pub mod send;

use humbex_shared::db::Statements;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use humbex_shared::api_key_vault::Opener;
use humbex_shared::config::NotifyConfig;
use humbex_shared::metrics::{NotificationChannel, NotificationOutcome, metrics};
use humbex_shared::notify::Channel;
use humbex_shared::store::notifications as sql;
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::channels::{Mailer, SendError};

/// The hook of `humbex_notifications_total{channel,outcome}` (docs/notifications.md#metrics,
/// docs/metrics.md): `n` attempts on `channel` came to `outcome`; traced, and counted in the
/// process's metrics registry (a delivered attempt is `sent`, one to be retried `retried`, a
/// refused one, or a retry that used the last attempt, `failed`).
pub(crate) fn count(channel: Channel, n: usize, outcome: Attempt) {
    if n == 0 {
        return;
    }
    tracing::debug!(channel = channel.as_str(), n, ?outcome, "notification attempts");
    let channel = match channel {
        Channel::Telegram => NotificationChannel::Telegram,
        Channel::Webhook => NotificationChannel::Webhook,
        Channel::Email => NotificationChannel::Email,
    };
    let outcome = match outcome {
        Attempt::Delivered => NotificationOutcome::Sent,
        Attempt::Retry => NotificationOutcome::Retried,
        Attempt::Refused => NotificationOutcome::Failed,
    };
    for _ in 0..n {
        metrics().notification(channel, outcome);
    }
}

/// What one send came to, as the sender records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    Delivered,
    Retry,
    Refused,
}

/// How the sender runs; [`NotifierSettings::default`] is production's.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// Who holds a lease on a delivery.
    pub sender_id: String,
    /// Time between looks at the outbox (a notification leaves within about this long).
    pub poll_interval: Duration,
    /// A claimed delivery not finished within this long is taken by another sender.
    pub lease: Duration,
    /// One send's deadline on any channel (all its requests).
    pub send_timeout: Duration,
    /// Notifications fanned out per transaction, and deliveries claimed per Telegram chat or
    /// mailbox per look (a burst up to this size is one message).
    pub batch: i64,
    /// First retry after this long, doubling each attempt (at most an hour).
    pub backoff_base: Duration,
    /// After this many attempts a delivery is given up (`dead`), about a day with the defaults.
    pub max_attempts: i32,
    /// Signals older than this and still waiting raise `executor_lagging`.
    pub lag_threshold: Duration,
    /// Time between sweeps for lag, expiring subscriptions and daily summaries.
    pub sweep_interval: Duration,
    /// BYBIT_EGRESS_IPS, shown in the advice of a key refused for its IP binding.
    pub egress_ips: String,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        NotifierSettings {
            sender_id: format!(
                "notifier-{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            poll_interval: Duration::from_secs(1),
            // Longer than one send's deadline; a send takes its rows for twice that, and a
            // webhook batch renews the rest after each POST.
            lease: Duration::from_secs(20),
            send_timeout: Duration::from_secs(10),
            batch: 1000,
            backoff_base: Duration::from_secs(5),
            max_attempts: 16,
            lag_threshold: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(60),
            egress_ips: String::new(),
        }
    }
}

/// The least time between two messages to one destination: Telegram allows about one message per
/// second in a chat; mail servers and webhooks are given the same courtesy for grouped messages.
pub fn min_gap(channel: Channel) -> Duration {
    match channel {
        Channel::Telegram => Duration::from_millis(1_100),
        Channel::Email => Duration::from_secs(1),
        Channel::Webhook => Duration::ZERO,
    }
}

pub struct Notifier {
    pool: Pool,
    opener: Opener,
    config: NotifyConfig,
    settings: NotifierSettings,
    http: reqwest::Client,
    mailer: Option<Mailer>,
    /// When each destination may next be sent to (per process; a second sender paces on its own).
    next_send: Mutex<HashMap<(Channel, String), Instant>>,
}

impl Notifier {
    pub fn new(
        pool: Pool,
        opener: Opener,
        config: NotifyConfig,
        settings: NotifierSettings,
    ) -> anyhow::Result<Self> {
        let http = channels::http_client(settings.send_timeout)?;
        let mailer = config
            .smtp
            .as_ref()
            .map(|smtp| Mailer::new(smtp, settings.send_timeout))
            .transpose()?;
        Ok(Notifier {
            pool,
            opener,
            config,
            settings,
            http,
            mailer,
            next_send: Mutex::default(),
        })
    }

    /// Refuse a start whose operator chat Telegram does not know (the variable named); a Telegram
    /// that cannot be reached is only logged, so an outage of Telegram never stops trading.
    pub async fn check_destinations(&self) -> anyhow::Result<()> {
        let (Some(telegram), Some(chat)) = (&self.config.telegram, &self.config.ops.telegram_chat_id) else {
            return Ok(());
        };
        match channels::telegram_check_chat(&self.http, telegram, chat).await {
            Ok(()) => Ok(()),
            Err(SendError::Refused(why)) => anyhow::bail!("OPS_TELEGRAM_CHAT_ID: {why}"),
            Err(SendError::Retry { detail, .. }) => {
                tracing::warn!(%detail, "could not check OPS_TELEGRAM_CHAT_ID with Telegram; sending anyway");
                Ok(())
            }
        }
    }

    /// Run until `shutdown`: sweep, fan out, claim and send, each destination's group in a task of
    /// its own, so one slow or failing channel never holds back another.
    pub async fn run_until(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.settings.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_sweep = Instant::now();
        let mut in_flight = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a notification task panicked; its lease expires and it is retried");
                    }
                    continue;
                }
                _ = tick.tick() => {}
            }
            if Instant::now() >= next_sweep {
                self.sweep().await;
                next_sweep = Instant::now() + self.settings.sweep_interval;
            }
            // Fan out everything new first (bounded), so a burst is claimed, and grouped, at once.
            for _ in 0..10 {
                match self.fan_out().await {
                    Ok(n) if n as i64 >= self.settings.batch => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = ?e, "could not fan out notifications; trying again");
                        break;
                    }
                }
            }
            match self.claim().await {
                Ok(groups) => {
                    for group in groups {
                        in_flight.spawn(self.clone().send_group(group));
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "could not claim notifications; trying again"),
            }
        }
        // Aborting a send mid-way is safe: its leases expire and it is sent again.
        in_flight.shutdown().await;
    }

    /// Add the notifications found by a sweep: executor lag, subscriptions ending or ended,
    /// yesterday's summaries (each once, by its dedupe key); drop those done for 30 days.
    pub async fn sweep(&self) {
        let result = async {
            let client = self.pool.get().await?;
            let lag = self.settings.lag_threshold.as_secs_f64();
            client.run(sql::SWEEP_LAGGING, &[&lag]).await?;
            client.run(sql::SWEEP_SUBSCRIPTIONS, &[]).await?;
            client.run(&sql::SWEEP_DAILY_SUMMARY, &[]).await?;
            client.run(sql::SWEEP_PRUNE, &[]).await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = ?e, "notification sweep failed; trying again next interval");
        }
    }
}
