//! Limit orders by time in force, partial fills on request, conditional orders, cancel and
//! cancel-all, hand orders, margin and position mode, and instruments-info pagination: each checked
//! in the exchange's own record as well as in Bybit's answers.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::common::*;

pub fn dec(value: &Value) -> Decimal {
    let text = value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    text.parse()
        .unwrap_or_else(|_| panic!("{value} is not a decimal"))
}

fn limit(side: &str, qty: &str, price: &str, tif: &str, link: &str) -> Value {
    json!({"side": side, "orderType": "Limit", "qty": qty, "price": price, "timeInForce": tif, "orderLinkId": link})
}

#[tokio::test]
async fn time_in_force_decides_what_a_limit_does_on_arrival() {
    let h = start().await;
    let a = h.account().await;
    // AVAXUSDT starts at 25.000: a buy at 25.5 crosses, a buy at 24 does not.
    for (tif, link) in [("PostOnly", "po"), ("GTC", "gtc"), ("IOC", "ioc"), ("FOK", "fok")] {
        let reply = a
            .create(limit(
                "Buy",
                "1",
                if tif == "PostOnly" { "25.5" } else { "24" },
                tif,
                link,
            ))
            .await;
        assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    }
    let po = a.order_by_link("po").await;
    assert_eq!(po["orderStatus"], "Cancelled");
    assert_eq!(po["rejectReason"], "EC_PostOnlyWillTakeLiquidity");
    assert_eq!(po["cumExecQty"], "0.0");
    assert_eq!(a.order_by_link("gtc").await["orderStatus"], "New");
    assert_eq!(
        a.order_by_link("ioc").await["rejectReason"],
        "EC_NoImmediateQtyToFill"
    );
    assert_eq!(
        a.order_by_link("fok").await["rejectReason"],
        "EC_CancelForNoFullFill"
    );
    // A post-only that does not cross rests like a GTC.
    let reply = a.create(limit("Buy", "1", "24.5", "PostOnly", "po-rest")).await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    let open = a
        .get("/v5/order/realtime", "category=linear&symbol=AVAXUSDT")
        .await;
    let links: Vec<&str> = open.body["result"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderLinkId"].as_str().unwrap())
        .collect();
    assert_eq!(links, vec!["po-rest", "gtc"]);
    let record = h.record(&a, "orders").await;
    let statuses: Vec<&str> = record.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        vec!["Cancelled", "New", "Cancelled", "Cancelled", "New"]
    );
}

#[tokio::test]
async fn resting_limit_fills_partially_when_asked_then_whole() {
    let h = start().await;
    let a = h.account().await;
    let reply = a.create(limit("Buy", "1", "24", "GTC", "part")).await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);

    h.set_price_partial("AVAXUSDT", "23.9", "0.3").await;
    let order = a.order_by_link("part").await;
    assert_eq!(order["orderStatus"], "PartiallyFilled");
    assert_eq!(order["cumExecQty"], "0.3");
    assert_eq!(order["leavesQty"], "0.7");
    assert_eq!(dec(&a.position("AVAXUSDT").await["size"]), Decimal::new(3, 1));

    h.set_price_partial("AVAXUSDT", "23.8", "0.3").await;
    assert_eq!(a.order_by_link("part").await["cumExecQty"], "0.6");
    h.set_price("AVAXUSDT", "23.7").await;
    let order = a.order_by_link("part").await;
    assert_eq!(order["orderStatus"], "Filled");
    assert_eq!(dec(&order["avgPrice"]), Decimal::from(24));

    let fills = h.record(&a, "executions").await;
    let quantities: Vec<Decimal> = fills.iter().map(|f| dec(&f["exec_qty"])).collect();
    assert_eq!(
        quantities,
        vec![Decimal::new(3, 1), Decimal::new(3, 1), Decimal::new(4, 1)]
    );
    assert!(
        fills
            .iter()
            .all(|f| f["is_maker"] == true && dec(&f["exec_price"]) == Decimal::from(24))
    );

    // A cap of zero is refused, naming the field.
    let (status, body) = h
        .control(
            reqwest::Method::PUT,
            "/paper/prices/AVAXUSDT",
            Some(json!({"price": "25", "max_fill_qty": "0"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("max_fill_qty"),
        "{body}"
    );
}

#[tokio::test]
async fn conditional_order_waits_untriggered_and_fires_on_price() {
    let h = start().await;
    let a = h.account().await;
    let rising = json!({"side": "Buy", "orderType": "Market", "qty": "1", "orderLinkId": "cond-up",
        "triggerPrice": "26", "triggerDirection": 1, "triggerBy": "LastPrice"});
    let reply = a.create(rising).await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    let order = a.order_by_link("cond-up").await;
    assert_eq!(order["orderStatus"], "Untriggered");
    assert_eq!(order["triggerPrice"], "26.000");
    assert_eq!(order["triggerDirection"], 1);
    assert_eq!(order["triggerBy"], "LastPrice");
    // An untriggered order reserves no margin and opens nothing.
    assert_eq!(a.wallet().await["coin"][0]["totalOrderIM"], "0");

    h.set_price("AVAXUSDT", "25.9").await;
    assert_eq!(a.order_by_link("cond-up").await["orderStatus"], "Untriggered");
    h.set_price("AVAXUSDT", "26.1").await;
    let order = a.order_by_link("cond-up").await;
    assert_eq!(order["orderStatus"], "Filled");
    assert_eq!(dec(&order["avgPrice"]), Decimal::new(261, 1));
    assert_eq!(a.position("AVAXUSDT").await["size"], "1.0");

    // The trigger must lie in its direction from the last price.
    let wrong = a
        .create(json!({"side": "Buy", "orderType": "Market", "qty": "1", "triggerPrice": "25", "triggerDirection": 1}))
        .await;
    assert_eq!(wrong.ret_code(), 110092, "{}", wrong.body);
    let wrong = a
        .create(json!({"side": "Sell", "orderType": "Market", "qty": "1", "triggerPrice": "27", "triggerDirection": 2}))
        .await;
    assert_eq!(wrong.ret_code(), 110093, "{}", wrong.body);
    let missing = a
        .create(json!({"side": "Sell", "orderType": "Market", "qty": "1", "triggerPrice": "25"}))
        .await;
    assert_eq!(missing.ret_code(), 10001, "{}", missing.body);

    // Cancelling an untriggered order deactivates it.
    let falling = json!({"side": "Sell", "orderType": "Limit", "price": "24.5", "qty": "1", "orderLinkId": "cond-down",
        "triggerPrice": "25", "triggerDirection": 2, "reduceOnly": true});
    assert_eq!(a.create(falling).await.ret_code(), 0);
    let cancel = a
        .post(
            "/v5/order/cancel",
            json!({"category": "linear", "symbol": "AVAXUSDT", "orderLinkId": "cond-down"}),
        )
        .await;
    assert_eq!(cancel.ret_code(), 0, "{}", cancel.body);
    assert_eq!(a.order_by_link("cond-down").await["orderStatus"], "Deactivated");
    let record = h.record(&a, "orders").await;
    assert_eq!(record[0]["trigger_price"], "26");
    assert_eq!(record[0]["status"], "Filled");
    assert_eq!(record.last().unwrap()["status"], "Deactivated");
}

#[tokio::test]
async fn cancel_all_cancels_every_open_order_of_the_symbol() {
    let h = start().await;
    let a = h.account().await;
    for link in ["ca-1", "ca-2"] {
        assert_eq!(a.create(limit("Buy", "1", "24", "GTC", link)).await.ret_code(), 0);
    }
    let conditional = json!({"side": "Buy", "orderType": "Market", "qty": "1", "orderLinkId": "ca-3",
        "triggerPrice": "27", "triggerDirection": 1});
    assert_eq!(a.create(conditional).await.ret_code(), 0);
    let btc = json!({"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001",
        "price": "50000", "orderLinkId": "ca-btc"});
    assert_eq!(a.create(btc).await.ret_code(), 0);

    let reply = a
        .post(
            "/v5/order/cancel-all",
            json!({"category": "linear", "symbol": "AVAXUSDT"}),
        )
        .await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    assert_eq!(reply.body["result"]["success"], "1");
    let mut cancelled: Vec<&str> = reply.body["result"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderLinkId"].as_str().unwrap())
        .collect();
    cancelled.sort();
    assert_eq!(cancelled, vec!["ca-1", "ca-2", "ca-3"]);
    assert_eq!(a.order_by_link("ca-1").await["cancelType"], "CancelByUser");
    assert_eq!(a.order_by_link("ca-3").await["orderStatus"], "Deactivated");
    assert_eq!(a.order_by_link("ca-btc").await["orderStatus"], "New");
    // Nothing left to cancel: an empty list, still success.
    let again = a
        .post(
            "/v5/order/cancel-all",
            json!({"category": "linear", "symbol": "AVAXUSDT"}),
        )
        .await;
    assert_eq!(again.body["result"]["list"], json!([]));
    let no_symbol = a
        .post("/v5/order/cancel-all", json!({"category": "linear"}))
        .await;
    assert_eq!(no_symbol.ret_code(), 10001);
}

#[tokio::test]
async fn an_order_placed_by_hand_has_no_order_link_id_and_is_create_by_user() {
    let h = start().await;
    let a = h.account().await;
    let reply = a
        .create(json!({"side": "Buy", "orderType": "Market", "qty": "1"}))
        .await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    assert_eq!(reply.body["result"]["orderLinkId"], "");
    let order_id = reply.body["result"]["orderId"].as_str().unwrap();
    let listed = a
        .get(
            "/v5/order/realtime",
            &format!("category=linear&orderId={order_id}"),
        )
        .await;
    let order = &listed.body["result"]["list"][0];
    assert_eq!(order["createType"], "CreateByUser");
    assert_eq!(order["orderLinkId"], "");
    assert_eq!(order["orderStatus"], "Filled");
    let record = h.record(&a, "orders").await;
    assert_eq!(record[0]["create_type"], "CreateByUser");
    assert_eq!(record[0]["order_link_id"], "");
}

#[tokio::test]
async fn margin_mode_and_position_mode_endpoints() {
    let h = start().await;
    let a = h.account().await;
    let info = a.get("/v5/account/info", "").await;
    assert_eq!(info.body["result"]["marginMode"], "REGULAR_MARGIN");
    let set = a
        .post(
            "/v5/account/set-margin-mode",
            json!({"setMarginMode": "ISOLATED_MARGIN"}),
        )
        .await;
    assert_eq!(set.ret_code(), 0, "{}", set.body);
    assert_eq!(set.body["result"]["reasons"], json!([]));
    let info = a.get("/v5/account/info", "").await;
    assert_eq!(info.body["result"]["marginMode"], "ISOLATED_MARGIN");
    let bad = a
        .post(
            "/v5/account/set-margin-mode",
            json!({"setMarginMode": "isolated"}),
        )
        .await;
    assert_eq!(bad.ret_code(), 10001);

    let switch = |mode: i64| json!({"category": "linear", "symbol": "AVAXUSDT", "mode": mode});
    assert_eq!(
        a.post("/v5/position/switch-mode", switch(0)).await.ret_code(),
        110025
    );
    assert_eq!(a.post("/v5/position/switch-mode", switch(3)).await.ret_code(), 0);
    // Now hedge mode: positionIdx 1 opens the long slot.
    let hedged = a
        .create(json!({"side": "Buy", "orderType": "Market", "qty": "1", "positionIdx": 1}))
        .await;
    assert_eq!(hedged.ret_code(), 0, "{}", hedged.body);
    assert_eq!(
        a.post("/v5/position/switch-mode", switch(0)).await.ret_code(),
        110024
    );
    let (_, view) = h
        .control(reqwest::Method::GET, &format!("/paper/accounts/{}", a.key), None)
        .await;
    assert_eq!(view["position_mode"], "hedge");
}

#[tokio::test]
async fn instruments_info_lists_several_symbols_with_a_cursor() {
    let h = start().await;
    let url = format!("{}/v5/market/instruments-info?category=linear&limit=2", h.base);
    let first: Value = h.http.get(&url).send().await.unwrap().json().await.unwrap();
    let list = first["result"]["list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let cursor = first["result"]["nextPageCursor"].as_str().unwrap();
    assert!(!cursor.is_empty());
    let second: Value = h
        .http
        .get(format!("{url}&cursor={cursor}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["result"]["list"].as_array().unwrap().len(), 1);
    assert_eq!(second["result"]["nextPageCursor"], "");
    let btc = &list
        .iter()
        .chain(second["result"]["list"].as_array().unwrap())
        .find(|i| i["symbol"] == "BTCUSDT")
        .cloned()
        .unwrap();
    assert_eq!(btc["lotSizeFilter"]["qtyStep"], "0.001");
    assert_eq!(btc["leverageFilter"]["maxLeverage"], "100.00");
    assert_eq!(btc["lotSizeFilter"]["minNotionalValue"], "5");
}
