//! Request and response bodies of the admin API. Decimals travel as strings; secrets only inwards.

use chrono::{DateTime, Utc};
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
}

#[derive(Debug, Object)]
pub struct StrategyCreated {
    pub id: Uuid,
    pub name: String,
    /// The strategy's webhook token, shown only now.
    pub webhook_token: String,
    pub webhook_token_prefix: String,
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
    pub signal_id: Uuid,
    pub user_id: Uuid,
    #[oai(nullable)]
    pub api_key_id: Option<Uuid>,
    pub order_link_id: String,
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
    pub fills: Vec<Fill>,
}

#[derive(Debug, Object)]
pub struct OrderPage {
    pub items: Vec<Order>,
    #[oai(nullable)]
    pub next_before: Option<Uuid>,
}
