use std::time::Duration;

use super::*;

/// The value of one sample line (`name{labels} value`) of an encoded page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn every_contract_name_is_on_the_page_with_its_bounded_labels() {
    let m = Metrics::new();
    let page = m.encode();
    for name in [
        "humbex_webhooks_total",
        "humbex_webhook_duration_seconds",
        "humbex_signal_to_order_seconds",
        "humbex_order_to_fill_seconds",
        "humbex_orders_total",
        "humbex_exchange_errors_total",
        "humbex_signals_pending",
        "humbex_private_streams",
        "humbex_listen_connected",
        "humbex_notifications_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            page.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{page}"
        );
    }
    // Endpoint paths are the Bybit client's: that family appears with the first request.
    assert!(!page.contains("humbex_exchange_request_duration_seconds"));
    // Pre-created children show as zero before anything happened, so rate() and alerts see them.
    assert_eq!(
        sample(
            &page,
            r#"humbex_webhooks_total{route="tradingview",outcome="error"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&page, r#"humbex_private_streams{state="reconnecting"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &page,
            r#"humbex_notifications_total{channel="email",outcome="failed"}"#
        ),
        Some(0.0)
    );
}

#[test]
fn recording_moves_the_right_series() {
    let m = Metrics::new();
    m.webhook(WebhookRoute::Signed, 202, Duration::from_millis(3));
    m.webhook(WebhookRoute::Signed, 200, Duration::from_millis(1));
    m.webhook(WebhookRoute::Tradingview, 503, Duration::from_millis(1));
    m.order("signal", "submitted");
    m.order("signal", "not-a-status");
    m.exchange_request("/v5/order/create", Duration::from_millis(2), None);
    m.exchange_request(
        "/v5/order/create",
        Duration::from_millis(2),
        Some(ExchangeFailure::RetCode(10006)),
    );
    m.exchange_request(
        "/v5/order/create",
        Duration::from_millis(2),
        Some(ExchangeFailure::RetCode(99999)),
    );
    m.signals_pending(3, Duration::from_millis(1500));
    m.notification(NotificationChannel::Telegram, NotificationOutcome::Sent);
    let page = m.encode();
    let v = |series: &str| sample(&page, series).unwrap_or_else(|| panic!("{series} not in\n{page}"));
    assert_eq!(
        v(r#"humbex_webhooks_total{route="signed",outcome="accepted"}"#),
        1.0
    );
    assert_eq!(
        v(r#"humbex_webhooks_total{route="signed",outcome="duplicate"}"#),
        1.0
    );
    assert_eq!(
        v(r#"humbex_webhooks_total{route="tradingview",outcome="error"}"#),
        1.0
    );
    assert_eq!(v(r#"humbex_webhook_duration_seconds_count{route="signed"}"#), 2.0);
    assert_eq!(
        v(r#"humbex_webhook_duration_seconds_bucket{route="signed",le="0.001"}"#),
        1.0
    );
    assert_eq!(
        v(r#"humbex_orders_total{origin="signal",status="submitted"}"#),
        1.0
    );
    assert_eq!(
        v(r#"humbex_exchange_request_duration_seconds_count{endpoint="/v5/order/create"}"#),
        3.0
    );
    assert_eq!(v(r#"humbex_exchange_errors_total{code="10006"}"#), 1.0);
    assert_eq!(v(r#"humbex_exchange_errors_total{code="other"}"#), 1.0);
    assert_eq!(v("humbex_signals_pending"), 3.0);
    assert_eq!(v("humbex_signals_pending_oldest_seconds"), 1.5);
    assert_eq!(
        v(r#"humbex_notifications_total{channel="telegram",outcome="sent"}"#),
        1.0
    );
}

#[test]
fn exchange_failures_map_to_a_bounded_label() {
    assert_eq!(ExchangeFailure::RetCode(10018).label(), "10018");
    assert_eq!(ExchangeFailure::RetCode(-7).label(), "other");
    assert_eq!(ExchangeFailure::HttpStatus(429).label(), "http_429");
    assert_eq!(ExchangeFailure::HttpStatus(502).label(), "http_5xx");
    assert_eq!(ExchangeFailure::HttpStatus(404).label(), "other");
    assert_eq!(ExchangeFailure::Transport.label(), "transport");
    for code in EXCHANGE_ERROR_CODES {
        assert!(code.len() <= 9 && !code.contains(' '));
    }
}

#[test]
fn webhook_statuses_map_to_outcomes() {
    let outcome = |s| WEBHOOK_OUTCOMES[webhook_outcome(s)];
    assert_eq!(outcome(202), "accepted");
    assert_eq!(outcome(200), "duplicate");
    assert_eq!(outcome(401), "rejected_unauthorized");
    assert_eq!(outcome(429), "rejected_rate_limited");
    assert_eq!(outcome(404), "rejected_other");
    assert_eq!(outcome(500), "error");
    assert_eq!(outcome(503), "error");
}
