//! Request and response bodies of the admin API. Decimals travel as strings; secrets only inwards.

use chrono::{DateTime, Utc};
use humbex_shared::domain::trade::{Level, TradeSpec};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object};
use uuid::Uuid;

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UserCreate {
    /// The user's email address (unique, case-insensitive).
    #[oai(validator(max_length = 254, pattern = r"^\s*[!-?A-~]+@[!-?A-~]+\.[!-?A-~]+\s*$"))]
    pub email: String,
}

/// A new user, with the webhook token shown this once.
#[derive(Debug, Object)]
pub struct UserCreated {
    pub id: Uuid,
    pub email: String,
    /// The user's webhook token. It is shown only now; only its digest is stored.
    pub webhook_token: String,
    pub webhook_token_prefix: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub active: bool,
    /// The first characters of the current webhook token, to tell tokens apart.
    pub webhook_token_prefix: String,
    pub token_rotated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[oai(nullable)]
    pub subscription: Option<Subscription>,
}

/// A freshly rotated webhook token; the previous one stopped working at once.
#[derive(Debug, Object)]
pub struct TokenRotated {
    pub id: Uuid,
    /// The new token, shown only now.
    pub webhook_token: String,
    pub webhook_token_prefix: String,
    pub rotated_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct StrategyCreate {
    /// A unique name, 1 to 100 printable characters.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// Default `max_lag_secs` for this strategy's signals that name none (1 to 86400).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "86400")))]
    pub max_lag_secs: Option<u32>,
    /// Default leverage for this strategy's signals that name none: 1 to 200, at most 2 places.
    #[oai(
        nullable,
        validator(pattern = r"^(0*([1-9][0-9]?|1[0-9]{2})(\.[0-9]{1,2})?|0*200(\.0{1,2})?)$")
    )]
    pub leverage: Option<String>,
}

/// A strategy's defaults for its signals. An absent field is kept; `null` clears it.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct StrategyUpdate {
    /// Default `max_lag_secs` (1 to 86400), or null for none.
    #[oai(validator(minimum(value = "1"), maximum(value = "86400")))]
    pub max_lag_secs: MaybeUndefined<u32>,
    /// Default leverage (1 to 200, at most 2 places), or null for none.
    #[oai(validator(pattern = r"^(0*([1-9][0-9]?|1[0-9]{2})(\.[0-9]{1,2})?|0*200(\.0{1,2})?)$"))]
    pub leverage: MaybeUndefined<String>,
}

#[derive(Debug, Object)]
pub struct StrategyCreated {
    pub id: Uuid,
    pub name: String,
    /// The strategy's webhook token, shown only now.
    pub webhook_token: String,
    pub webhook_token_prefix: String,
    #[oai(nullable)]
    pub max_lag_secs: Option<u32>,
    #[oai(nullable)]
    pub leverage: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct Strategy {
    pub id: Uuid,
    pub name: String,
    pub active: bool,
    pub webhook_token_prefix: String,
    /// Users whose subscription to this strategy is active now.
    pub active_subscribers: i64,
    /// Default `max_lag_secs` of its signals; null for none.
    #[oai(nullable)]
    pub max_lag_secs: Option<u32>,
    /// Default leverage of its signals; null for none.
    #[oai(nullable)]
    pub leverage: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    Active,
    Inactive,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Inactive => "inactive",
        }
    }
}

/// The whole subscription (PUT replaces it; omitted fields take their defaults).
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct SubscriptionUpdate {
    pub status: SubscriptionStatus,
    /// When the subscription stops being active; none means it does not expire.
    #[oai(nullable)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Follow this strategy's signals.
    #[oai(nullable)]
    pub strategy_id: Option<Uuid>,
    /// Multiplies every signal's quantity (default 1). A positive decimal, best sent as a string.
    #[oai(
        nullable,
        validator(
            pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
        )
    )]
    pub size_multiplier: Option<String>,
    /// Largest quantity of one order; larger ones are capped. A positive decimal.
    #[oai(
        nullable,
        validator(
            pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,8})?|0+\.(0{0,7}[1-9]|0{0,6}[1-9][0-9]|0{0,5}[1-9][0-9]{2}|0{0,4}[1-9][0-9]{3}|0{0,3}[1-9][0-9]{4}|0{0,2}[1-9][0-9]{5}|0?[1-9][0-9]{6}|[1-9][0-9]{7}))$"
        )
    )]
    pub max_qty: Option<String>,
    /// The payment this activation rests on (free text, at most 200 characters).
    #[oai(nullable, validator(max_length = 200))]
    pub payment_ref: Option<String>,
    /// Leverage for this user's signals when neither the signal nor its strategy names one: 1 to
    /// 200, at most 2 places.
    #[oai(
        nullable,
        validator(pattern = r"^(0*([1-9][0-9]?|1[0-9]{2})(\.[0-9]{1,2})?|0*200(\.0{1,2})?)$")
    )]
    pub leverage: Option<String>,
    /// Margin mode for this user's signals that name none: `cross` or `isolated`.
    #[oai(nullable, validator(pattern = r"^(cross|isolated)$"))]
    pub margin_mode: Option<String>,
}

#[derive(Debug, Object)]
pub struct Subscription {
    pub id: Uuid,
    pub user_id: Uuid,
    #[oai(nullable)]
    pub strategy_id: Option<Uuid>,
    /// active or inactive, as set.
    pub status: String,
    /// True when the status is active and the subscription has not expired.
    pub active_now: bool,
    #[oai(nullable)]
    pub expires_at: Option<DateTime<Utc>>,
    pub size_multiplier: String,
    #[oai(nullable)]
    pub max_qty: Option<String>,
    #[oai(nullable)]
    pub payment_ref: Option<String>,
    #[oai(nullable)]
    pub activated_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub activated_by: Option<String>,
    /// Default leverage of this user's signals; null for none.
    #[oai(nullable)]
    pub leverage: Option<String>,
    /// Default margin mode (cross or isolated) of this user's signals; null for none.
    #[oai(nullable)]
    pub margin_mode: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ApiKeyCreate {
    /// The Bybit API key (letters and digits).
    #[oai(validator(pattern = r"^\s*[A-Za-z0-9]{1,64}\s*$"))]
    pub api_key: String,
    /// The Bybit API secret. Stored encrypted; never returned by any endpoint.
    #[oai(validator(pattern = r"^\s*[!-~]{1,128}\s*$"))]
    pub api_secret: String,
    /// A name for this key (at most 100 printable characters).
    #[oai(nullable, validator(max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"))]
    pub label: Option<String>,
}

impl std::fmt::Debug for ApiKeyCreate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyCreate")
            .field("api_key", &"[REDACTED]")
            .field("api_secret", &"[REDACTED]")
            .field("label", &self.label)
            .finish()
    }
}

/// An exchange key as shown: masked, never the secret.
#[derive(Debug, Object)]
pub struct ApiKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub exchange: String,
    pub label: String,
    pub api_key_masked: String,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the exchange last confirmed the key's permissions.
    #[oai(nullable)]
    pub permissions_checked_at: Option<DateTime<Utc>>,
    /// When the executor stopped using the key because the exchange refused it (or it no longer
    /// passes the key policy); null while usable.
    #[oai(nullable)]
    pub unusable_at: Option<DateTime<Utc>>,
    /// Why the key is unusable; null while usable.
    #[oai(nullable)]
    pub unusable_reason: Option<String>,
    /// Only when the key was just added: things to fix that did not stop it (say, no IP binding).
    #[oai(nullable, skip_serializing_if_is_none)]
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Object)]
pub struct Signal {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    /// signed or tradingview.
    pub source: String,
    #[oai(nullable)]
    pub user_id: Option<Uuid>,
    #[oai(nullable)]
    pub strategy_id: Option<Uuid>,
    pub action: String,
    pub symbol: String,
    #[oai(nullable)]
    pub quantity: Option<String>,
    #[oai(nullable)]
    pub client_id: Option<String>,
    #[oai(nullable)]
    pub price: Option<String>,
    #[oai(nullable)]
    pub signal_time: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub comment: Option<String>,
    /// received, processing, done or rejected.
    pub status: String,
    #[oai(nullable)]
    pub reject_reason: Option<String>,
    /// The body as received, with the token replaced by its prefix.
    pub raw_body: String,
    /// The v2 fields as parsed (docs/api.md#webhook-body-v2); null for a v1 signal.
    #[oai(nullable)]
    pub trade: Option<SignalTrade>,
}

/// A signal's v2 fields as HUMBEX read them: the body's fields, in the body's shapes, with the
/// defaults it left out filled in (`quantity_type`, `order_type`, `time_in_force`).
#[derive(Debug, Object)]
pub struct SignalTrade {
    pub quantity_type: String,
    #[oai(nullable)]
    pub target_position: Option<String>,
    pub order_type: String,
    #[oai(nullable)]
    pub limit_price: Option<String>,
    pub time_in_force: String,
    #[oai(nullable)]
    pub cancel_after_secs: Option<u32>,
    #[oai(nullable)]
    pub trigger_price: Option<String>,
    #[oai(nullable)]
    pub take_profit: Option<LevelShown>,
    #[oai(nullable)]
    pub stop_loss: Option<LevelShown>,
    #[oai(nullable)]
    pub trailing_stop: Option<TrailingStopShown>,
    #[oai(nullable)]
    pub break_even: Option<BreakEvenShown>,
    #[oai(nullable)]
    pub leverage: Option<String>,
    #[oai(nullable)]
    pub margin_mode: Option<String>,
    #[oai(nullable)]
    pub max_lag_secs: Option<u32>,
}

/// `{"price": x}` or `{"percent": x}`: the other is absent.
#[derive(Debug, Object)]
pub struct LevelShown {
    #[oai(skip_serializing_if_is_none)]
    pub price: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub percent: Option<String>,
}

/// `distance` or `percent`, and `activation_price` when given.
#[derive(Debug, Object)]
pub struct TrailingStopShown {
    #[oai(skip_serializing_if_is_none)]
    pub distance: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub percent: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub activation_price: Option<String>,
}

#[derive(Debug, Object)]
pub struct BreakEvenShown {
    pub trigger_percent: String,
    pub offset_percent: String,
}

fn level_shown(level: Level) -> LevelShown {
    match level {
        Level::Price(p) => LevelShown {
            price: Some(p.get().to_string()),
            percent: None,
        },
        Level::Percent(p) => LevelShown {
            price: None,
            percent: Some(p.get().to_string()),
        },
    }
}

impl From<&TradeSpec> for SignalTrade {
    fn from(t: &TradeSpec) -> Self {
        let text = |d: rust_decimal::Decimal| d.normalize().to_string();
        SignalTrade {
            quantity_type: t.quantity_type.to_string(),
            target_position: t.target_position.map(|q| text(q.get())),
            order_type: t.order_type.to_string(),
            limit_price: t.limit_price.map(|p| text(p.get())),
            time_in_force: t.time_in_force.to_string(),
            cancel_after_secs: t.cancel_after_secs,
            trigger_price: t.trigger_price.map(|p| text(p.get())),
            take_profit: t.take_profit.map(level_shown),
            stop_loss: t.stop_loss.map(level_shown),
            trailing_stop: t.trailing_stop.map(|ts| {
                let LevelShown { price, percent } = level_shown(ts.distance);
                TrailingStopShown {
                    distance: price,
                    percent,
                    activation_price: ts.activation_price.map(|p| text(p.get())),
                }
            }),
            break_even: t.break_even.map(|b| BreakEvenShown {
                trigger_percent: text(b.trigger_percent.get()),
                offset_percent: text(b.offset_percent),
            }),
            leverage: t.leverage.map(|l| text(l.get())),
            margin_mode: t.margin_mode.map(|m| m.to_string()),
            max_lag_secs: t.max_lag_secs,
        }
    }
}

#[derive(Debug, Object)]
pub struct SignalDetail {
    #[oai(flatten)]
    pub signal: Signal,
    pub orders: Vec<Order>,
}

#[derive(Debug, Object)]
pub struct SignalPage {
    pub items: Vec<Signal>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[oai(nullable)]
    pub next_before: Option<Uuid>,
}

#[derive(Debug, Object)]
pub struct Fill {
    pub exec_id: String,
    pub qty: String,
    pub price: String,
    pub fee: String,
    pub exec_time: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct Order {
    pub id: Uuid,
    /// The signal it was placed for; for an order the exchange or the user created, the signal
    /// that opened its position when known.
    #[oai(nullable)]
    pub signal_id: Option<Uuid>,
    pub user_id: Uuid,
    #[oai(nullable)]
    pub api_key_id: Option<Uuid>,
    /// HUMBEX's orderLinkId; null for an order the exchange or the user created.
    #[oai(nullable)]
    pub order_link_id: Option<String>,
    #[oai(nullable)]
    pub exchange_order_id: Option<String>,
    pub symbol: String,
    /// buy or sell.
    pub side: String,
    #[oai(nullable)]
    pub qty: Option<String>,
    pub reduce_only: bool,
    /// pending, submitted, new, partially_filled, filled, cancelled, rejected, skipped or failed.
    pub status: String,
    #[oai(nullable)]
    pub error: Option<String>,
    #[oai(nullable)]
    pub avg_price: Option<String>,
    pub filled_qty: String,
    pub fee: String,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub submitted_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub filled_at: Option<DateTime<Utc>>,
    /// Average fill price minus the signal's price, signed so that positive is worse for the user.
    #[oai(nullable)]
    pub slippage: Option<String>,
    /// Bybit's code for an exchange refusal, or HUMBEX's reason code for a skip (`stale`,
    /// `below_min_notional`, ...).
    #[oai(nullable)]
    pub error_code: Option<String>,
    /// signal, take_profit, stop_loss, trailing_stop, break_even, liquidation, adl or manual.
    pub origin: String,
    /// single, or reduce / open for the two legs of a target sync.
    pub leg: String,
    /// market or limit.
    pub order_type: String,
    #[oai(nullable)]
    pub limit_price: Option<String>,
    /// gtc, ioc, fok or post_only (limit orders).
    #[oai(nullable)]
    pub time_in_force: Option<String>,
    #[oai(nullable)]
    pub trigger_price: Option<String>,
    /// Take profit as set on the exchange (a percent is resolved from the fill price).
    #[oai(nullable)]
    pub take_profit: Option<String>,
    #[oai(nullable)]
    pub stop_loss: Option<String>,
    /// Trailing distance in price units.
    #[oai(nullable)]
    pub trailing_stop: Option<String>,
    #[oai(nullable)]
    pub leverage: Option<String>,
    /// Realised PnL of an order that reduced a position (Bybit's closedPnl).
    #[oai(nullable)]
    pub closed_pnl: Option<String>,
    /// Milliseconds between the fill and the protection being set after it.
    #[oai(nullable)]
    pub unprotected_ms: Option<i64>,
    pub fills: Vec<Fill>,
}

/// One account's position on one symbol, as the private `position` topic last reported it.
#[derive(Debug, Object)]
pub struct Position {
    pub api_key_id: Uuid,
    pub symbol: String,
    /// buy (long) or sell (short).
    pub side: String,
    pub size: String,
    #[oai(nullable)]
    pub avg_entry_price: Option<String>,
    #[oai(nullable)]
    pub mark_price: Option<String>,
    #[oai(nullable)]
    pub unrealised_pnl: Option<String>,
    #[oai(nullable)]
    pub leverage: Option<String>,
    #[oai(nullable)]
    pub take_profit: Option<String>,
    #[oai(nullable)]
    pub stop_loss: Option<String>,
    #[oai(nullable)]
    pub trailing_stop: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct PositionList {
    pub items: Vec<Position>,
}

/// Realised PnL of one symbol (or of all, in `total`).
#[derive(Debug, Object)]
pub struct PnlLine {
    pub symbol: String,
    /// Sum of closed_pnl (Bybit's, net of fees of the closing orders).
    pub realised_pnl: String,
    /// Fees of every filled order.
    pub fees: String,
    /// Orders that reduced a position.
    pub closed_trades: i64,
}

#[derive(Debug, Object)]
pub struct Pnl {
    #[oai(nullable)]
    pub from: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub to: Option<DateTime<Utc>>,
    pub symbols: Vec<PnlLine>,
    pub total: PnlLine,
}

#[derive(Debug, Object)]
pub struct OrderPage {
    pub items: Vec<Order>,
    #[oai(nullable)]
    pub next_before: Option<Uuid>,
}
