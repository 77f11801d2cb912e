//! What a notification says: one short line per event, readable on a phone, with what to do next,
//! and one message for a burst (docs/notifications.md#messages). Lines are built only from the
//! event's data, which holds no secret: a key appears masked, as the admin API lists it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use humbex_shared::notify::Event;
use serde_json::Value;

/// Lines shown in one grouped message before the rest are only counted.
const MAX_LINES: usize = 10;

/// One event as the sender holds it.
#[derive(Debug, Clone)]
pub struct Item {
    pub event: Event,
    pub data: Value,
}

fn s<'a>(data: &'a Value, field: &str) -> &'a str {
    data.get(field).and_then(Value::as_str).unwrap_or("")
}

fn n(data: &Value, field: &str) -> String {
    match data.get(field) {
        Some(Value::Number(x)) => x.to_string(),
        Some(Value::String(x)) => x.clone(),
        _ => "?".into(),
    }
}

/// "on “label”", or "on your Bybit account" for a key without a label.
fn account(data: &Value) -> String {
    match s(data, "account") {
        "" => "on your Bybit account".into(),
        label => format!("on “{label}”"),
    }
}

/// The first Bybit return code (five digits or more) in a reason, if any.
fn bybit_code(text: &str) -> Option<u32> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|t| (5..=6).contains(&t.len()))
        .and_then(|t| t.parse().ok())
}

/// What the user can do about a Bybit refusal; `egress` lists the addresses keys must be bound to.
pub fn hint(code: Option<u32>, egress: &str) -> &'static str {
    match code {
        Some(10010) if !egress.is_empty() => {
            "bind the key to the IP addresses in HUMBEX's setup, or add a new key"
        }
        Some(10010) => "bind the key to HUMBEX's IP address, or add a new key",
        Some(10003) | Some(10004) | Some(33004) => "the key was deleted, expired or is wrong: add a new key",
        Some(10005) | Some(10007) => {
            "give the key Contract Trade (Orders, Positions) permission, or add a new key"
        }
        Some(110007) | Some(110012) | Some(110044) => {
            "add margin to the account or lower the subscription's multiplier"
        }
        Some(10006) | Some(10016) => "Bybit was busy; nothing to do, HUMBEX retries",
        _ => "check the order in the console; contact support if it repeats",
    }
}

/// One line for one event. `egress` is BYBIT_EGRESS_IPS as text (may be empty).
pub fn line(item: &Item, egress: &str) -> String {
    let d = &item.data;
    let trade = || format!("{} {} {}", s(d, "side"), n(d, "filled_qty"), s(d, "symbol"));
    let at = || match d.get("avg_price").and_then(Value::as_str) {
        Some(p) => format!(" @ {p}"),
        None => String::new(),
    };
    match item.event {
        Event::OrderFilled => format!(
            "✅ Filled: {}{} {} (fee {})",
            trade(),
            at(),
            account(d),
            n(d, "fee")
        ),
        Event::TakeProfitHit => format!("🎯 Take-profit hit: {}{} {}", trade(), at(), account(d)),
        Event::StopLossHit => format!("🛑 Stop-loss hit: {}{} {}", trade(), at(), account(d)),
        Event::Liquidation => format!(
            "🚨 Liquidated: {}{} {}. Check the position and the margin before the next signal.",
            trade(),
            at(),
            account(d)
        ),
        Event::OrderFailed => {
            let why = match (s(d, "error_code"), s(d, "error")) {
                ("", "") => "no reason given".to_owned(),
                ("", e) => e.to_owned(),
                (c, e) if e.contains(c) => e.to_owned(),
                (c, e) => format!("{c}: {e}"),
            };
            let code = bybit_code(s(d, "error_code")).or_else(|| bybit_code(s(d, "error")));
            format!(
                "❌ Order not placed: {} {} {} {}: {why}. {}.",
                s(d, "side"),
                n(d, "qty"),
                s(d, "symbol"),
                account(d),
                hint(code, egress)
            )
        }
        Event::KeyUnusable => {
            let reason = s(d, "reason");
            let ips = if bybit_code(reason) == Some(10010) && !egress.is_empty() {
                format!(": bind it to {egress} or add a new key")
            } else {
                format!(": {}", hint(bybit_code(reason), egress))
            };
            format!(
                "🔑 Key {} {} refused by Bybit ({reason}){ips}. No orders go to this account until then.",
                s(d, "key"),
                account(d)
            )
        }
        Event::SignalRejected => format!(
            "⚠️ Signal rejected ({} {}): {}.",
            s(d, "action"),
            s(d, "symbol"),
            s(d, "reason")
        ),
        Event::SubscriptionExpiring => format!(
            "⏰ Your HUMBEX subscription ends {}: renew it to keep trading.",
            s(d, "expires_at")
        ),
        Event::SubscriptionExpired => format!(
            "⛔ Your HUMBEX subscription ended {}: no orders are placed until it is renewed.",
            s(d, "expires_at")
        ),
        Event::ExecutorLagging => format!(
            "⏳ {} signals waiting for more than {} s (oldest since {}): check that an executor runs and can reach PostgreSQL and Bybit.",
            n(d, "pending"),
            n(d, "threshold_secs"),
            s(d, "oldest_received_at")
        ),
        Event::DailySummary => {
            let pnl = match d.get("realised_pnl").and_then(Value::as_str) {
                Some(p) => format!("realised PnL {p} USDT"),
                None => "realised PnL not available".into(),
            };
            format!(
                "📊 {}: {} trades, {pnl}, fees {} USDT, {} failures.",
                s(d, "date"),
                n(d, "trades"),
                d.get("fees").and_then(Value::as_str).unwrap_or("0"),
                n(d, "failures")
            )
        }
    }
}

/// A short subject (email) for a group.
pub fn subject(items: &[Item]) -> String {
    match items {
        [one] => format!("HUMBEX: {}", one.event.as_str().replace('_', " ")),
        many => format!("HUMBEX: {} updates", many.len()),
    }
}

/// One message for a group of events: every line when there are few, else the first
/// [`MAX_LINES`] and a count per event of the rest, so a burst of fills is one message.
pub fn text(items: &[Item], egress: &str) -> String {
    if items.len() == 1 {
        return line(&items[0], egress);
    }
    let mut out = format!("HUMBEX: {} updates\n", items.len());
    for item in items.iter().take(MAX_LINES) {
        let _ = writeln!(out, "{}", line(item, egress));
    }
    if items.len() > MAX_LINES {
        let mut rest: BTreeMap<&str, usize> = BTreeMap::new();
        for item in &items[MAX_LINES..] {
            *rest.entry(item.event.as_str()).or_default() += 1;
        }
        let counts: Vec<String> = rest.iter().map(|(e, c)| format!("{c} {e}")).collect();
        let _ = writeln!(
            out,
            "… and {} more ({}): see the console or GET /admin/orders.",
            items.len() - MAX_LINES,
            counts.join(", ")
        );
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refused_key_says_what_to_do() {
        let item = Item {
            event: Event::KeyUnusable,
            data: json!({"key": "AbCd…wXyZ", "account": "main", "reason": "API key unusable: 10010 Unmatched IP"}),
        };
        let text = line(&item, "203.0.113.7");
        assert!(text.contains("bind it to 203.0.113.7 or add a new key"), "{text}");
        assert!(text.contains("10010"), "{text}");
    }

    #[test]
    fn a_burst_is_one_short_message() {
        let fill = Item {
            event: Event::OrderFilled,
            data: json!({"side": "buy", "filled_qty": "1", "symbol": "AVAXUSDT", "avg_price": "20", "fee": "0.01"}),
        };
        let items = vec![fill; 1000];
        let t = text(&items, "");
        assert_eq!(t.lines().count(), 1 + MAX_LINES + 1, "{t}");
        assert!(t.contains("990 more (990 order_filled)"), "{t}");
        assert!(t.len() < 4096, "within Telegram's message limit");
    }
}
