//! Position protection and its consequences: order-attached TP/SL, trading-stop, trailing stops,
//! liquidation, and the position/wallet pushes that follow the price.

use rust_decimal::Decimal;
use serde_json::json;

use crate::common::*;
use crate::orders::dec;

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

#[tokio::test]
async fn attached_take_profit_closes_the_position_with_closed_pnl() {
    let h = start().await;
    let a = h.account().await;
    let reply = a
        .create(
            json!({"side": "Buy", "orderType": "Market", "qty": "1", "orderLinkId": "tp-open",
            "takeProfit": "27", "stopLoss": "23", "tpslMode": "Full"}),
        )
        .await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    let order = a.order_by_link("tp-open").await;
    assert_eq!(order["takeProfit"], "27.000");
    assert_eq!(order["stopLoss"], "23.000");
    assert_eq!(order["tpslMode"], "Full");
    let position = a.position("AVAXUSDT").await;
    assert_eq!(position["takeProfit"], "27.000");
    assert_eq!(position["stopLoss"], "23.000");

    h.set_price("AVAXUSDT", "26.9").await;
    assert_eq!(a.position("AVAXUSDT").await["size"], "1.0");
    h.set_price("AVAXUSDT", "27.5").await;
    let position = a.position("AVAXUSDT").await;
    assert_eq!(position["size"], "0.0");
    assert_eq!(position["takeProfit"], "0");
    assert_eq!(position["stopLoss"], "0");

    let record = h.record(&a, "orders").await;
    let close = record.last().unwrap();
    assert_eq!(close["create_type"], "CreateByTakeProfit");
    assert_eq!(close["order_link_id"], "");
    assert_eq!(close["reduce_only"], true);
    assert_eq!(close["side"], "Sell");
    assert_eq!(close["status"], "Filled");
    // 2.5 gross, less the closing fee (27.5 × 0.055 %) and the opening fee (25 × 0.055 %).
    assert_eq!(dec(&close["closed_pnl"]), d("2.471125"));
    let listed = a
        .get(
            "/v5/order/realtime",
            &format!("category=linear&orderId={}", close["order_id"].as_str().unwrap()),
        )
        .await;
    let listed = &listed.body["result"]["list"][0];
    assert_eq!(listed["createType"], "CreateByTakeProfit");
    assert_eq!(listed["stopOrderType"], "TakeProfit");
    assert_eq!(listed["closedPnl"], "2.471125");
    assert_eq!(listed["orderLinkId"], "");
    let fills = h.record(&a, "executions").await;
    assert_eq!(fills.last().unwrap()["create_type"], "CreateByTakeProfit");
    assert_eq!(dec(&fills.last().unwrap()["exec_pnl"]), d("2.5"));
    assert_eq!(dec(&fills.last().unwrap()["closed_size"]), d("1"));

    // TP/SL on the wrong side of the price is refused.
    let wrong = a
        .create(json!({"side": "Buy", "orderType": "Market", "qty": "1", "takeProfit": "20"}))
        .await;
    assert_eq!(wrong.ret_code(), 10001, "{}", wrong.body);
    assert!(wrong.body["retMsg"].as_str().unwrap().contains("TakeProfit"));
}

#[tokio::test]
async fn trading_stop_sets_and_cancels_stops_and_a_stop_loss_fires() {
    let h = start().await;
    let a = h.account().await;
    let stop = |fields: serde_json::Value| {
        let mut body =
            json!({"category": "linear", "symbol": "AVAXUSDT", "tpslMode": "Full", "positionIdx": 0});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let flat = a
        .post("/v5/position/trading-stop", stop(json!({"stopLoss": "26"})))
        .await;
    assert_eq!(flat.ret_code(), 10001, "{}", flat.body);
    assert!(flat.body["retMsg"].as_str().unwrap().contains("zero position"));

    assert_eq!(a.market("Sell", "2", "short").await.ret_code(), 0);
    let set = a
        .post(
            "/v5/position/trading-stop",
            stop(json!({"stopLoss": "26", "takeProfit": "20"})),
        )
        .await;
    assert_eq!(set.ret_code(), 0, "{}", set.body);
    let position = a.position("AVAXUSDT").await;
    assert_eq!(position["stopLoss"], "26.000");
    assert_eq!(position["takeProfit"], "20.000");
    // "0" cancels one stop and leaves the other.
    let cancel = a
        .post("/v5/position/trading-stop", stop(json!({"takeProfit": "0"})))
        .await;
    assert_eq!(cancel.ret_code(), 0, "{}", cancel.body);
    let position = a.position("AVAXUSDT").await;
    assert_eq!(position["takeProfit"], "0");
    assert_eq!(position["stopLoss"], "26.000");
    let wrong_side = a
        .post("/v5/position/trading-stop", stop(json!({"stopLoss": "24"})))
        .await;
    assert_eq!(wrong_side.ret_code(), 10001, "{}", wrong_side.body);
    let partial = a
        .post(
            "/v5/position/trading-stop",
            stop(json!({"tpslMode": "Partial", "stopLoss": "27"})),
        )
        .await;
    assert_eq!(partial.ret_code(), 10001);

    h.set_price("AVAXUSDT", "26.2").await;
    assert_eq!(a.position("AVAXUSDT").await["size"], "0.0");
    let record = h.record(&a, "orders").await;
    let close = record.last().unwrap();
    assert_eq!(close["create_type"], "CreateByStopLoss");
    assert_eq!(close["side"], "Buy");
    assert_eq!(dec(&close["qty"]), d("2"));
    assert_eq!(dec(&close["trigger_price"]), d("26"));
    assert!(dec(&close["closed_pnl"]) < d("-2.4"), "{close}");
}

#[tokio::test]
async fn trailing_stop_follows_the_best_price_then_fires() {
    let h = start().await;
    let a = h.account().await;
    assert_eq!(a.market("Buy", "1", "trail").await.ret_code(), 0);
    let set = a
        .post(
            "/v5/position/trading-stop",
            json!({"category": "linear", "symbol": "AVAXUSDT", "tpslMode": "Full", "positionIdx": 0,
                "trailingStop": "1", "activePrice": "26"}),
        )
        .await;
    assert_eq!(set.ret_code(), 0, "{}", set.body);
    assert_eq!(a.position("AVAXUSDT").await["trailingStop"], "1.000");
    // Not active until 26: a fall to 24.5 does nothing.
    h.set_price("AVAXUSDT", "24.5").await;
    assert_eq!(a.position("AVAXUSDT").await["size"], "1.0");
    h.set_price("AVAXUSDT", "26").await;
    h.set_price("AVAXUSDT", "28").await;
    h.set_price("AVAXUSDT", "27.2").await;
    assert_eq!(a.position("AVAXUSDT").await["size"], "1.0");
    h.set_price("AVAXUSDT", "26.9").await;
    assert_eq!(a.position("AVAXUSDT").await["size"], "0.0");
    let record = h.record(&a, "orders").await;
    let close = record.last().unwrap();
    assert_eq!(close["create_type"], "CreateByTrailingStop");
    assert_eq!(dec(&close["trigger_price"]), d("27"));
    assert_eq!(dec(&close["avg_price"]), d("26.9"));
}

#[tokio::test]
async fn isolated_position_is_liquidated_when_the_mark_crosses_its_liq_price() {
    let h = start().await;
    let a = h.account_with(json!({"balance_usdt": "1000"})).await;
    // Cross margin: 1000 USDT carries a 1 AVAX long to zero, so there is no liquidation price.
    assert_eq!(a.market("Buy", "1", "liq-open").await.ret_code(), 0);
    assert_eq!(a.position("AVAXUSDT").await["liqPrice"], "");
    let set = a
        .post(
            "/v5/account/set-margin-mode",
            json!({"setMarginMode": "ISOLATED_MARGIN"}),
        )
        .await;
    assert_eq!(set.ret_code(), 0);
    // Isolated at 10x: 25 × (1 − 1/10 + 0.005).
    assert_eq!(a.position("AVAXUSDT").await["liqPrice"], "22.625");
    let resting =
        json!({"side": "Buy", "orderType": "Limit", "qty": "1", "price": "20", "orderLinkId": "liq-rest"});
    assert_eq!(a.create(resting).await.ret_code(), 0);

    h.set_price("AVAXUSDT", "22.7").await;
    assert_eq!(a.position("AVAXUSDT").await["size"], "1.0");
    h.set_price("AVAXUSDT", "22.6").await;
    assert_eq!(a.position("AVAXUSDT").await["size"], "0.0");
    let record = h.record(&a, "orders").await;
    let liq = record.last().unwrap();
    assert_eq!(liq["create_type"], "CreateByLiq");
    assert_eq!(liq["order_link_id"], "");
    assert_eq!(liq["status"], "Filled");
    let rest = record.iter().find(|o| o["order_link_id"] == "liq-rest").unwrap();
    assert_eq!(rest["status"], "Cancelled");
    assert_eq!(rest["cancel_type"], "CancelAllBeforeLiq");
    let positions = h.record(&a, "positions").await;
    assert_eq!(positions[0]["size"], "0");
}

#[tokio::test]
async fn open_positions_push_mark_and_pnl_on_every_price_change() {
    let h = start().await;
    let a = h.account_with(json!({"balance_usdt": "1000"})).await;
    let mut ws = Ws::connect(&h.ws_url()).await;
    ws.auth_and_subscribe(&a, &["order", "position", "wallet"]).await;
    let reply = a
        .create(
            json!({"side": "Buy", "orderType": "Market", "qty": "2", "orderLinkId": "push",
            "stopLoss": "20"}),
        )
        .await;
    assert_eq!(reply.ret_code(), 0);
    ws.wait_for("filled order", |v| {
        topic_item(v, "order").is_some_and(|o| o["orderStatus"] == "Filled")
    })
    .await;

    h.set_price("AVAXUSDT", "26").await;
    let position = ws
        .wait_for("position at the new mark", |v| {
            topic_item(v, "position").is_some_and(|p| p["markPrice"] == "26.000")
        })
        .await;
    let position = &position["data"][0];
    assert_eq!(position["unrealisedPnl"], "2");
    assert_eq!(position["stopLoss"], "20.000");
    assert_eq!(position["entryPrice"], "25");
    assert_eq!(position["liqPrice"], "");
    let wallet = ws
        .wait_for("wallet with the new pnl", |v| {
            topic_item(v, "wallet").is_some_and(|w| w["totalPerpUPL"] == "2")
        })
        .await;
    let equity = dec(&wallet["data"][0]["totalEquity"]);
    let balance = dec(&wallet["data"][0]["totalWalletBalance"]);
    assert_eq!(equity - balance, d("2"));
    // The REST wallet agrees.
    assert_eq!(a.wallet().await["coin"][0]["unrealisedPnl"], "2");

    // A stop loss hit pushes the exchange's order with its createType and an empty orderLinkId.
    h.set_price("AVAXUSDT", "19.5").await;
    let order = ws
        .wait_for("stop-loss order", |v| {
            topic_item(v, "order").is_some_and(|o| o["createType"] == "CreateByStopLoss")
        })
        .await;
    assert_eq!(order["data"][0]["orderLinkId"], "");
    assert_eq!(order["data"][0]["orderStatus"], "Filled");
    assert_ne!(order["data"][0]["closedPnl"], "0");
}

#[tokio::test]
async fn trailing_stop_on_a_hedge_short_trails_from_the_current_price() {
    let h = start().await;
    let a = h.account_with(json!({"position_mode": "hedge"})).await;
    let short = a
        .create(json!({"side": "Sell", "orderType": "Market", "qty": "1", "positionIdx": 2}))
        .await;
    assert_eq!(short.ret_code(), 0, "{}", short.body);
    let trail = |idx: i64| {
        json!({"category": "linear", "symbol": "AVAXUSDT", "tpslMode": "Full", "positionIdx": idx,
            "trailingStop": "0.5"})
    };
    // The long slot is flat; positionIdx 0 does not exist in hedge mode.
    assert_eq!(
        a.post("/v5/position/trading-stop", trail(1)).await.ret_code(),
        10001
    );
    assert_eq!(
        a.post("/v5/position/trading-stop", trail(0)).await.ret_code(),
        10001
    );
    assert_eq!(a.post("/v5/position/trading-stop", trail(2)).await.ret_code(), 0);
    // Without activePrice the trail starts at 25: the stop follows the low, 0.5 above it.
    h.set_price("AVAXUSDT", "24").await;
    h.set_price("AVAXUSDT", "24.4").await;
    let positions = h.record(&a, "positions").await;
    let slot = positions.iter().find(|p| p["position_idx"] == 2).unwrap();
    assert_eq!(dec(&slot["size"]), d("1"));
    h.set_price("AVAXUSDT", "24.6").await;
    let positions = h.record(&a, "positions").await;
    let slot = positions.iter().find(|p| p["position_idx"] == 2).unwrap();
    assert_eq!(dec(&slot["size"]), Decimal::ZERO);
    let record = h.record(&a, "orders").await;
    let close = record.last().unwrap();
    assert_eq!(close["create_type"], "CreateByTrailingStop");
    assert_eq!(close["position_idx"], 2);
    assert_eq!(close["side"], "Buy");
    assert_eq!(dec(&close["trigger_price"]), d("24.5"));
}
