//! The body parser's own tests: v1 bodies as before, v2 fields and the rules between them.

use super::*;
use std::collections::HashSet;

fn symbols() -> SymbolPolicy {
    let list: HashSet<Symbol> = ["AVAXUSDT", "BTCUSDT"]
        .iter()
        .map(|s| Symbol::parse(s).unwrap())
        .collect();
    SymbolPolicy::Listed(list.into_iter().collect())
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

fn parse(body: &str) -> Result<ParsedSignal, BodyError> {
    parse_signal(body.as_bytes(), &symbols(), now())
}

fn field_of(body: &str) -> &'static str {
    match parse(body) {
        Err(BodyError::Field { field, .. }) => field,
        other => panic!("{body}: expected a field error, got {other:?}"),
    }
}

#[test]
fn accepts_the_original_contract_and_tradingview_spellings() {
    let s = parse(r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1.0}"#).unwrap();
    assert_eq!(s.quantity.unwrap().to_string(), "1");
    let s = parse(
        r#"{"token":"t","action":"SELL","symbol":"BYBIT:AVAXUSDT.P","quantity":"0.25","id":"a-1",
                "timestamp":"2026-11-28T11:59:30Z","price":"31.4","comment":"x"}"#,
    )
    .unwrap();
    assert_eq!(s.action, Action::Sell);
    assert_eq!(s.symbol.as_str(), "AVAXUSDT");
    assert_eq!(s.client_id.as_deref(), Some("a-1"));
    assert_eq!(s.price.unwrap().get().to_string(), "31.4");
    let s = parse(r#"{"token":"t","action":"close","symbol":"AVAXUSDT"}"#).unwrap();
    assert!(s.quantity.is_none());
    let s =
        parse(r#"{"token":"t","action":"close","symbol":"AVAXUSDT","quantity":null,"timestamp":1795867190}"#)
            .unwrap();
    assert!(s.signal_time.is_some());
    let s =
        parse(r#"{"token":"t","action":"close","symbol":"AVAXUSDT","timestamp":"1795867190000"}"#).unwrap();
    assert_eq!(s.signal_time.unwrap().timestamp(), 1_795_867_190);
}

#[test]
fn never_loses_precision_through_floats() {
    let s = parse(r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":0.10000001}"#).unwrap();
    assert_eq!(s.quantity.unwrap().to_string(), "0.10000001");
    assert_eq!(
        field_of(
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":123456789012345678901234567890}"#
        ),
        "quantity"
    );
    assert_eq!(
        field_of(
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":"0.1234567890123456789012345678901"}"#
        ),
        "quantity"
    );
}

#[test]
fn field_errors_name_the_field() {
    let cases = [
        (
            r#"{"token":"t","action":"long","symbol":"AVAXUSDT","quantity":1}"#,
            "action",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"ETHUSDT","quantity":1}"#,
            "symbol",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"BTC\u0000USDT","quantity":1}"#,
            "symbol",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"\u202eAVAXUSDT","quantity":1}"#,
            "symbol",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"BTCUSDТ","quantity":1}"#,
            "symbol",
        ),
        (r#"{"token":"t","action":"buy","symbol":"AVAXUSDT"}"#, "quantity"),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":0}"#,
            "quantity",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":-1}"#,
            "quantity",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":-0.0}"#,
            "quantity",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":"-1"}"#,
            "quantity",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":"1e3"}"#,
            "quantity",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1e3}"#,
            "quantity",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1e400}"#,
            "quantity",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":true}"#,
            "quantity",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":"79228162514264337593543950336"}"#,
            "quantity",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"price":"0"}"#,
            "price",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"id":""}"#,
            "id",
        ),
        (
            r#"{"token":"t\u0000","action":"buy","symbol":"AVAXUSDT","quantity":1}"#,
            "token",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"comment":"a\u0000"}"#,
            "comment",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"timestamp":"yesterday"}"#,
            "timestamp",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(field_of(body), expected, "{body}");
    }
}

#[test]
fn malformed_json_is_refused() {
    let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
    for body in [
        "",
        "not json",
        "\u{feff}{}",
        r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantiy":1}"#,
        r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"quantity":1000}"#,
        r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":NaN}"#,
        r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":Infinity}"#,
        r#"{"token":"\ud800","action":"buy","symbol":"AVAXUSDT","quantity":1}"#,
        r#"["token"]"#,
        nested.as_str(),
    ] {
        assert!(
            matches!(parse(body), Err(BodyError::Json(_))),
            "{body:?} gave {:?}",
            parse(body)
        );
    }
    let err = parse(r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantiy":1}"#).unwrap_err();
    assert!(err.to_string().contains("quantiy"), "{err}");
    let err = parse(r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"quantity":1000}"#)
        .unwrap_err();
    assert!(err.to_string().contains("duplicate field"), "{err}");
}

#[test]
fn a_value_of_the_wrong_type_names_its_field() {
    for (body, message) in [
        (
            r#"{"token":"t","action":1,"symbol":"AVAXUSDT","quantity":1}"#,
            "action: invalid type: integer `1`, expected a string",
        ),
        (
            r#"{"token":1,"action":"buy","symbol":"AVAXUSDT","quantity":1}"#,
            "token: invalid type: integer `1`, expected a string",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":["AVAXUSDT"],"quantity":1}"#,
            "symbol: invalid type: sequence, expected a string",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"id":7}"#,
            "id: invalid type: integer `7`, expected a string",
        ),
        (
            r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"comment":{}}"#,
            "comment: invalid type: map, expected a string",
        ),
    ] {
        let err = parse(body).unwrap_err();
        assert_eq!(err.to_string(), message, "{body}");
        assert_eq!(err.code(), "invalid_body", "{body}");
    }
    // A body that is not an object names no field.
    assert!(matches!(parse(r#"["token"]"#), Err(BodyError::Json(_))));
}

#[test]
fn stale_and_future_timestamps_are_replays() {
    let body =
        |ts: &str| format!(r#"{{"token":"t","action":"close","symbol":"AVAXUSDT","timestamp":"{ts}"}}"#);
    assert!(parse(&body("2026-11-28T11:55:01Z")).is_ok());
    assert!(parse(&body("2026-11-28T12:04:59Z")).is_ok());
    assert!(matches!(
        parse(&body("2026-11-28T11:54:59Z")),
        Err(BodyError::Stale(_))
    ));
    assert!(matches!(
        parse(&body("2026-11-28T12:05:01Z")),
        Err(BodyError::Stale(_))
    ));
    assert!(matches!(parse(&body("1")), Err(BodyError::Stale(_))));
    assert!(matches!(
        parse(&body("99999999999999999999999")),
        Err(BodyError::Field {
            field: "timestamp",
            ..
        })
    ));
}

fn trade_of(body: &str) -> TradeSpec {
    parse(body).unwrap_or_else(|e| panic!("{body}: {e}")).trade
}

#[test]
fn v2_fields_parse_into_the_trade_spec() {
    use humbex_shared::domain::trade::{Level, MarginMode, OrderType, QuantityType, TimeInForce};
    let t = trade_of(
        r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":"10","quantity_type":"USDT",
            "order_type":"limit","limit_price":20.5,"time_in_force":"post_only","cancel_after_secs":"60",
            "take_profit":{"percent":3},"stop_loss":"19.5","trailing_stop":{"percent":"1.5","activation_price":21},
            "break_even":{"trigger_percent":2},"leverage":"12.5","margin_mode":"cross","max_lag_secs":15}"#,
    );
    assert_eq!(t.quantity_type, QuantityType::Usdt);
    assert_eq!(t.order_type, OrderType::Limit);
    assert_eq!(t.limit_price.unwrap().get().to_string(), "20.5");
    assert_eq!(t.time_in_force, TimeInForce::PostOnly);
    assert_eq!(t.cancel_after_secs, Some(60));
    assert!(matches!(t.take_profit, Some(Level::Percent(p)) if p.get().to_string() == "3"));
    assert!(matches!(t.stop_loss, Some(Level::Price(p)) if p.get().to_string() == "19.5"));
    let trailing = t.trailing_stop.unwrap();
    assert!(matches!(trailing.distance, Level::Percent(_)));
    assert_eq!(trailing.activation_price.unwrap().get().to_string(), "21");
    assert_eq!(t.break_even.unwrap().offset_percent, rust_decimal::Decimal::ZERO);
    assert_eq!(t.leverage.unwrap().get().to_string(), "12.5");
    assert_eq!(t.margin_mode, Some(MarginMode::Cross));
    assert_eq!(t.max_lag_secs, Some(15));
}

#[test]
fn v2_bodies_that_fit_together_are_accepted() {
    // Position sync: no quantity, any action (informational), a short target.
    let s = parse(r#"{"token":"t","action":"sell","symbol":"AVAXUSDT","target_position":"-1.5"}"#).unwrap();
    assert!(s.quantity.is_none());
    assert_eq!(s.trade.target_position.unwrap().get().to_string(), "-1.5");
    // Flat target, and "-0" as TradingView may print it.
    for target in ["0", "-0", "0.0"] {
        let body =
            format!(r#"{{"token":"t","action":"close","symbol":"AVAXUSDT","target_position":"{target}"}}"#);
        assert!(
            parse(&body)
                .unwrap()
                .trade
                .target_position
                .unwrap()
                .get()
                .is_zero()
        );
    }
    // Cancel takes nothing but the symbol (and the lag bound).
    let s = parse(r#"{"token":"t","action":"cancel","symbol":"AVAXUSDT","max_lag_secs":5}"#).unwrap();
    assert_eq!(s.action, Action::Cancel);
    assert!(s.quantity.is_none());
    // A market order may say ioc (what it is anyway); a conditional market entry may expire.
    assert!(
        parse(r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"time_in_force":"ioc"}"#)
            .is_ok()
    );
    assert!(parse(
        r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"trigger_price":25,"cancel_after_secs":600}"#
    )
    .is_ok());
    // A partial close by percent; a sell reducing a long by percent.
    for body in [
        r#"{"token":"t","action":"close","symbol":"AVAXUSDT","quantity":50,"quantity_type":"position_percent"}"#,
        r#"{"token":"t","action":"sell","symbol":"AVAXUSDT","quantity":100,"quantity_type":"position_percent"}"#,
    ] {
        assert!(parse(body).is_ok(), "{body}");
    }
    // Levels on the right side of the entry, for a long and for a short.
    assert!(parse(
        r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"price":20,"take_profit":22,"stop_loss":19}"#
    )
    .is_ok());
    assert!(parse(
        r#"{"token":"t","action":"sell","symbol":"AVAXUSDT","quantity":1,"price":20,"take_profit":18,"stop_loss":21}"#
    )
    .is_ok());
    // null is absence for every v2 field.
    let s = parse(
        r#"{"token":"t","action":"buy","symbol":"AVAXUSDT","quantity":1,"take_profit":null,"leverage":null,
            "order_type":null,"break_even":null,"trailing_stop":null}"#,
    )
    .unwrap();
    assert!(s.trade.is_plain());
}

#[test]
fn any_usdt_symbol_when_symbols_is_a_star() {
    let body = br#"{"token":"t","action":"buy","symbol":"BYBIT:SOLUSDT.P","quantity":1}"#;
    let s = parse_signal(body, &SymbolPolicy::AnyUsdt, now()).unwrap();
    assert_eq!(s.symbol.as_str(), "SOLUSDT");
    let body = br#"{"token":"t","action":"buy","symbol":"BTCUSD","quantity":1}"#;
    assert!(matches!(
        parse_signal(body, &SymbolPolicy::AnyUsdt, now()),
        Err(BodyError::Field { field: "symbol", .. })
    ));
}
