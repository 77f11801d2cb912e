//! The process's Prometheus metrics: one registry per process (a process is what Prometheus
//! scrapes), every HUMBEX metric with its bounded label values, and the text page `GET /metrics`
//! serves. Children of each labelled family are created up front, so recording is an atomic
//! addition: no lock, no allocation, no hashing on a request path. Names and labels are fixed by
//! docs/metrics.md.

mod histogram;
mod labels;
mod process;
mod server;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use histogram::{DurationHistogram, LATENCY_BUCKETS};
pub use labels::*;
use labels::{CHANNELS, NOTIFICATION_OUTCOMES};
pub use process::{ProcessCollector, ProcessStats};
pub use server::MetricsServer;

/// The `Content-Type` of `GET /metrics` (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Labels2 = [(&'static str, &'static str); 2];
type Labels1 = [(&'static str, &'static str); 1];

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

    /// An order reached `status` (one of [`ORDER_STATUSES`]; another is ignored); `origin` is the
    /// row's `origin` column (one of [`ORDER_ORIGINS`]).
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
