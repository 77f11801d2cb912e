//! The console's live feed: one LISTEN connection per ingest process on `humbex_signals` and
//! `humbex_orders`, fanned out to browsers as server-sent events (docs/console.md#live-updates).
//! Each browser reads from one bounded broadcast ring: a browser that falls more than
//! [`CAPACITY`] events behind is disconnected (its EventSource reconnects and re-reads the page),
//! so a slow browser costs no memory beyond the ring.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use humbex_shared::channels;
use humbex_shared::db::PgConfig;
use tokio::sync::{broadcast, watch};
use tokio_postgres::AsyncMessage;

/// Events kept for the slowest browser before it is dropped.
pub const CAPACITY: usize = 1024;
/// A comment line this often keeps proxies from closing an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// application_name of the console's LISTEN connection (pg_stat_activity).
pub const LISTEN_APPLICATION_NAME: &str = "humbex-console-listen";

/// A notification: which channel, and the row id it carried.
#[derive(Debug, Clone)]
pub struct Event {
    /// `signal` or `order`: the SSE event name.
    pub kind: &'static str,
    pub id: String,
}

/// The broadcast ring and the switch that ends every stream at shutdown.
pub struct EventHub {
    sender: broadcast::Sender<Event>,
    closing: watch::Sender<bool>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            sender: broadcast::channel(CAPACITY).0,
            closing: watch::channel(false).0,
        }
    }
}

impl EventHub {
    /// Announce an event to every connected browser (the LISTEN task calls this).
    pub fn publish(&self, event: Event) {
        // No receiver is not an error: nobody is watching.
        let _ = self.sender.send(event);
    }

    /// End every open stream (at shutdown, so draining connections does not wait on them).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// Browsers connected now.
    pub fn watchers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// The body of one browser's `text/event-stream`: `event: signal|order` with the id as data,
    /// a heartbeat comment, and an end when the browser lags or the server closes.
    /// It also ends after `lifetime` (the session's remaining time), so an expired session
    /// keeps no stream open.
    pub fn stream(
        &self,
        lifetime: Duration,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let receiver = self.sender.subscribe();
        let closing = self.closing.subscribe();
        let ends = Box::pin(tokio::time::sleep(lifetime));
        let first = Bytes::from_static(b"retry: 2000\n: connected\n\n");
        let heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        futures_util::stream::once(async move { Ok(first) }).chain(futures_util::stream::unfold(
            Some((receiver, closing, heartbeat, ends)),
            |state| async move {
                let (mut receiver, mut closing, mut heartbeat, mut ends) = state?;
                if *closing.borrow() {
                    return None;
                }
                let chunk = tokio::select! {
                    received = receiver.recv() => match received {
                        Ok(e) => format!("event: {}\ndata: {}\n\n", e.kind, e.id),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::info!(missed, "console event stream dropped: the browser fell behind");
                            return None;
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = heartbeat.tick() => ": heartbeat\n\n".to_owned(),
                    _ = closing.changed() => return None,
                    () = &mut ends => return None,
                };
                Some((Ok(Bytes::from(chunk)), Some((receiver, closing, heartbeat, ends))))
            },
        ))
    }
}

/// Keep one LISTEN connection and publish what it hears, reconnecting with capped backoff, until
/// the task is aborted.
pub async fn listen(pg: PgConfig, hub: std::sync::Arc<EventHub>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let error = listen_once(&pg, &hub).await;
        tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "console LISTEN connection lost");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once(pg: &PgConfig, hub: &EventHub) -> String {
    let mut pg = pg.clone();
    pg.application_name(LISTEN_APPLICATION_NAME);
    pg.connect_timeout(Duration::from_secs(3));
    pg.keepalives_idle(Duration::from_secs(10));
    let (client, mut connection) = match pg.connect().await {
        Ok(pair) => pair,
        Err(e) => return format!("{e:?}"),
    };
    let (lost_tx, lost) = tokio::sync::oneshot::channel::<String>();
    // Polled from here on: LISTEN itself completes only while the connection is driven.
    let messages = async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let kind = if n.channel() == channels::ORDERS {
                        "order"
                    } else {
                        "signal"
                    };
                    // Ids only: the browser asks the page for what to show, with its session.
                    if uuid::Uuid::parse_str(n.payload()).is_ok() {
                        hub.publish(Event {
                            kind,
                            id: n.payload().to_owned(),
                        });
                    }
                }
                Ok(_) => {}
                Err(e) => return format!("{e:?}"),
            }
        }
        "connection closed".to_owned()
    };
    let subscribe = async {
        match client
            .batch_execute(&format!(
                "LISTEN {}; LISTEN {}",
                channels::SIGNALS,
                channels::ORDERS
            ))
            .await
        {
            Ok(()) => std::future::pending::<()>().await,
            Err(e) => {
                let _ = lost_tx.send(format!("{e:?}"));
            }
        }
    };
    tokio::select! {
        error = messages => error,
        () = subscribe => lost.await.unwrap_or_else(|_| "LISTEN failed".into()),
    }
}
