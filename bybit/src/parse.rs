//! Pure parsers from Bybit's JSON text to the [`crate::model`] types: the REST envelope, each
//! endpoint's `result`, and private WebSocket frames. No I/O here, so every parser is unit-tested on
//! recorded payloads in `test_data/`.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{
    AccountInfo, ApiKeyInfo, Execution, InstrumentInfo, Order, OrderAck, Position, ServerTime, Ticker,
    WalletAccount,
};

#[derive(Debug, thiserror::Error)]
#[error("cannot parse Bybit {what}: {source}")]
pub struct ParseError {
    pub what: &'static str,
    #[source]
    pub source: serde_json::Error,
}

fn parse_as<T: DeserializeOwned>(what: &'static str, value: Value) -> Result<T, ParseError> {
    serde_json::from_value(value).map_err(|source| ParseError { what, source })
}

/// The five-field answer every REST endpoint returns; `result` left as JSON until the caller knows
/// `retCode` is 0.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub ret_code: i64,
    #[serde(default)]
    pub ret_msg: String,
    #[serde(default)]
    pub result: Value,
    #[serde(default)]
    pub time: Option<i64>,
}

pub fn parse_envelope(body: &str) -> Result<Envelope, ParseError> {
    serde_json::from_str(body).map_err(|source| ParseError {
        what: "envelope",
        source,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListResult<T> {
    list: Vec<T>,
    #[serde(default)]
    next_page_cursor: Option<String>,
}

/// A page of a list endpoint; `next_page_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_cursor: Option<String>,
}

fn parse_list<T: DeserializeOwned>(what: &'static str, result: Value) -> Result<Page<T>, ParseError> {
    let list: ListResult<T> = parse_as(what, result)?;
    Ok(Page {
        items: list.list,
        next_page_cursor: list.next_page_cursor.filter(|c| !c.is_empty()),
    })
}

pub fn parse_server_time(result: Value) -> Result<ServerTime, ParseError> {
    parse_as("server time", result)
}

pub fn parse_instruments(result: Value) -> Result<Page<InstrumentInfo>, ParseError> {
    parse_list("instruments-info", result)
}

pub fn parse_tickers(result: Value) -> Result<Vec<Ticker>, ParseError> {
    parse_list("tickers", result).map(|page| page.items)
}

pub fn parse_order_ack(result: Value) -> Result<OrderAck, ParseError> {
    parse_as("order create ack", result)
}

pub fn parse_orders(result: Value) -> Result<Page<Order>, ParseError> {
    parse_list("order list", result)
}

pub fn parse_executions(result: Value) -> Result<Page<Execution>, ParseError> {
    parse_list("execution list", result)
}

pub fn parse_positions(result: Value) -> Result<Page<Position>, ParseError> {
    parse_list("position list", result)
}

pub fn parse_wallet_balance(result: Value) -> Result<Vec<WalletAccount>, ParseError> {
    parse_list("wallet balance", result).map(|page| page.items)
}

/// `/v5/order/cancel-all`: `{"list": [{"orderId", "orderLinkId"}], "success": "1"}`.
pub fn parse_cancel_all(result: Value) -> Result<Vec<OrderAck>, ParseError> {
    parse_list("cancel-all", result).map(|page| page.items)
}

pub fn parse_account_info(result: Value) -> Result<AccountInfo, ParseError> {
    parse_as("account info", result)
}

pub fn parse_api_key_info(result: Value) -> Result<ApiKeyInfo, ParseError> {
    parse_as("query-api", result)
}

/// One frame of the private WebSocket, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum PrivateFrame {
    /// Answer to `op: auth`; `success == false` means the key/signature/expiry was refused.
    AuthReply {
        success: bool,
        message: String,
    },
    SubscribeReply {
        success: bool,
        message: String,
    },
    Pong,
    Orders(Vec<Order>),
    Executions(Vec<Execution>),
    /// `position` pushes: on every change, and on every mark-price move of an open position.
    Positions(Vec<Position>),
    /// `wallet` pushes (balance changes; unrealised PnL alone does not push on Bybit).
    Wallets(Vec<WalletAccount>),
    /// A topic this client does not decode (execution.fast, greeks, ...).
    OtherTopic(String),
    /// A control frame this client does not act on (e.g. unsubscribe acks).
    OtherOp(String),
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    ret_msg: Option<String>,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    data: Value,
}

pub fn parse_private_frame(text: &str) -> Result<PrivateFrame, ParseError> {
    let raw: RawFrame = serde_json::from_str(text).map_err(|source| ParseError {
        what: "private stream frame",
        source,
    })?;
    if let Some(topic) = raw.topic {
        // Category-specific topic names (`order.linear`) carry the same payloads.
        return match topic.as_str() {
            "order" | "order.linear" => parse_as("order push", raw.data).map(PrivateFrame::Orders),
            "execution" | "execution.linear" => {
                parse_as("execution push", raw.data).map(PrivateFrame::Executions)
            }
            "position" | "position.linear" => {
                parse_as("position push", raw.data).map(PrivateFrame::Positions)
            }
            "wallet" => parse_as("wallet push", raw.data).map(PrivateFrame::Wallets),
            _ => Ok(PrivateFrame::OtherTopic(topic)),
        };
    }
    let op = raw.op.unwrap_or_default();
    let success = raw.success.unwrap_or(false);
    let message = raw.ret_msg.unwrap_or_default();
    Ok(match op.as_str() {
        "auth" => PrivateFrame::AuthReply { success, message },
        "subscribe" => PrivateFrame::SubscribeReply { success, message },
        "pong" => PrivateFrame::Pong,
        // The public streams answer a ping with op "ping" and ret_msg "pong".
        "ping" if message == "pong" => PrivateFrame::Pong,
        _ => PrivateFrame::OtherOp(op),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OrderStatus, OrderType, PositionIdx, Side};
    use crate::test_data::fixture;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn result_of(name: &str) -> Value {
        let envelope = parse_envelope(&fixture(name)).unwrap();
        assert_eq!(envelope.ret_code, 0, "{name}");
        envelope.result
    }

    #[test]
    fn server_time() {
        let time = parse_server_time(result_of("docs_server_time.json")).unwrap();
        assert_eq!(time.time_second, 1688639403);
        assert_eq!(time.millis(), 1688639403423);
    }

    #[test]
    fn instruments_info_filters() {
        let page = parse_instruments(result_of("docs_instruments_info.json")).unwrap();
        let avax = &page.items[0];
        assert_eq!(avax.symbol, "AVAXUSDT");
        assert_eq!(avax.price_filter.tick_size, dec("0.001"));
        assert_eq!(avax.lot_size_filter.qty_step, dec("0.1"));
        assert_eq!(avax.lot_size_filter.min_order_qty, dec("0.1"));
        assert_eq!(avax.lot_size_filter.max_order_qty, dec("50000.0"));
        assert_eq!(avax.lot_size_filter.max_mkt_order_qty, dec("10000.0"));
        assert_eq!(avax.lot_size_filter.min_notional_value, Some(dec("5")));
        assert_eq!(page.next_page_cursor, None);
    }

    #[test]
    fn tickers() {
        let tickers = parse_tickers(result_of("docs_tickers.json")).unwrap();
        assert_eq!(tickers[0].last_price, dec("20.430"));
        assert_eq!(tickers[0].bid1_price, Some(dec("20.429")));
    }

    #[test]
    fn order_ack() {
        let ack = parse_order_ack(result_of("docs_order_create.json")).unwrap();
        assert_eq!(ack.order_id, "1321003749386327552");
        assert_eq!(ack.order_link_id, "bot-0001");
    }

    #[test]
    fn order_realtime() {
        let page = parse_orders(result_of("docs_order_realtime.json")).unwrap();
        let order = &page.items[0];
        assert_eq!(order.order_link_id, "bot-0001");
        assert_eq!(order.order_status, OrderStatus::Filled);
        assert!(order.order_status.is_terminal());
        assert_eq!(order.order_type, OrderType::Market);
        assert_eq!(order.side, Side::Buy);
        assert_eq!(order.avg_price, Some(dec("20.431")));
        assert_eq!(order.cum_exec_qty, dec("1.0"));
        assert_eq!(order.cum_fee_detail["USDT"], dec("0.01123705"));
        assert_eq!(order.position_idx, PositionIdx::OneWay);
        assert_eq!(order.created_time, Some(1684738540559));
        assert!(page.next_page_cursor.is_some());
    }

    #[test]
    fn execution_list() {
        let page = parse_executions(result_of("docs_execution_list.json")).unwrap();
        let fill = &page.items[0];
        assert_eq!(fill.exec_id, "e0cbe81d-0f18-5866-9415-cf319b5dab3b");
        assert_eq!(fill.exec_qty, dec("1.0"));
        assert_eq!(fill.exec_price, dec("20.431"));
        assert_eq!(fill.exec_fee, Some(dec("0.01123705")));
        assert_eq!(fill.exec_type, "Trade");
        assert_eq!(fill.exec_time, 1672282722429);
        assert!(!fill.is_maker);
    }

    #[test]
    fn position_list() {
        let page = parse_positions(result_of("docs_position_list.json")).unwrap();
        let position = &page.items[0];
        assert_eq!(position.side, Some(Side::Buy));
        assert_eq!(position.size, dec("1.0"));
        assert_eq!(position.avg_price, Some(dec("20.431")));
        assert!(!position.is_flat());
    }

    #[test]
    fn flat_position_has_no_side() {
        let flat = serde_json::json!({"list": [{"symbol": "AVAXUSDT", "positionIdx": 0, "side": "",
            "size": "0", "avgPrice": "0", "leverage": "10"}], "nextPageCursor": ""});
        let page = parse_positions(flat).unwrap();
        assert!(page.items[0].is_flat());
        assert_eq!(page.items[0].side, None);
    }

    #[test]
    fn wallet_balance() {
        let accounts = parse_wallet_balance(result_of("docs_wallet_balance.json")).unwrap();
        assert_eq!(accounts[0].account_type, "UNIFIED");
        assert_eq!(accounts[0].total_available_balance, Some(dec("997.95")));
        assert_eq!(accounts[0].coin[0].wallet_balance, Some(dec("1000.00")));
    }

    #[test]
    fn query_api() {
        let info = parse_api_key_info(result_of("query_api_restricted_bot_key.json")).unwrap();
        assert!(!info.read_only);
        assert_eq!(info.permissions["ContractTrade"], vec!["Order", "Position"]);
        assert_eq!(info.ips, vec!["203.0.113.10"]);
        assert_eq!(info.uta, Some(1));
        let docs = parse_api_key_info(result_of("bybit_docs_query_api_example.json")).unwrap();
        assert_eq!(
            docs.permissions["Wallet"],
            vec!["AccountTransfer", "SubMemberTransfer"]
        );
    }

    #[test]
    fn error_envelope() {
        let envelope = parse_envelope(
            r#"{"retCode":110072,"retMsg":"OrderLinkedID is duplicate","result":{},"retExtInfo":{},"time":1}"#,
        )
        .unwrap();
        assert_eq!(envelope.ret_code, 110072);
        assert_eq!(envelope.ret_msg, "OrderLinkedID is duplicate");
        assert!(parse_envelope("Internal Server Error").is_err());
    }

    #[test]
    fn ws_order_push() {
        let PrivateFrame::Orders(orders) = parse_private_frame(&fixture("docs_ws_order.json")).unwrap()
        else {
            panic!("not an order frame");
        };
        assert_eq!(orders[0].order_link_id, "bot-0001");
        assert_eq!(orders[0].order_status, OrderStatus::Filled);
        assert_eq!(orders[0].cum_exec_value, Some(dec("20.431")));
    }

    #[test]
    fn ws_execution_push() {
        let PrivateFrame::Executions(fills) =
            parse_private_frame(&fixture("docs_ws_execution.json")).unwrap()
        else {
            panic!("not an execution frame");
        };
        assert_eq!(fills[0].exec_id, "0ab1bdf7-4219-438b-b30a-32ec863018f7");
        assert_eq!(fills[0].seq, Some(140612148849382));
    }

    #[test]
    fn ws_control_frames() {
        assert_eq!(
            parse_private_frame(&fixture("docs_ws_auth_success.json")).unwrap(),
            PrivateFrame::AuthReply {
                success: true,
                message: String::new()
            }
        );
        assert_eq!(
            parse_private_frame(&fixture("docs_ws_auth_failure.json")).unwrap(),
            PrivateFrame::AuthReply {
                success: false,
                message: "Params Error".into()
            }
        );
        assert_eq!(
            parse_private_frame(&fixture("docs_ws_pong.json")).unwrap(),
            PrivateFrame::Pong
        );
        assert!(matches!(
            parse_private_frame(&fixture("docs_ws_subscribe_ack.json")).unwrap(),
            PrivateFrame::SubscribeReply { success: true, .. }
        ));
        assert_eq!(
            parse_private_frame(r#"{"topic":"execution.fast","data":[]}"#).unwrap(),
            PrivateFrame::OtherTopic("execution.fast".into())
        );
    }

    #[test]
    fn numbers_never_go_through_floats() {
        let fill = serde_json::json!({"list": [{"execId": "x", "orderId": "o", "symbol": "AVAXUSDT",
            "side": "Sell", "execType": "Trade", "execPrice": 0.1, "execQty": "3", "execTime": 5}]});
        let page = parse_executions(fill).unwrap();
        assert_eq!(page.items[0].exec_price, dec("0.1"));
        assert_eq!(page.items[0].exec_time, 5);
    }

    #[test]
    fn paper_exchange_rest_payloads() {
        let time = parse_server_time(result_of("paper_market_time.json")).unwrap();
        assert!(time.millis() > 0);
        let instrument = &parse_instruments(result_of("paper_instruments_info.json"))
            .unwrap()
            .items[0];
        assert_eq!(instrument.lot_size_filter.qty_step, dec("0.1"));
        assert_eq!(instrument.price_filter.tick_size, dec("0.001"));
        assert!(parse_tickers(result_of("paper_tickers.json")).unwrap()[0].last_price > Decimal::ZERO);
        let ack = parse_order_ack(result_of("paper_order_create.json")).unwrap();
        assert_eq!(ack.order_link_id, "rec-0001");
        let order = &parse_orders(result_of("paper_order_realtime.json"))
            .unwrap()
            .items[0];
        assert_eq!(order.order_id, ack.order_id);
        assert_eq!(order.order_status, OrderStatus::Filled);
        assert_eq!(order.cum_exec_qty, dec("1"));
        let fills = parse_executions(result_of("paper_execution_list.json"))
            .unwrap()
            .items;
        assert_eq!(fills.len(), 1);
        assert_eq!(fills[0].order_id, ack.order_id);
        let position = &parse_positions(result_of("paper_position_list.json"))
            .unwrap()
            .items[0];
        assert_eq!(position.side, Some(Side::Buy));
        assert_eq!(position.size, dec("1"));
        let wallet = parse_wallet_balance(result_of("paper_wallet_balance.json")).unwrap();
        assert!(wallet[0].total_equity.is_some());
        let key = parse_api_key_info(result_of("paper_query_api.json")).unwrap();
        assert_eq!(key.permissions["ContractTrade"], vec!["Order", "Position"]);
        for (name, code) in [
            ("paper_order_create_duplicate.json", 110072),
            ("paper_order_create_insufficient_balance.json", 110007),
        ] {
            assert_eq!(parse_envelope(&fixture(name)).unwrap().ret_code, code, "{name}");
        }
    }

    #[test]
    fn paper_exchange_stream_frames() {
        assert!(matches!(
            parse_private_frame(&fixture("paper_ws_auth.json")).unwrap(),
            PrivateFrame::AuthReply { success: true, .. }
        ));
        assert!(matches!(
            parse_private_frame(&fixture("paper_ws_subscribe.json")).unwrap(),
            PrivateFrame::SubscribeReply { success: true, .. }
        ));
        assert_eq!(
            parse_private_frame(&fixture("paper_ws_pong.json")).unwrap(),
            PrivateFrame::Pong
        );
        let PrivateFrame::Orders(orders) = parse_private_frame(&fixture("paper_ws_order.json")).unwrap()
        else {
            panic!("not an order frame");
        };
        assert_eq!(orders[0].order_link_id, "rec-0001");
        assert_eq!(orders[0].order_status, OrderStatus::Filled);
        let PrivateFrame::Executions(fills) =
            parse_private_frame(&fixture("paper_ws_execution.json")).unwrap()
        else {
            panic!("not an execution frame");
        };
        assert_eq!(fills[0].order_link_id, "rec-0001");
        assert_eq!(fills[0].exec_qty, dec("1"));
    }
}
