//! What a notification is about and where it may go: the events of the contract, and the parsers of
//! a destination (Telegram chat, webhook URL, email address) used by the admin API and by the
//! configuration alike, so a destination is checked by one rule wherever it is set.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Every event a notification can report (docs/notifications.md#events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    OrderFilled,
    OrderFailed,
    KeyUnusable,
    TakeProfitHit,
    StopLossHit,
    Liquidation,
    SubscriptionExpiring,
    SubscriptionExpired,
    SignalRejected,
    ExecutorLagging,
    DailySummary,
}

impl Event {
    pub const ALL: [Event; 11] = [
        Event::OrderFilled,
        Event::OrderFailed,
        Event::KeyUnusable,
        Event::TakeProfitHit,
        Event::StopLossHit,
        Event::Liquidation,
        Event::SubscriptionExpiring,
        Event::SubscriptionExpired,
        Event::SignalRejected,
        Event::ExecutorLagging,
        Event::DailySummary,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::OrderFilled => "order_filled",
            Event::OrderFailed => "order_failed",
            Event::KeyUnusable => "key_unusable",
            Event::TakeProfitHit => "take_profit_hit",
            Event::StopLossHit => "stop_loss_hit",
            Event::Liquidation => "liquidation",
            Event::SubscriptionExpiring => "subscription_expiring",
            Event::SubscriptionExpired => "subscription_expired",
            Event::SignalRejected => "signal_rejected",
            Event::ExecutorLagging => "executor_lagging",
            Event::DailySummary => "daily_summary",
        }
    }

    pub fn parse(text: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// Whether the operator's destinations receive this event: what needs a person (a key refused,
    /// the executor behind, orders failing or liquidated, across every user).
    pub fn for_operator(self) -> bool {
        matches!(
            self,
            Event::KeyUnusable | Event::ExecutorLagging | Event::OrderFailed | Event::Liquidation
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel a notification is sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Telegram,
    Webhook,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Telegram, Channel::Webhook, Channel::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Telegram => "telegram",
            Channel::Webhook => "webhook",
            Channel::Email => "email",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// One send's outcome when it did not succeed, classified by what to do next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again (a 5xx, a timeout, a 429), not before `after` when the channel said so.
    #[error("{detail}")]
    Retry { detail: String, after: Option<Duration> },
    /// The destination is wrong (unknown chat, 4xx, mailbox refused): retrying cannot help.
    #[error("{0}")]
    Refused(String),
}

/// What a Telegram Bot API answer (`{"ok", "description", "parameters": {"retry_after"}}` with
/// its HTTP status) means: the one rule the sender and the admin API's chat check share.
pub fn telegram_outcome(status: u16, body: &Value) -> Result<(), SendError> {
    let success = (200..300).contains(&status);
    if success && body.get("ok") == Some(&Value::Bool(true)) {
        return Ok(());
    }
    let description: String = body
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("no description")
        .chars()
        .take(200)
        .collect();
    let detail = format!("Telegram answered {status}: {description}");
    if status == 429 {
        let after = body
            .pointer("/parameters/retry_after")
            .and_then(Value::as_u64)
            .map(|s| Duration::from_secs(s.min(3600)));
        return Err(SendError::Retry { detail, after });
    }
    if status >= 500 || success {
        return Err(SendError::Retry { detail, after: None });
    }
    Err(SendError::Refused(detail))
}

/// A Telegram chat: a numeric id (negative for groups and channels) or a public `@channelname`.
pub fn parse_telegram_chat_id(text: &str) -> Result<String, String> {
    let t = text.trim();
    let numeric = t.strip_prefix('-').unwrap_or(t);
    let numeric_ok = (1..=20).contains(&numeric.len()) && numeric.bytes().all(|b| b.is_ascii_digit());
    let name_ok = t.strip_prefix('@').is_some_and(|n| {
        (5..=32).contains(&n.len())
            && n.starts_with(|c: char| c.is_ascii_alphabetic())
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if numeric_ok || name_ok {
        Ok(t.to_owned())
    } else {
        Err("is not a Telegram chat id (a number such as 123456789, or @channelname)".into())
    }
}

/// A webhook destination: an absolute https URL (http only to this machine), with a host and no
/// credentials (they would be stored and shown in clear), at most 2000 characters.
pub fn parse_webhook_url(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.len() > 2000 {
        return Err("is longer than 2000 characters".into());
    }
    let url = url::Url::parse(t).map_err(|e| format!("is not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("has no host".into()),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("must use https (http only to localhost)".into()),
        _ => return Err("must be an https:// URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(url.to_string())
}

/// An email address, lower-cased, in the shape the `users` table accepts.
pub fn parse_email(text: &str) -> Result<String, String> {
    let t = text.trim().to_lowercase();
    let ok = t.len() <= 254
        && t.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !t
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        });
    if ok {
        Ok(t)
    } else {
        Err("is not an email address".into())
    }
}

/// A new Standard Webhooks signing secret for a user's webhook: `whsec_` and 32 random bytes in
/// base64, the form the receiving libraries expect.
pub fn generate_webhook_secret() -> secrecy::SecretString {
    use base64::Engine as _;
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .expect("the system's random source works");
    let text = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes.as_ref())
    );
    secrecy::SecretString::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_unknown_ones_do_not_parse() {
        for e in Event::ALL {
            assert_eq!(Event::parse(e.as_str()), Some(e));
        }
        assert_eq!(Event::parse("order_filed"), None);
    }

    #[test]
    fn destinations_are_checked() {
        assert!(parse_telegram_chat_id("123456789").is_ok());
        assert!(parse_telegram_chat_id("-1001234567890").is_ok());
        assert!(parse_telegram_chat_id("@humbex_alerts").is_ok());
        assert!(parse_telegram_chat_id("12a").is_err());
        assert!(parse_telegram_chat_id("@ab").is_err());
        assert!(parse_webhook_url("https://example.com/hook").is_ok());
        assert!(parse_webhook_url("http://127.0.0.1:9000/x").is_ok());
        assert!(parse_webhook_url("http://example.com/hook").is_err());
        assert!(parse_webhook_url("https://u:p@example.com/").is_err());
        assert!(parse_webhook_url("not a url").is_err());
        assert_eq!(parse_email("Ann@Example.com").unwrap(), "ann@example.com");
        assert!(parse_email("ann@").is_err());
        assert!(parse_email("ann example.com").is_err());
    }
}
