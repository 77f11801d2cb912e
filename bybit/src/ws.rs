//! [`PrivateStream`]: one authenticated Bybit private WebSocket per account, subscribed to `order`
//! and `execution` (and `position` and `wallet` when asked: [`PrivateStreamConfig::topics`]), kept alive with JSON pings, reconnected with capped exponential backoff, and
//! delivering typed [`StreamEvent`]s over a bounded channel. It owns the connection life cycle; the
//! caller owns what the events mean (and reconciles over REST after each `Connected`).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::model::{Execution, Order, Position, WalletAccount};
use crate::parse::{PrivateFrame, parse_private_frame};
use crate::rest::{ensure_crypto_provider, now_ms};
use crate::signing::Credentials;

/// What the stream tells its owner. The pushes are boxed: a Tokio channel allocates its slots 32 at
/// a time as soon as it exists, so one unboxed `Order` (several hundred bytes) in the enum cost
/// every account's idle channel about 20 KiB.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Authenticated and subscribed (first time or after a reconnect). Pushes sent while the stream
    /// was down are lost: reconcile every open order over REST now.
    Connected {
        session: u64,
    },
    /// A subscribed session ended; the stream is reconnecting on its own.
    Disconnected {
        reason: String,
    },
    /// Bybit refused the auth op (bad key, bad signature, clock). Retried only after
    /// [`PrivateStreamConfig::auth_failure_delay`]; check the key over REST and shut down if it is
    /// unusable.
    AuthFailed {
        message: String,
    },
    OrderUpdate(Box<Order>),
    Execution(Box<Execution>),
    /// Only with [`PrivateTopic::Position`]: a position slot after a change, and on every mark
    /// price move while it is open (mark price, unrealised PnL, TP/SL, liquidation price).
    PositionUpdate(Box<Position>),
    /// Only with [`PrivateTopic::Wallet`]: the unified account after a balance change.
    WalletUpdate(Box<WalletAccount>),
    /// A push could not be decoded, so an update may be missing: reconcile over REST.
    Unparsed {
        reason: String,
    },
}

/// A private topic this stream can subscribe to (the all-in-one names, as one request may not mix
/// them with the `.linear` ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrivateTopic {
    Order,
    Execution,
    Position,
    Wallet,
}

impl PrivateTopic {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivateTopic::Order => "order",
            PrivateTopic::Execution => "execution",
            PrivateTopic::Position => "position",
            PrivateTopic::Wallet => "wallet",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PrivateStreamConfig {
    /// e.g. `wss://stream.bybit.com/v5/private` or the paper exchange's `ws://127.0.0.1:PORT/v5/private`.
    pub url: String,
    pub credentials: Credentials,
    /// What to subscribe to; `order` and `execution` by default (position pushes come on every
    /// price move, so only a consumer that needs them should ask).
    pub topics: Vec<PrivateTopic>,
    /// Bybit recommends a JSON ping every 20 s; it closes idle connections after 10 minutes.
    pub ping_interval: Duration,
    /// No frame at all for this long means the path is dead even if TCP has not noticed.
    pub silence_timeout: Duration,
    /// Time allowed for connect, auth reply and subscribe reply, each.
    pub handshake_timeout: Duration,
    /// How far in the future the auth `expires` lies.
    pub auth_expiry: Duration,
    pub reconnect_initial_delay: Duration,
    pub reconnect_max_delay: Duration,
    /// A session that stayed up this long resets the backoff to the initial delay.
    pub stable_after: Duration,
    pub auth_failure_delay: Duration,
    pub channel_capacity: usize,
}

impl PrivateStreamConfig {
    pub fn new(url: impl Into<String>, credentials: Credentials) -> Self {
        PrivateStreamConfig {
            url: url.into(),
            credentials,
            topics: vec![PrivateTopic::Order, PrivateTopic::Execution],
            ping_interval: Duration::from_secs(20),
            silence_timeout: Duration::from_secs(50),
            handshake_timeout: Duration::from_secs(10),
            auth_expiry: Duration::from_secs(10),
            reconnect_initial_delay: Duration::from_millis(500),
            reconnect_max_delay: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            auth_failure_delay: Duration::from_secs(60),
            channel_capacity: 1024,
        }
    }
}

pub struct PrivateStream;

impl PrivateStream {
    /// Starts the connection task. Events arrive on the returned receiver; the task stops when
    /// [`PrivateStreamHandle::shutdown`] is called or the receiver is dropped.
    pub fn spawn(config: PrivateStreamConfig) -> (PrivateStreamHandle, mpsc::Receiver<StreamEvent>) {
        ensure_crypto_provider();
        let (events_tx, events_rx) = mpsc::channel(config.channel_capacity.max(1));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(run(config, events_tx, shutdown_rx));
        (PrivateStreamHandle { shutdown_tx, task }, events_rx)
    }
}

#[must_use = "dropping the handle leaves the stream running until its receiver is dropped"]
pub struct PrivateStreamHandle {
    shutdown_tx: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PrivateStreamHandle {
    /// Closes the connection and waits for the task to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        let _ = self.task.await;
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

enum SessionEnd {
    /// The receiver is gone; nobody is listening.
    ReceiverGone,
    AuthFailed(String),
    Lost {
        reason: String,
        subscribed_for: Option<Duration>,
    },
}

async fn wait_for_shutdown(mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            // Handle dropped without shutdown: keep running until the receiver goes away.
            std::future::pending::<()>().await;
        }
    }
}

async fn run(
    config: PrivateStreamConfig,
    events: mpsc::Sender<StreamEvent>,
    shutdown: watch::Receiver<bool>,
) {
    let stop = wait_for_shutdown(shutdown);
    tokio::pin!(stop);
    let mut backoff = Backoff::new(config.reconnect_initial_delay, config.reconnect_max_delay);
    let mut session = 0u64;
    loop {
        let end = tokio::select! {
            end = run_session(&config, &events, &mut session) => end,
            _ = &mut stop => return,
            _ = events.closed() => return,
        };
        let (event, wait) = match end {
            SessionEnd::ReceiverGone => return,
            SessionEnd::AuthFailed(message) => {
                tracing::warn!(api_key = %config.credentials.masked_key(), %message, "Private stream auth refused");
                (
                    Some(StreamEvent::AuthFailed { message }),
                    config.auth_failure_delay,
                )
            }
            SessionEnd::Lost {
                reason,
                subscribed_for,
            } => {
                tracing::info!(api_key = %config.credentials.masked_key(), %reason, "Private stream lost");
                if subscribed_for.is_some_and(|up_for| up_for >= config.stable_after) {
                    backoff.reset();
                }
                // Failed attempts that never subscribed are not news to the caller: it was
                // already told Disconnected when the last good session ended.
                let event = subscribed_for.map(|_| StreamEvent::Disconnected { reason });
                (event, backoff.next_delay())
            }
        };
        if let Some(event) = event {
            // A full channel must not delay shutdown.
            tokio::select! {
                sent = events.send(event) => if sent.is_err() { return },
                _ = &mut stop => return,
            }
        }
        tokio::select! {
            _ = sleep(wait) => {}
            _ = &mut stop => return,
            _ = events.closed() => return,
        }
    }
}

/// Doubling reconnect delay, capped. Reset only after a session that stayed up for a while, so a
/// server that accepts and immediately drops still gets an ever slower client.
#[derive(Debug, Clone)]
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn lost(reason: impl Into<String>) -> SessionEnd {
    SessionEnd::Lost {
        reason: reason.into(),
        subscribed_for: None,
    }
}

/// Reads until a control reply arrives; pushes that come first are forwarded.
async fn await_reply(
    socket: &mut Socket,
    events: &mpsc::Sender<StreamEvent>,
    limit: Duration,
) -> Result<PrivateFrame, SessionEnd> {
    let deadline = Instant::now() + limit;
    loop {
        let message = match timeout(deadline - Instant::now(), socket.next()).await {
            Err(_) => return Err(lost("no reply during the handshake")),
            Ok(None) => return Err(lost("closed during the handshake")),
            Ok(Some(Err(e))) => return Err(lost(format!("read failed during the handshake: {e}"))),
            Ok(Some(Ok(message))) => message,
        };
        let Message::Text(text) = message else {
            continue;
        };
        match parse_private_frame(&text) {
            Ok(frame @ (PrivateFrame::AuthReply { .. } | PrivateFrame::SubscribeReply { .. })) => {
                return Ok(frame);
            }
            Ok(frame) => forward(frame, events).await?,
            Err(e) => forward_unparsed(e.to_string(), events).await?,
        }
    }
}

async fn forward(frame: PrivateFrame, events: &mpsc::Sender<StreamEvent>) -> Result<(), SessionEnd> {
    let items: Vec<StreamEvent> = match frame {
        PrivateFrame::Orders(orders) => orders
            .into_iter()
            .map(|o| StreamEvent::OrderUpdate(Box::new(o)))
            .collect(),
        PrivateFrame::Executions(fills) => fills
            .into_iter()
            .map(|x| StreamEvent::Execution(Box::new(x)))
            .collect(),
        PrivateFrame::Positions(positions) => positions
            .into_iter()
            .map(|p| StreamEvent::PositionUpdate(Box::new(p)))
            .collect(),
        PrivateFrame::Wallets(wallets) => wallets
            .into_iter()
            .map(|w| StreamEvent::WalletUpdate(Box::new(w)))
            .collect(),
        _ => Vec::new(),
    };
    for event in items {
        events.send(event).await.map_err(|_| SessionEnd::ReceiverGone)?;
    }
    Ok(())
}

async fn forward_unparsed(reason: String, events: &mpsc::Sender<StreamEvent>) -> Result<(), SessionEnd> {
    tracing::warn!(%reason, "Unparseable private stream frame");
    events
        .send(StreamEvent::Unparsed { reason })
        .await
        .map_err(|_| SessionEnd::ReceiverGone)
}

async fn send_json(socket: &mut Socket, value: serde_json::Value) -> Result<(), SessionEnd> {
    socket
        .send(Message::text(value.to_string()))
        .await
        .map_err(|e| lost(format!("write failed: {e}")))
}

async fn run_session(
    config: &PrivateStreamConfig,
    events: &mpsc::Sender<StreamEvent>,
    session: &mut u64,
) -> SessionEnd {
    match session_inner(config, events, session).await {
        Ok(never) => match never {},
        Err(end) => end,
    }
}

/// The largest private push or frame accepted; Bybit's are a few KiB, so a bigger one is not Bybit
/// and ends the session instead of being buffered (tungstenite's own limits are 64 and 16 MiB).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Private pushes are a few KiB; tungstenite's default 128 KiB read buffer per connection is what
/// made the executor 220 MiB with 1,200 streams open (87 MiB with 8 KiB). The buffer is also the
/// most one read asks of the socket, and it grows to hold a longer frame whole, so 4 KiB costs a
/// larger push one or two more reads and saves 4 KiB on every idle stream (massif: the buffer
/// was 8.3 KiB of an account's 45 KiB). The write side needs nothing: tungstenite's out buffer
/// starts empty and only ever holds our own small auth, subscribe and ping frames.
fn socket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

async fn session_inner(
    config: &PrivateStreamConfig,
    events: &mpsc::Sender<StreamEvent>,
    session: &mut u64,
) -> Result<std::convert::Infallible, SessionEnd> {
    // Boxed: the connect future (resolver, TCP and TLS handshakes) is far larger than the
    // session's steady state, and an unboxed one would size every stream's task for good.
    let (mut socket, _) = match timeout(
        config.handshake_timeout,
        Box::pin(tokio_tungstenite::connect_async_tls_with_config(
            config.url.as_str(),
            Some(socket_config()),
            false,
            Some(tokio_tungstenite::Connector::Rustls(
                crate::tls::websocket_config(),
            )),
        )),
    )
    .await
    {
        Err(_) => return Err(lost("connect timed out")),
        Ok(Err(e)) => return Err(lost(format!("connect failed: {e}"))),
        Ok(Ok(connected)) => connected,
    };

    let expires = now_ms() + config.auth_expiry.as_millis() as i64;
    let signature = config.credentials.sign_ws_auth(expires);
    send_json(
        &mut socket,
        json!({"req_id": "auth", "op": "auth", "args": [config.credentials.api_key(), expires, signature]}),
    )
    .await?;
    match await_reply(&mut socket, events, config.handshake_timeout).await? {
        PrivateFrame::AuthReply { success: true, .. } => {}
        PrivateFrame::AuthReply { message, .. } => return Err(SessionEnd::AuthFailed(message)),
        other => return Err(lost(format!("expected an auth reply, got {other:?}"))),
    }

    let topics: Vec<&str> = config.topics.iter().map(|t| t.as_str()).collect();
    send_json(
        &mut socket,
        json!({"req_id": "subscribe", "op": "subscribe", "args": topics}),
    )
    .await?;
    match await_reply(&mut socket, events, config.handshake_timeout).await? {
        PrivateFrame::SubscribeReply { success: true, .. } => {}
        PrivateFrame::SubscribeReply { message, .. } => {
            return Err(lost(format!("subscribe refused: {message}")));
        }
        other => return Err(lost(format!("expected a subscribe reply, got {other:?}"))),
    }

    *session += 1;
    let subscribed_at = Instant::now();
    events
        .send(StreamEvent::Connected { session: *session })
        .await
        .map_err(|_| SessionEnd::ReceiverGone)?;
    tracing::info!(
        api_key = %config.credentials.masked_key(),
        session = *session,
        "Private stream subscribed"
    );

    let after_subscribe = |reason: String| SessionEnd::Lost {
        reason,
        subscribed_for: Some(subscribed_at.elapsed()),
    };
    let mut ping = tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_frame_at = Instant::now();
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if last_frame_at.elapsed() > config.silence_timeout {
                    return Err(after_subscribe("no frame (not even a pong) for too long".into()));
                }
                socket
                    .send(Message::text(json!({"op": "ping"}).to_string()))
                    .await
                    .map_err(|e| after_subscribe(format!("ping failed: {e}")))?;
            }
            message = socket.next() => {
                last_frame_at = Instant::now();
                match message {
                    None => return Err(after_subscribe("connection closed".into())),
                    Some(Err(e)) => return Err(after_subscribe(format!("read failed: {e}"))),
                    Some(Ok(Message::Close(frame))) => {
                        return Err(after_subscribe(format!("closed by the server: {frame:?}")));
                    }
                    Some(Ok(Message::Text(text))) => match parse_private_frame(&text) {
                        Ok(frame) => forward(frame, events).await?,
                        Err(e) => forward_unparsed(e.to_string(), events).await?,
                    },
                    // tungstenite answers protocol pings itself.
                    Some(Ok(_)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let delays: Vec<u64> = (0..6).map(|_| backoff.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, vec![500, 1000, 2000, 3000, 3000, 3000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
    }

    #[test]
    fn an_event_stays_small_so_an_idle_channel_does() {
        // Every stream's channel allocates 32 events' worth at once; unboxed, the Order variant
        // made that about 15 KiB per account (massif, 500 accounts).
        let size = std::mem::size_of::<StreamEvent>();
        assert!(size <= 48, "StreamEvent is {size} bytes; box the large variant");
    }

    #[test]
    fn backoff_cap_below_initial_uses_initial() {
        let mut backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(backoff.next_delay(), Duration::from_secs(2));
        assert_eq!(backoff.next_delay(), Duration::from_secs(2));
    }
}
