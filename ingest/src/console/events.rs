//! The console's live feed: one LISTEN connection per ingest process on `humbex_console_sessions`,
//! and on `humbex_signals` and `humbex_orders` only while a browser watches, fanned out to browsers
//! as server-sent events (docs/console.md#live-updates). Every browser's stream is fed by a task
//! of its own from one bounded broadcast ring into a bounded queue: a browser whose queue fills (it
//! stopped reading) has its connection closed, so a slow browser costs no memory beyond its queue.
//! A stream ends at once when its session is signed out, here or on another ingest, and when the
//! session expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use humbex_shared::channels;
use humbex_shared::db::PgConfig;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_postgres::AsyncMessage;

use crate::serve::ConnectionCloser;

/// Messages kept in the shared ring for the slowest feeding task (each browser's task copies a
/// message into its queue as soon as it is sent, so only a starved process lags here).
pub const CAPACITY: usize = 1024;
/// Chunks queued for one browser before it counts as not reading and is dropped: about a second
/// of a 1,000 signals a second burst, beyond what its socket buffers hold. A queued chunk is a
/// reference to the ring's bytes, not a copy.
pub const QUEUE: usize = 1024;
/// The kernel's send buffer of an event stream's connection, in bytes (Linux doubles it): with
/// the queue, what a browser that stopped reading is allowed before it is dropped.
pub const SEND_BUFFER: usize = 16 * 1024;
/// A comment line this often keeps proxies from closing an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long the signal and order channels stay listened to after the last stream ended, so a
/// browser reloading a page does not cost an UNLISTEN and a LISTEN.
const LINGER: Duration = Duration::from_secs(10);
/// application_name of the console's LISTEN connection (pg_stat_activity).
pub const LISTEN_APPLICATION_NAME: &str = "humbex-console-listen";

/// What the LISTEN connection hears, for every stream.
#[derive(Debug, Clone)]
enum Message {
    /// A formatted SSE event (`event: signal|order`, the row id as data), shared by every stream.
    Event(Bytes),
    /// The session with this digest ended: its streams end.
    Revoked([u8; 32]),
    /// The LISTEN connection came back after a loss: a sign-out may have gone unheard meanwhile,
    /// so every stream ends (its browser reconnects with its cookie, which is checked again).
    Reconnected,
}

/// The broadcast ring, the switch that ends every stream at shutdown, the streams open and
/// whether their channels are listened to, and the feed's counters.
pub struct EventHub {
    sender: broadcast::Sender<Message>,
    closing: watch::Sender<bool>,
    watching: Arc<watch::Sender<Watching>>,
    stats: Arc<Stats>,
}

/// Streams open, and whether the signal and order channels are listened to. One value behind one
/// lock, so a stream that opens while the last one's channels are being given up either keeps
/// them or waits for them again: never a stream that believes it hears while nothing listens.
///
/// Nobody watching, nothing is listened to: every signal and every order change NOTIFYs (about
/// four a signal), and each would wake a PostgreSQL backend and this process for no browser, on
/// the cores the webhook → order path runs on.
#[derive(Debug, Default, Clone, Copy)]
struct Watching {
    open: u64,
    listening: bool,
}

/// Counters for tests and the bench.
#[derive(Debug, Default)]
struct Stats {
    dropped_slow: AtomicU64,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            sender: broadcast::channel(CAPACITY).0,
            closing: watch::channel(false).0,
            watching: Arc::new(watch::channel(Watching::default()).0),
            stats: Arc::default(),
        }
    }
}

impl EventHub {
    /// Announce a signal or an order to every connected browser (the LISTEN task calls this).
    pub fn publish(&self, kind: &'static str, id: &str) {
        let chunk = Bytes::from(format!("event: {kind}\ndata: {id}\n\n"));
        // No receiver is not an error: nobody is watching.
        let _ = self.sender.send(Message::Event(chunk));
    }

    /// End the open streams of the session with this cookie digest (sign-out).
    pub fn revoke(&self, session_digest: [u8; 32]) {
        let _ = self.sender.send(Message::Revoked(session_digest));
    }

    /// End every open stream (at shutdown, so draining connections does not wait on them).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// Streams open now.
    pub fn watchers(&self) -> u64 {
        self.watching.borrow().open
    }

    /// Whether signals and orders are listened to now (a stream has been open, and the LISTEN
    /// answered); a stream says "connected" only then.
    pub fn listening(&self) -> bool {
        self.watching.borrow().listening
    }

    /// Streams closed since start because their browser stopped reading (or fell behind).
    pub fn dropped_slow(&self) -> u64 {
        self.stats.dropped_slow.load(Ordering::Relaxed)
    }

    /// The body of one browser's `text/event-stream`: `event: signal|order` with the id as data,
    /// a heartbeat comment, and an end when the session is revoked or expires (`lifetime` is its
    /// remaining time), when the LISTEN connection was lost, or at shutdown. `closer` is the
    /// request's connection: closed if the browser stops reading.
    pub fn stream(
        &self,
        session_digest: [u8; 32],
        lifetime: Duration,
        closer: Option<ConnectionCloser>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let (queue, mut queued) = mpsc::channel::<Bytes>(QUEUE);
        let feed = Feed {
            receiver: self.sender.subscribe(),
            closing: self.closing.subscribe(),
            session_digest,
            queue,
            closer,
            watching: self.watching.clone(),
            stats: self.stats.clone(),
        };
        self.watching.send_modify(|w| w.open += 1);
        tokio::spawn(feed.run(lifetime));
        futures_util::stream::poll_fn(move |cx| queued.poll_recv(cx).map(|chunk| chunk.map(Ok)))
    }
}

/// One browser's feeding task: from the ring to its queue, until the stream ends.
struct Feed {
    receiver: broadcast::Receiver<Message>,
    closing: watch::Receiver<bool>,
    session_digest: [u8; 32],
    queue: mpsc::Sender<Bytes>,
    closer: Option<ConnectionCloser>,
    watching: Arc<watch::Sender<Watching>>,
    stats: Arc<Stats>,
}

impl Feed {
    async fn run(mut self, lifetime: Duration) {
        let why = self.feed(lifetime).await;
        self.watching.send_modify(|w| w.open -= 1);
        if why == "fell behind" {
            self.stats.dropped_slow.fetch_add(1, Ordering::Relaxed);
            if let Some(closer) = &self.closer {
                closer.close();
            }
        }
        tracing::info!(why, "console event stream ended");
        // Dropping the queue's sender ends the body once the browser has read what is queued.
    }

    /// Feed the queue; the answer is why the stream ends.
    async fn feed(&mut self, lifetime: Duration) -> &'static str {
        let ends = tokio::time::sleep(lifetime);
        tokio::pin!(ends);
        // "connected" only once the channels are listened to: from then on the browser misses
        // nothing (a browser reloads its table, then opens the stream).
        let mut listening = self.watching.subscribe();
        tokio::select! {
            biased;
            _ = self.closing.wait_for(|closing| *closing) => return "shutdown",
            () = &mut ends => return "the session expired",
            () = self.queue.closed() => return "the browser left",
            heard = listening.wait_for(|w| w.listening) => if heard.is_err() {
                return "shutdown";
            },
        }
        let start = tokio::time::Instant::now() + HEARTBEAT;
        let mut heartbeat = tokio::time::interval_at(start, HEARTBEAT);
        let mut next = Some(Bytes::from_static(b"retry: 2000\n: connected\n\n"));
        loop {
            // Never waits: a browser that does not take its chunks is not waited for.
            match next.take().map(|chunk| self.queue.try_send(chunk)) {
                None | Some(Ok(())) => {}
                Some(Err(mpsc::error::TrySendError::Full(_))) => return "fell behind",
                Some(Err(mpsc::error::TrySendError::Closed(_))) => return "the browser left",
            }
            next = tokio::select! {
                biased;
                _ = self.closing.wait_for(|closing| *closing) => return "shutdown",
                () = &mut ends => return "the session expired",
                () = self.queue.closed() => return "the browser left",
                received = self.receiver.recv() => match received {
                    Ok(Message::Event(chunk)) => Some(chunk),
                    Ok(Message::Revoked(digest)) if digest == self.session_digest => {
                        return "signed out";
                    }
                    Ok(Message::Revoked(_)) => None,
                    Ok(Message::Reconnected) => return "the LISTEN connection was lost",
                    Err(broadcast::error::RecvError::Lagged(_)) => return "fell behind",
                    Err(broadcast::error::RecvError::Closed) => return "shutdown",
                },
                _ = heartbeat.tick() => Some(Bytes::from_static(b": heartbeat\n\n")),
            };
        }
    }
}

/// Keep one LISTEN connection and publish what it hears, reconnecting with capped backoff, until
/// the task is aborted.
pub async fn listen(pg: PgConfig, hub: Arc<EventHub>) {
    let mut backoff = Duration::from_millis(100);
    let mut listened = false;
    loop {
        let error = listen_once(&pg, &hub, &mut listened).await;
        tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "console LISTEN connection lost");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One LISTEN connection until it fails (the answer says how). `listened` records that one has
/// listened before: a later one ends every stream, since a sign-out may have gone unheard.
async fn listen_once(pg: &PgConfig, hub: &EventHub, listened: &mut bool) -> String {
    let pg = humbex_shared::db::listen_config(pg, LISTEN_APPLICATION_NAME);
    let (client, mut connection) = match pg.connect().await {
        Ok(pair) => pair,
        Err(e) => return format!("{e:?}"),
    };
    // Polled from here on: LISTEN itself completes only while the connection is driven.
    let messages = async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => heard(hub, n.channel(), n.payload()),
                Ok(_) => {}
                Err(e) => return format!("{e:?}"),
            }
        }
        "connection closed".to_owned()
    };
    let subscribe = async {
        match follow_watchers(&client, hub, listened).await {
            Err(e) => format!("{e:?}"),
        }
    };
    let error = tokio::select! {
        error = messages => error,
        error = subscribe => error,
    };
    hub.watching.send_modify(|w| w.listening = false);
    error
}

/// Sign-outs are listened to for as long as the connection lives; signals and orders while a
/// stream is open (and [`LINGER`] after the last one ends). Returns only on a failed statement.
async fn follow_watchers(
    client: &tokio_postgres::Client,
    hub: &EventHub,
    listened: &mut bool,
) -> Result<std::convert::Infallible, tokio_postgres::Error> {
    client
        .batch_execute(&format!("LISTEN {}", channels::CONSOLE_SESSIONS))
        .await?;
    if std::mem::replace(listened, true) {
        let _ = hub.sender.send(Message::Reconnected);
    }
    let mut watching = hub.watching.subscribe();
    loop {
        // The hub lives as long as this task (both end with the app), so the channel stays open.
        let _ = watching.wait_for(|w| w.open > 0).await;
        client
            .batch_execute(&format!(
                "LISTEN {}; LISTEN {}",
                channels::SIGNALS,
                channels::ORDERS
            ))
            .await?;
        hub.watching.send_modify(|w| w.listening = true);
        loop {
            let _ = watching.wait_for(|w| w.open == 0).await;
            tokio::time::sleep(LINGER).await;
            // Given up only if still nobody watches, under the lock a new stream takes to count
            // itself: that stream then waits for the next LISTEN before it says "connected".
            let give_up = hub.watching.send_if_modified(|w| {
                let idle = w.open == 0;
                if idle {
                    w.listening = false;
                }
                idle
            });
            if give_up {
                break;
            }
        }
        client
            .batch_execute(&format!(
                "UNLISTEN {}; UNLISTEN {}",
                channels::SIGNALS,
                channels::ORDERS
            ))
            .await?;
    }
}

/// A notification, checked (ids only: the browser asks the page for what to show, with its
/// session) and published.
fn heard(hub: &EventHub, channel: &str, payload: &str) {
    if channel == channels::CONSOLE_SESSIONS {
        let mut digest = [0u8; 32];
        if hex::decode_to_slice(payload, &mut digest).is_ok() {
            hub.revoke(digest);
        }
        return;
    }
    let kind = if channel == channels::ORDERS {
        "order"
    } else {
        "signal"
    };
    if uuid::Uuid::parse_str(payload).is_ok() {
        hub.publish(kind, payload);
    }
}
