//! The label values of every HUMBEX metric: fixed, small sets (never a user id, an order id or free
//! text), each in the order its series are created, so recording picks a series by index.

/// The two webhook routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRoute {
    Signed,
    Tradingview,
}

impl WebhookRoute {
    pub(super) const ALL: [WebhookRoute; 2] = [WebhookRoute::Signed, WebhookRoute::Tradingview];
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
    pub(super) const ALL: [StreamState; 3] = [
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

pub(super) const CHANNELS: [&str; 3] = ["telegram", "webhook", "email"];
pub(super) const NOTIFICATION_OUTCOMES: [&str; 3] = ["sent", "retried", "failed"];
