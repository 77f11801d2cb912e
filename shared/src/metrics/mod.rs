//! The process's Prometheus metrics: one registry per process (a process is what Prometheus
//! scrapes), every HUMBEX metric with its bounded label values, and the text page `GET /metrics`
//! serves. Children of each labelled family are created up front, so recording is an atomic
//! addition: no lock, no allocation, no hashing on a request path. Names and labels are fixed by
//! docs/metrics.md.

mod histogram;
mod process;
mod server;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use histogram::{DurationHistogram, LATENCY_BUCKETS};
pub use process::{ProcessCollector, ProcessStats};
pub use server::MetricsServer;

/// The `Content-Type` of `GET /metrics` (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Labels2 = [(&'static str, &'static str); 2];
type Labels1 = [(&'static str, &'static str); 1];

/// The two webhook routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRoute {
    Signed,
    Tradingview,
}

impl WebhookRoute {
    const ALL: [WebhookRoute; 2] = [WebhookRoute::Signed, WebhookRoute::Tradingview];
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookRoute::Signed => "signed",
            WebhookRoute::Tradingview => "tradingview",
        }
    }
    /// The route a request path is, if it is one (`POST` only).
    pub fn of_path(path: &str) -> Option<WebhookRoute> {
        match path {
            "/webhook" => Some(WebhookRoute::Signed),
            "/webhook/tradingview" => Some(WebhookRoute::Tradingview),
            _ => None,
        }
    }
}

/// What a webhook request came to, from its HTTP status (the webhook's answers are one per status).
pub const WEBHOOK_OUTCOMES: [&str; 10] = [
    "accepted",
    "duplicate",
    "rejected_bad_request",
    "rejected_unauthorized",
    "rejected_forbidden",
    "rejected_too_large",
    "rejected_media_type",
    "rejected_rate_limited",
    "rejected_other",
    "error",
];

/// The index in [`WEBHOOK_OUTCOMES`] of a webhook answer's status.
pub fn webhook_outcome(status: u16) -> usize {
    match status {
        202 => 0,
        200 => 1,
        400 => 2,
        401 => 3,
        403 => 4,
        413 => 5,
        415 => 6,
        429 => 7,
        500..=599 => 9,
        _ => 8,
    }
}

/// Where an order came from (the orders' `origin` column).
pub const ORDER_ORIGINS: [&str; 8] = [
    "signal",
    "take_profit",
    "stop_loss",
    "trailing_stop",
    "break_even",
    "liquidation",
    "adl",
    "manual",
];

/// The statuses an order is counted in when it reaches them (docs/metrics.md).
pub const ORDER_STATUSES: [&str; 6] = [
    "submitted",
    "skipped",
    "rejected",
    "failed",
    "filled",
    "cancelled",
];

/// Bybit retCodes counted under their own label; any other is `other`. HTTP-level failures without
/// a retCode are `http_<status>` (403, 429) or `http_5xx`, and failures below HTTP `transport`.
pub const EXCHANGE_ERROR_CODES: [&str; 24] = [
    "10001",
    "10002",
    "10003",
    "10004",
    "10005",
    "10006",
    "10007",
    "10010",
    "10016",
    "10018",
    "10019",
    "33004",
    "110001",
    "110004",
    "110007",
    "110017",
    "110043",
    "110072",
    "110079",
    "http_403",
    "http_429",
    "http_5xx",
    "transport",
    "other",
];

/// How an exchange request failed, as the Bybit client reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeFailure {
    RetCode(i64),
    HttpStatus(u16),
    Transport,
}

impl ExchangeFailure {
    /// Its label value: one of [`EXCHANGE_ERROR_CODES`].
    pub fn label(self) -> &'static str {
        let known = |text: &str| EXCHANGE_ERROR_CODES.iter().copied().find(|c| *c == text);
        match self {
            ExchangeFailure::RetCode(code) => known(&code.to_string()).unwrap_or("other"),
            ExchangeFailure::HttpStatus(403) => "http_403",
            ExchangeFailure::HttpStatus(429) => "http_429",
            ExchangeFailure::HttpStatus(500..=599) => "http_5xx",
            ExchangeFailure::HttpStatus(_) => "other",
            ExchangeFailure::Transport => "transport",
        }
    }
}

/// A private stream's state, for `humbex_private_streams{state}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    Connecting,
    Connected,
    Reconnecting,
}

impl StreamState {
    const ALL: [StreamState; 3] = [
        StreamState::Connecting,
        StreamState::Connected,
        StreamState::Reconnecting,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Connecting => "connecting",
            StreamState::Connected => "connected",
            StreamState::Reconnecting => "reconnecting",
        }
    }
}

/// A notification channel (`humbex_notifications_total{channel}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationChannel {
    Telegram,
    Webhook,
    Email,
}

/// What one delivery attempt came to (`humbex_notifications_total{outcome}`): `sent`; `retried`
/// (this attempt failed, another will follow); `failed` (given up, or refused for good).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationOutcome {
    Sent,
    Retried,
    Failed,
}

const CHANNELS: [&str; 3] = ["telegram", "webhook", "email"];
const NOTIFICATION_OUTCOMES: [&str; 3] = ["sent", "retried", "failed"];

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// [route][outcome], in the order of [`WebhookRoute::ALL`] and [`WEBHOOK_OUTCOMES`].
    webhooks: Vec<Vec<Counter>>,
    webhook_duration: Vec<DurationHistogram>,
    signal_to_order: DurationHistogram,
    order_to_fill: DurationHistogram,
    /// [origin][status], in the order of [`ORDER_ORIGINS`] and [`ORDER_STATUSES`].
    orders: Vec<Vec<Counter>>,
    exchange_errors: Vec<Counter>,
    exchange_duration: Family<Labels1, DurationHistogram>,
    signals_pending: Gauge,
    signals_pending_oldest: Gauge<f64, std::sync::atomic::AtomicU64>,
    private_streams: Vec<Gauge>,
    listen_connected: Gauge,
    /// [channel][outcome], in the order of [`CHANNELS`] and [`NOTIFICATION_OUTCOMES`].
    notifications: Vec<Vec<Counter>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Children of `family` for every pair of `a` × `b` values, created now.
fn grid(
    family: &Family<Labels2, Counter>,
    a: (&'static str, &[&'static str]),
    b: (&'static str, &[&'static str]),
) -> Vec<Vec<Counter>> {
    a.1.iter()
        .map(|x| {
            b.1.iter()
                .map(|y| family.get_or_create(&[(a.0, *x), (b.0, *y)]).clone())
                .collect()
        })
        .collect()
}

impl Metrics {
    fn new() -> Metrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let r = root.sub_registry_with_prefix("humbex");

        let webhooks = Family::<Labels2, Counter>::default();
        r.register(
            "webhooks",
            "Webhook requests by route and outcome.",
            webhooks.clone(),
        );
        let routes: Vec<&'static str> = WebhookRoute::ALL.iter().map(|r| r.as_str()).collect();
        let webhooks = grid(&webhooks, ("route", &routes), ("outcome", &WEBHOOK_OUTCOMES));

        let webhook_duration = Family::<Labels1, DurationHistogram>::default();
        r.register(
            "webhook_duration_seconds",
            "Time from a webhook request's arrival to its answer.",
            webhook_duration.clone(),
        );
        let webhook_duration = routes
            .iter()
            .map(|route| webhook_duration.get_or_create(&[("route", *route)]).clone())
            .collect();

        let signal_to_order = DurationHistogram::default();
        r.register(
            "signal_to_order_seconds",
            "Time from a signal's receipt to the exchange accepting its order.",
            signal_to_order.clone(),
        );
        let order_to_fill = DurationHistogram::default();
        r.register(
            "order_to_fill_seconds",
            "Time from an order row's creation to its fill being recorded.",
            order_to_fill.clone(),
        );

        let orders = Family::<Labels2, Counter>::default();
        r.register(
            "orders",
            "Orders reaching a status, by origin and status.",
            orders.clone(),
        );
        let orders = grid(&orders, ("origin", &ORDER_ORIGINS), ("status", &ORDER_STATUSES));

        let exchange_errors = Family::<Labels1, Counter>::default();
        r.register(
            "exchange_errors",
            "Failed exchange requests by Bybit retCode (a known list, else other).",
            exchange_errors.clone(),
        );
        let exchange_errors = EXCHANGE_ERROR_CODES
            .iter()
            .map(|code| exchange_errors.get_or_create(&[("code", *code)]).clone())
            .collect();

        let exchange_duration = Family::<Labels1, DurationHistogram>::default();
        r.register(
            "exchange_request_duration_seconds",
            "Exchange REST request durations by endpoint path.",
            exchange_duration.clone(),
        );

        let signals_pending = Gauge::default();
        r.register(
            "signals_pending",
            "Signals received and not yet finished (received or processing).",
            signals_pending.clone(),
        );
        let signals_pending_oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        r.register(
            "signals_pending_oldest_seconds",
            "Age of the oldest unfinished signal (0 when none).",
            signals_pending_oldest.clone(),
        );

        let private_streams = Family::<Labels1, Gauge>::default();
        r.register(
            "private_streams",
            "Accounts' private WebSocket streams by state.",
            private_streams.clone(),
        );
        let private_streams = StreamState::ALL
            .iter()
            .map(|s| private_streams.get_or_create(&[("state", s.as_str())]).clone())
            .collect();

        let listen_connected = Gauge::default();
        r.register(
            "listen_connected",
            "Executor LISTEN connections to PostgreSQL that are up (1 per executor when healthy).",
            listen_connected.clone(),
        );

        let notifications = Family::<Labels2, Counter>::default();
        r.register(
            "notifications",
            "Notification delivery attempts by channel and outcome.",
            notifications.clone(),
        );
        let notifications = grid(
            &notifications,
            ("channel", &CHANNELS),
            ("outcome", &NOTIFICATION_OUTCOMES),
        );

        Metrics {
            registry: root,
            webhooks,
            webhook_duration,
            signal_to_order,
            order_to_fill,
            orders,
            exchange_errors,
            exchange_duration,
            signals_pending,
            signals_pending_oldest,
            private_streams,
            listen_connected,
            notifications,
        }
    }

    /// The page `GET /metrics` answers.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// A webhook answered with `status` after `elapsed`.
    pub fn webhook(&self, route: WebhookRoute, status: u16, elapsed: Duration) {
        let route = route as usize;
        self.webhooks[route][webhook_outcome(status)].inc();
        self.webhook_duration[route].observe(elapsed);
    }

    /// An order reached `status` (one of [`ORDER_STATUSES`]; another is ignored). Origin is
    /// `signal` until orders carry their own.
    pub fn order(&self, origin: &str, status: &str) {
        let o = ORDER_ORIGINS.iter().position(|x| *x == origin);
        let s = ORDER_STATUSES.iter().position(|x| *x == status);
        if let (Some(o), Some(s)) = (o, s) {
            self.orders[o][s].inc();
        }
    }

    pub fn signal_to_order(&self, elapsed: Duration) {
        self.signal_to_order.observe(elapsed);
    }

    pub fn order_to_fill(&self, elapsed: Duration) {
        self.order_to_fill.observe(elapsed);
    }

    /// An exchange request to `endpoint` (a fixed path such as `/v5/order/create`) took `elapsed`
    /// and failed as `failure`, if it did. Paths come from the client's own constants, so the set
    /// is bounded; this takes a read lock, which is nothing beside a network round trip.
    pub fn exchange_request(
        &self,
        endpoint: &'static str,
        elapsed: Duration,
        failure: Option<ExchangeFailure>,
    ) {
        self.exchange_duration
            .get_or_create(&[("endpoint", endpoint)])
            .observe(elapsed);
        if let Some(failure) = failure {
            let label = failure.label();
            if let Some(i) = EXCHANGE_ERROR_CODES.iter().position(|c| *c == label) {
                self.exchange_errors[i].inc();
            }
        }
    }

    /// The signals not yet finished, and the age of the oldest.
    pub fn signals_pending(&self, count: i64, oldest: Duration) {
        self.signals_pending.set(count);
        self.signals_pending_oldest.set(oldest.as_secs_f64());
    }

    /// A private stream entering `state` (and leaving `from`, if it was counted in one).
    pub fn private_stream(&self, from: Option<StreamState>, to: Option<StreamState>) {
        if let Some(from) = from {
            self.private_streams[from as usize].dec();
        }
        if let Some(to) = to {
            self.private_streams[to as usize].inc();
        }
    }

    /// A LISTEN connection came up (`true`) or went down (`false`).
    pub fn listen_connected(&self, up: bool) {
        if up {
            self.listen_connected.inc();
        } else {
            self.listen_connected.dec();
        }
    }

    /// One notification delivery attempt on `channel` ended as `outcome`.
    pub fn notification(&self, channel: NotificationChannel, outcome: NotificationOutcome) {
        self.notifications[channel as usize][outcome as usize].inc();
    }
}

/// Keeps `humbex_private_streams{state}` true for one stream: moves its count between states and
/// takes it out when dropped, however the stream's task ends.
#[derive(Debug)]
pub struct StreamGauge {
    state: Option<StreamState>,
}

impl StreamGauge {
    pub fn new(state: StreamState) -> StreamGauge {
        metrics().private_stream(None, Some(state));
        StreamGauge { state: Some(state) }
    }

    pub fn set(&mut self, state: StreamState) {
        if self.state != Some(state) {
            metrics().private_stream(self.state, Some(state));
            self.state = Some(state);
        }
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        metrics().private_stream(self.state.take(), None);
    }
}

/// Counts one LISTEN connection as up while alive.
#[derive(Debug)]
pub struct ListenGauge(());

impl ListenGauge {
    pub fn up() -> ListenGauge {
        metrics().listen_connected(true);
        ListenGauge(())
    }
}

impl Drop for ListenGauge {
    fn drop(&mut self) {
        metrics().listen_connected(false);
    }
}

#[cfg(test)]
mod tests;
