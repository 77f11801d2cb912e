//! Pure parser tests over the recorded V5 shapes the trading language reads: the `position` and
//! `wallet` pushes, an order Bybit created itself (stop loss, empty orderLinkId, closedPnl), the
//! execution's closing fields, instrument rules, cancel-all and account info.

use std::str::FromStr;

use humbex_bybit::parse::{
    PrivateFrame, parse_account_info, parse_cancel_all, parse_envelope, parse_instruments,
    parse_private_frame,
};
use humbex_bybit::test_data::fixture;
use humbex_bybit::{CreateType, InstrumentRules, MarginMode, OrderStatus, Side};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[test]
fn position_push_reads_entry_price_and_unset_stops() {
    let PrivateFrame::Positions(positions) = parse_private_frame(&fixture("docs_ws_position.json")).unwrap()
    else {
        panic!("not a position frame");
    };
    let p = &positions[0];
    assert_eq!(p.side, Some(Side::Buy));
    assert_eq!(p.size, dec("1.0"));
    // The stream names the entry price entryPrice; REST names it avgPrice.
    assert_eq!(p.avg_price, Some(dec("20.431")));
    assert_eq!(p.mark_price, Some(dec("20.428")));
    assert_eq!(p.unrealised_pnl, Some(dec("-0.003")));
    // "0" and "" mean not set.
    assert_eq!(p.take_profit, None);
    assert_eq!(p.stop_loss, None);
    assert_eq!(p.trailing_stop, None);
    assert_eq!(p.liq_price, None);
    assert_eq!(p.tpsl_mode, "Full");
    assert_eq!(p.seq, Some(8327597863));
}

#[test]
fn wallet_push_gives_usdt_equity_and_available_balance() {
    let PrivateFrame::Wallets(wallets) = parse_private_frame(&fixture("docs_ws_wallet.json")).unwrap() else {
        panic!("not a wallet frame");
    };
    let usdt = wallets[0].usdt().expect("a USDT row");
    assert_eq!(usdt.equity, dec("999.99"));
    assert_eq!(usdt.wallet_balance, dec("999.99"));
    assert_eq!(usdt.available_balance, dec("997.94"));
    assert_eq!(usdt.unrealised_pnl, Decimal::ZERO);
    assert_eq!(wallets[0].total_perp_upl, Some(Decimal::ZERO));
}

#[test]
fn order_created_by_the_exchange() {
    let PrivateFrame::Orders(orders) = parse_private_frame(&fixture("docs_ws_order_stop_loss.json")).unwrap()
    else {
        panic!("not an order frame");
    };
    let o = &orders[0];
    assert_eq!(o.create_type, Some(CreateType::CreateByStopLoss));
    assert!(o.create_type.unwrap().is_by_exchange());
    assert_eq!(o.order_link_id, "");
    assert_eq!(o.stop_order_type, "StopLoss");
    assert_eq!(o.closed_pnl, Some(dec("-1.12345678")));
    assert_eq!(o.trigger_price, Some(dec("19.900")));
    assert_eq!(o.order_status, OrderStatus::Filled);
    // The plain docs order is the user's, with closedPnl "0" and no stops.
    let PrivateFrame::Orders(plain) = parse_private_frame(&fixture("docs_ws_order.json")).unwrap() else {
        panic!("not an order frame");
    };
    assert_eq!(plain[0].create_type, Some(CreateType::CreateByUser));
    assert!(!CreateType::CreateByUser.is_by_exchange());
    assert_eq!(plain[0].closed_pnl, Some(Decimal::ZERO));
    assert_eq!(plain[0].take_profit, None);
    assert_eq!(plain[0].trigger_price, None);
    // A createType this client does not know still parses.
    let unknown = fixture("docs_ws_order.json").replace("CreateByUser", "CreateBySomethingNew");
    let PrivateFrame::Orders(unknown) = parse_private_frame(&unknown).unwrap() else {
        panic!("not an order frame");
    };
    assert_eq!(unknown[0].create_type, Some(CreateType::Unknown));
}

#[test]
fn execution_push_carries_closing_fields() {
    let PrivateFrame::Executions(fills) = parse_private_frame(&fixture("docs_ws_execution.json")).unwrap()
    else {
        panic!("not an execution frame");
    };
    assert_eq!(fills[0].create_type, Some(CreateType::CreateByUser));
    assert_eq!(fills[0].exec_pnl, Some(Decimal::ZERO));
    assert_eq!(fills[0].closed_size, Some(Decimal::ZERO));
    assert_eq!(fills[0].stop_order_type, "UNKNOWN");
}

#[test]
fn instrument_rules_from_the_docs_page() {
    let envelope = parse_envelope(&fixture("docs_instruments_info.json")).unwrap();
    let page = parse_instruments(envelope.result).unwrap();
    let rules = InstrumentRules::from(&page.items[0]);
    assert_eq!(rules.symbol, "AVAXUSDT");
    assert_eq!(rules.tick_size, dec("0.001"));
    assert_eq!(rules.qty_step, dec("0.1"));
    assert_eq!(rules.min_order_qty, dec("0.1"));
    assert_eq!(rules.max_mkt_order_qty, dec("10000.0"));
    assert_eq!(rules.min_notional_value, dec("5"));
    assert_eq!(rules.max_leverage, dec("50.00"));
    assert_eq!(rules.leverage_step, dec("0.01"));
    assert!(rules.is_trading());
    assert_eq!(page.next_page_cursor, None);
}

#[test]
fn cancel_all_and_account_info() {
    let acks = parse_cancel_all(parse_envelope(&fixture("paper_cancel_all.json")).unwrap().result).unwrap();
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0].order_link_id, "lim-1");
    assert_eq!(acks[1].order_link_id, "");
    let info =
        parse_account_info(parse_envelope(&fixture("docs_account_info.json")).unwrap().result).unwrap();
    assert_eq!(info.margin_mode, MarginMode::RegularMargin);
    assert_eq!(info.unified_margin_status, Some(4));
}
