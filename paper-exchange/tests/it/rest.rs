//! Bybit REST rules: authentication, envelope, market data, order validation, matching, accounts.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::common::{Signing, now_ms, start};

#[tokio::test]
async fn market_data_is_public_and_bybit_shaped() {
    let h = start().await;
    let time: serde_json::Value = h
        .http
        .get(format!("{}/v5/market/time", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(time["retCode"], 0);
    assert!(time["time"].as_i64().unwrap() > 0);
    assert!(
        time["result"]["timeSecond"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );

    let info: serde_json::Value = h
        .http
        .get(format!(
            "{}/v5/market/instruments-info?category=linear&symbol=AVAXUSDT",
            h.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let avax = &info["result"]["list"][0];
    assert_eq!(avax["symbol"], "AVAXUSDT");
    assert_eq!(avax["contractType"], "LinearPerpetual");
    assert_eq!(avax["lotSizeFilter"]["qtyStep"], "0.1");
    assert_eq!(avax["lotSizeFilter"]["minOrderQty"], "0.1");
    assert_eq!(avax["lotSizeFilter"]["maxMktOrderQty"], "10000.0");
    assert_eq!(avax["priceFilter"]["tickSize"], "0.001");
    assert_eq!(avax["leverageFilter"]["maxLeverage"], "50.00");
    assert_eq!(info["result"]["nextPageCursor"], "");

    let prelaunch: serde_json::Value = h
        .http
        .get(format!(
            "{}/v5/market/instruments-info?category=linear&status=PreLaunch",
            h.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prelaunch["result"]["list"], json!([]));

    h.set_price("AVAXUSDT", "21.5").await;
    let tickers: serde_json::Value = h
        .http
        .get(format!(
            "{}/v5/market/tickers?category=linear&symbol=AVAXUSDT",
            h.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tickers["result"]["list"][0]["lastPrice"], "21.500");
}

#[tokio::test]
async fn unknown_api_key_is_10003() {
    let h = start().await;
    let mut stranger = h.account().await;
    stranger.key = "no-such-key".into();
    let reply = stranger
        .get("/v5/account/wallet-balance", "accountType=UNIFIED")
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.ret_code(), 10003);
    assert_eq!(reply.body["retMsg"], "API key is invalid.");
}

#[tokio::test]
async fn bad_signature_is_10004() {
    let h = start().await;
    let account = h.account().await;
    let signing = Signing {
        wrong_secret: true,
        ..Signing::default()
    };
    let reply = account
        .request(
            Method::GET,
            "/v5/position/list",
            "category=linear&symbol=AVAXUSDT",
            signing,
        )
        .await;
    assert_eq!(reply.ret_code(), 10004);
    assert!(reply.body["retMsg"].as_str().unwrap().starts_with("error sign!"));
    assert!(
        !reply.body["retMsg"].as_str().unwrap().contains(&account.key),
        "key must be masked"
    );
    let body =
        json!({"category": "linear", "symbol": "AVAXUSDT", "side": "Buy", "orderType": "Market", "qty": "1"});
    let signing = Signing {
        wrong_secret: true,
        ..Signing::default()
    };
    let reply = account
        .request(Method::POST, "/v5/order/create", &body.to_string(), signing)
        .await;
    assert_eq!(reply.ret_code(), 10004);
    assert!(h.running.exchange().orders(&account.key).unwrap().is_empty());
}

#[tokio::test]
async fn timestamp_outside_recv_window_is_10002() {
    let h = start().await;
    let account = h.account().await;
    let too_old = Signing {
        timestamp_offset_ms: -6_000,
        ..Signing::default()
    };
    let reply = account
        .request(Method::GET, "/v5/account/info", "", too_old)
        .await;
    assert_eq!(reply.ret_code(), 10002);
    assert!(
        reply.body["retMsg"]
            .as_str()
            .unwrap()
            .contains("recv_window[5000]")
    );

    // A larger window accepts the same lag.
    let wide = Signing {
        timestamp_offset_ms: -6_000,
        recv_window: "20000",
        ..Signing::default()
    };
    assert_eq!(
        account
            .request(Method::GET, "/v5/account/info", "", wide)
            .await
            .ret_code(),
        0
    );

    // More than 1 s ahead is refused whatever the window.
    let ahead = Signing {
        timestamp_offset_ms: 3_000,
        recv_window: "60000",
        ..Signing::default()
    };
    assert_eq!(
        account
            .request(Method::GET, "/v5/account/info", "", ahead)
            .await
            .ret_code(),
        10002
    );
}

#[tokio::test]
async fn missing_auth_headers_is_http_401() {
    let h = start().await;
    let response = h
        .http
        .get(format!(
            "{}/v5/account/wallet-balance?accountType=UNIFIED",
            h.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn signature_covers_raw_query_and_body_as_sent() {
    let h = start().await;
    let account = h.account().await;
    // ccxt's unsorted query order and pybit's spaced JSON are both valid: the raw text is signed.
    let reply = account
        .get("/v5/position/list", "symbol=AVAXUSDT&category=linear")
        .await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    let spaced = r#"{"category": "linear", "symbol": "AVAXUSDT", "side": "Buy", "orderType": "Market", "qty": "1", "orderLinkId": "spaced-1"}"#;
    let reply = account
        .request(Method::POST, "/v5/order/create", spaced, Signing::default())
        .await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    assert_eq!(reply.body["result"]["orderLinkId"], "spaced-1");
}

#[tokio::test]
async fn market_buy_fills_and_keeps_position_and_wallet_consistent() {
    let h = start().await;
    let account = h.account_with(json!({"balance_usdt": "1000"})).await;
    h.set_price("AVAXUSDT", "20").await;
    let reply = account.market("Buy", "2", "mkt-1").await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    assert_eq!(reply.body["retMsg"], "OK");
    assert!(reply.body["time"].as_i64().is_some());
    let order_id = reply.body["result"]["orderId"].as_str().unwrap().to_string();

    let order = account.order_by_link("mkt-1").await;
    assert_eq!(order["orderId"], order_id);
    assert_eq!(order["orderStatus"], "Filled");
    assert_eq!(order["timeInForce"], "IOC");
    assert_eq!(order["cumExecQty"], "2.0");
    assert_eq!(order["avgPrice"], "20");
    assert_eq!(order["price"], "21.000", "protective price 5% above last");
    assert_eq!(order["cumExecFee"], "0.022");

    let fills = account
        .get("/v5/execution/list", "category=linear&symbol=AVAXUSDT")
        .await;
    let fill = &fills.body["result"]["list"][0];
    assert_eq!(fill["execQty"], "2.0");
    assert_eq!(fill["execPrice"], "20.000");
    assert_eq!(fill["feeRate"], "0.00055");
    assert_eq!(fill["isMaker"], false);

    let position = account.position("AVAXUSDT").await;
    assert_eq!(position["side"], "Buy");
    assert_eq!(position["size"], "2.0");
    assert_eq!(position["avgPrice"], "20");
    assert_eq!(position["positionIM"], "4");

    h.set_price("AVAXUSDT", "21").await;
    let position = account.position("AVAXUSDT").await;
    assert_eq!(position["unrealisedPnl"], "2");
    let wallet = account.wallet().await;
    assert_eq!(wallet["totalWalletBalance"], "999.978");
    assert_eq!(wallet["totalEquity"], "1001.978");
    assert_eq!(wallet["totalInitialMargin"], "4");
    assert_eq!(wallet["totalAvailableBalance"], "997.978");

    // Selling 3 closes the long at a profit of 2 and opens a 1.0 short.
    let reply = account.market("Sell", "3", "mkt-2").await;
    assert_eq!(reply.ret_code(), 0, "{}", reply.body);
    let position = account.position("AVAXUSDT").await;
    assert_eq!(position["side"], "Sell");
    assert_eq!(position["size"], "1.0");
    assert_eq!(position["avgPrice"], "21");
    let wallet = account.wallet().await;
    // 1000 - 0.022 (buy fee) + 2 (pnl) - 0.03465 (sell fee on 63)
    assert_eq!(wallet["totalWalletBalance"], "1001.94335");
}

#[tokio::test]
async fn order_link_id_rules() {
    let h = start().await;
    let account = h.account().await;
    assert_eq!(account.market("Buy", "1", "dup-1").await.ret_code(), 0);
    let again = account.market("Buy", "1", "dup-1").await;
    assert_eq!(again.ret_code(), 110072);
    assert_eq!(again.body["retMsg"], "OrderLinkedID is duplicate");
    assert_eq!(h.running.exchange().orders(&account.key).unwrap().len(), 1);

    let long_id = "a".repeat(37);
    assert_eq!(account.market("Buy", "1", &long_id).await.ret_code(), 10001);
    assert_eq!(account.market("Buy", "1", &"b".repeat(36)).await.ret_code(), 0);
    assert_eq!(account.market("Buy", "1", "bad id!").await.ret_code(), 10001);

    // Unique per account, not across accounts.
    let other = h.account().await;
    assert_eq!(other.market("Buy", "1", "dup-1").await.ret_code(), 0);
}

#[tokio::test]
async fn qty_filters_and_parameter_errors() {
    let h = start().await;
    let account = h.account().await;
    assert_eq!(
        account.market("Buy", "0.05", "q1").await.ret_code(),
        10001,
        "below minOrderQty"
    );
    assert_eq!(
        account.market("Buy", "1.05", "q2").await.ret_code(),
        10001,
        "not a qtyStep multiple"
    );
    let too_big = account.market("Buy", "10000.1", "q3").await;
    assert_eq!(too_big.ret_code(), 10001, "above maxMktOrderQty");
    assert!(
        too_big.body["retMsg"]
            .as_str()
            .unwrap()
            .contains("exceeds maximum limit")
    );
    assert_eq!(
        account.market("Buy", "0", "q4").await.ret_code(),
        10001,
        "qty 0 without close flags"
    );
    let limit_big = account
        .create(json!({"side": "Buy", "orderType": "Limit", "qty": "50000.1", "price": "1.000", "orderLinkId": "q5"}))
        .await;
    assert_eq!(limit_big.ret_code(), 10001, "above maxOrderQty");
    let bad_symbol = account
        .create(json!({"symbol": "NOPEUSDT", "side": "Buy", "orderType": "Market", "qty": "1"}))
        .await;
    assert_eq!(bad_symbol.ret_code(), 10001);
    assert!(
        bad_symbol.body["retMsg"]
            .as_str()
            .unwrap()
            .contains("symbol invalid")
    );
    let spot = account
        .create(json!({"category": "spot", "side": "Buy", "orderType": "Market", "qty": "1"}))
        .await;
    assert_eq!(spot.ret_code(), 10001);
    let bad_tick = account
        .create(
            json!({"side": "Buy", "orderType": "Limit", "qty": "1", "price": "20.0005", "orderLinkId": "q6"}),
        )
        .await;
    assert_eq!(bad_tick.ret_code(), 10001, "price off tick");
    let tiny = account.market("Buy", "0.1", "q7").await;
    assert_eq!(
        tiny.ret_code(),
        110094,
        "notional 2.5 USDT below minNotionalValue 5"
    );
    assert!(h.running.exchange().orders(&account.key).unwrap().is_empty());
}

#[tokio::test]
async fn reduce_only_refusals_and_truncation() {
    let h = start().await;
    let account = h.account().await;
    let none = account
        .create(json!({"side": "Sell", "orderType": "Market", "qty": "1", "reduceOnly": true, "orderLinkId": "r1"}))
        .await;
    assert_eq!(none.ret_code(), 110017, "no position to reduce");

    assert_eq!(account.market("Buy", "2", "r2").await.ret_code(), 0);
    let grow = account
        .create(json!({"side": "Buy", "orderType": "Market", "qty": "1", "reduceOnly": true, "orderLinkId": "r3"}))
        .await;
    assert_eq!(
        grow.ret_code(),
        110017,
        "reduce-only on the position's own side would grow it"
    );
    assert_eq!(grow.body["retMsg"], "Reduce-only rule not satisfied");

    let close = account
        .create(json!({"side": "Sell", "orderType": "Market", "qty": "5", "reduceOnly": true, "orderLinkId": "r4"}))
        .await;
    assert_eq!(close.ret_code(), 0, "{}", close.body);
    let order = account.order_by_link("r4").await;
    assert_eq!(order["cumExecQty"], "2.0", "truncated to the position");
    assert_eq!(order["orderStatus"], "Filled");
    assert_eq!(order["reduceOnly"], true);
    let position = account.position("AVAXUSDT").await;
    assert_eq!(position["side"], "");
    assert_eq!(position["size"], "0.0");
}

#[tokio::test]
async fn qty_zero_reduce_only_close_on_trigger_closes_the_position() {
    let h = start().await;
    let account = h.account().await;
    assert_eq!(account.market("Sell", "3", "z1").await.ret_code(), 0);
    let close = account
        .create(
            json!({"side": "Buy", "orderType": "Market", "qty": "0", "reduceOnly": true,
                       "closeOnTrigger": true, "orderLinkId": "z2"}),
        )
        .await;
    assert_eq!(close.ret_code(), 0, "{}", close.body);
    assert_eq!(account.order_by_link("z2").await["cumExecQty"], "3.0");
    assert_eq!(account.position("AVAXUSDT").await["size"], "0.0");
}

#[tokio::test]
async fn insufficient_margin_is_110007() {
    let h = start().await;
    let account = h.account_with(json!({"balance_usdt": "100"})).await;
    // 25 USDT * 50 / 10x = 125 USDT of margin > 100.
    let reply = account.market("Buy", "50", "m1").await;
    assert_eq!(reply.ret_code(), 110007);
    assert_eq!(account.market("Buy", "30", "m2").await.ret_code(), 0);
    // Closing needs no margin even when the account is nearly used up.
    let close = account
        .create(json!({"side": "Sell", "orderType": "Market", "qty": "30", "reduceOnly": true, "orderLinkId": "m3"}))
        .await;
    assert_eq!(close.ret_code(), 0);
}

#[tokio::test]
async fn position_idx_follows_position_mode() {
    let h = start().await;
    let one_way = h.account().await;
    let wrong = one_way
        .create(json!({"side": "Buy", "orderType": "Market", "qty": "1", "positionIdx": 1}))
        .await;
    assert_eq!(wrong.ret_code(), 10001);
    assert_eq!(wrong.body["retMsg"], "position idx not match position mode");
    let zero = one_way
        .create(json!({"side": "Buy", "orderType": "Market", "qty": "1", "positionIdx": 0}))
        .await;
    assert_eq!(zero.ret_code(), 0);

    let hedge = h.account_with(json!({"position_mode": "hedge"})).await;
    let zero = hedge
        .create(json!({"side": "Buy", "orderType": "Market", "qty": "1", "positionIdx": 0}))
        .await;
    assert_eq!(zero.ret_code(), 10001);
    let long = hedge
        .create(json!({"side": "Buy", "orderType": "Market", "qty": "2", "positionIdx": 1}))
        .await;
    assert_eq!(long.ret_code(), 0);
    let short = hedge
        .create(json!({"side": "Sell", "orderType": "Market", "qty": "1", "positionIdx": 2}))
        .await;
    assert_eq!(short.ret_code(), 0);
    let list = hedge
        .get("/v5/position/list", "category=linear&symbol=AVAXUSDT")
        .await;
    let rows = list.body["result"]["list"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["positionIdx"], 1);
    assert_eq!(rows[0]["side"], "Buy");
    assert_eq!(rows[0]["size"], "2.0");
    assert_eq!(rows[1]["positionIdx"], 2);
    assert_eq!(rows[1]["side"], "Sell");
    // Selling on the long slot closes it rather than opening a short.
    let close = hedge
        .create(
            json!({"side": "Sell", "orderType": "Market", "qty": "2", "positionIdx": 1, "reduceOnly": true}),
        )
        .await;
    assert_eq!(close.ret_code(), 0, "{}", close.body);
    let list = hedge
        .get("/v5/position/list", "category=linear&symbol=AVAXUSDT")
        .await;
    assert_eq!(list.body["result"]["list"][0]["size"], "0.0");
    assert_eq!(list.body["result"]["list"][1]["size"], "1.0");
}

#[tokio::test]
async fn limit_order_rests_fills_on_cross_and_cancels() {
    let h = start().await;
    let account = h.account().await;
    h.set_price("AVAXUSDT", "25").await;
    let rest = account
        .create(
            json!({"side": "Buy", "orderType": "Limit", "qty": "1", "price": "24.000", "orderLinkId": "l1"}),
        )
        .await;
    assert_eq!(rest.ret_code(), 0);
    let order = account.order_by_link("l1").await;
    assert_eq!(order["orderStatus"], "New");
    assert_eq!(order["timeInForce"], "GTC");
    assert_eq!(order["leavesQty"], "1.0");
    assert_eq!(account.wallet().await["coin"][0]["totalOrderIM"], "2.4");
    let open = account
        .get("/v5/order/realtime", "category=linear&symbol=AVAXUSDT")
        .await;
    assert_eq!(open.body["result"]["list"].as_array().unwrap().len(), 1);

    h.set_price("AVAXUSDT", "23.9").await;
    let order = account.order_by_link("l1").await;
    assert_eq!(order["orderStatus"], "Filled");
    assert_eq!(order["avgPrice"], "24", "maker fill at the limit price");
    let fills = account
        .get("/v5/execution/list", "category=linear&orderLinkId=l1")
        .await;
    assert_eq!(fills.body["result"]["list"][0]["isMaker"], true);
    assert_eq!(fills.body["result"]["list"][0]["feeRate"], "0.0002");

    let resting = account
        .create(
            json!({"side": "Sell", "orderType": "Limit", "qty": "1", "price": "30.000", "orderLinkId": "l2"}),
        )
        .await;
    assert_eq!(resting.ret_code(), 0);
    let cancel = account
        .post(
            "/v5/order/cancel",
            json!({"category": "linear", "symbol": "AVAXUSDT", "orderLinkId": "l2"}),
        )
        .await;
    assert_eq!(cancel.ret_code(), 0);
    let order = account.order_by_link("l2").await;
    assert_eq!(order["orderStatus"], "Cancelled");
    assert_eq!(order["cancelType"], "CancelByUser");
    let again = account
        .post(
            "/v5/order/cancel",
            json!({"category": "linear", "symbol": "AVAXUSDT", "orderLinkId": "l2"}),
        )
        .await;
    assert_eq!(again.ret_code(), 110001);
    let unknown = account
        .post(
            "/v5/order/cancel",
            json!({"category": "linear", "symbol": "AVAXUSDT", "orderId": "nope"}),
        )
        .await;
    assert_eq!(unknown.ret_code(), 110001);

    // A crossing limit fills at once as a taker; a crossing PostOnly is cancelled instead.
    let cross = account
        .create(
            json!({"side": "Buy", "orderType": "Limit", "qty": "1", "price": "26.000", "orderLinkId": "l3"}),
        )
        .await;
    assert_eq!(cross.ret_code(), 0);
    assert_eq!(account.order_by_link("l3").await["avgPrice"], "23.9");
    let post_only = account
        .create(
            json!({"side": "Buy", "orderType": "Limit", "qty": "1", "price": "26.000",
                       "timeInForce": "PostOnly", "orderLinkId": "l4"}),
        )
        .await;
    assert_eq!(post_only.ret_code(), 0);
    let order = account.order_by_link("l4").await;
    assert_eq!(order["orderStatus"], "Cancelled");
    assert_eq!(order["rejectReason"], "EC_PostOnlyWillTakeLiquidity");

    let history = account
        .get("/v5/order/history", "category=linear&symbol=AVAXUSDT&limit=2")
        .await;
    assert_eq!(history.body["result"]["list"].as_array().unwrap().len(), 2);
    assert_eq!(
        history.body["result"]["list"][0]["orderLinkId"], "l4",
        "newest first"
    );
    let cursor = history.body["result"]["nextPageCursor"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!cursor.is_empty());
    let next = account
        .get(
            "/v5/order/history",
            &format!("category=linear&symbol=AVAXUSDT&limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(next.body["result"]["list"][0]["orderLinkId"], "l2");
}

#[tokio::test]
async fn set_leverage_and_not_modified() {
    let h = start().await;
    let account = h.account().await;
    let body = json!({"category": "linear", "symbol": "AVAXUSDT", "buyLeverage": "5", "sellLeverage": "5"});
    assert_eq!(
        account
            .post("/v5/position/set-leverage", body.clone())
            .await
            .ret_code(),
        0
    );
    assert_eq!(
        account.post("/v5/position/set-leverage", body).await.ret_code(),
        110043
    );
    assert_eq!(account.position("AVAXUSDT").await["leverage"], "5");
    let too_high =
        json!({"category": "linear", "symbol": "AVAXUSDT", "buyLeverage": "51", "sellLeverage": "51"});
    assert_eq!(
        account
            .post("/v5/position/set-leverage", too_high)
            .await
            .ret_code(),
        10001
    );
    assert_eq!(account.market("Buy", "2", "lev-1").await.ret_code(), 0);
    assert_eq!(
        account.position("AVAXUSDT").await["positionIM"],
        "10",
        "2 * 25 / 5"
    );
}

#[tokio::test]
async fn key_permissions_ips_and_account_info() {
    let h = start().await;
    let account = h.account_with(json!({"ips": ["127.0.0.1"]})).await;
    let info = account.get("/v5/user/query-api", "").await;
    assert_eq!(info.ret_code(), 0);
    assert_eq!(info.body["result"]["apiKey"], account.key);
    assert_eq!(info.body["result"]["uta"], 1);
    assert_eq!(info.body["result"]["readOnly"], 0);
    assert_eq!(info.body["result"]["ips"], json!(["127.0.0.1"]));
    assert_eq!(
        info.body["result"]["permissions"]["ContractTrade"],
        json!(["Order", "Position"])
    );
    assert_eq!(info.body["result"]["permissions"]["Wallet"], json!([]));
    let account_info = account.get("/v5/account/info", "").await;
    assert_eq!(account_info.body["result"]["marginMode"], "REGULAR_MARGIN");
    let coins = account.get("/v5/asset/coin/query-info", "").await;
    assert_eq!(coins.body["result"]["rows"], json!([]));

    let elsewhere = h.account_with(json!({"ips": ["203.0.113.10"]})).await;
    assert_eq!(elsewhere.get("/v5/account/info", "").await.ret_code(), 10010);

    let read_only = h.account_with(json!({"read_only": true})).await;
    assert_eq!(
        read_only.get("/v5/user/query-api", "").await.body["result"]["readOnly"],
        1
    );
    assert_eq!(read_only.market("Buy", "1", "ro-1").await.ret_code(), 10005);
}

#[tokio::test]
async fn order_create_rate_limit_is_10_per_second_with_headers() {
    let h = start().await;
    let account = h.account().await;
    let first = account.market("Buy", "1", "rl-0").await;
    assert_eq!(first.header("X-Bapi-Limit").as_deref(), Some("10"));
    assert_eq!(first.header("X-Bapi-Limit-Status").as_deref(), Some("9"));
    assert!(first.header("X-Bapi-Limit-Reset-Timestamp").is_some());
    let started = now_ms();
    let replies = join_all((1..=10).map(|i| {
        let account = account.clone();
        async move { account.market("Buy", "1", &format!("rl-{i}")).await }
    }))
    .await;
    let elapsed = now_ms() - started;
    let limited: Vec<_> = replies.iter().filter(|r| r.ret_code() == 10006).collect();
    if elapsed < 900 {
        assert_eq!(
            limited.len(),
            1,
            "exactly the 11th create in one second is refused"
        );
        let refused = limited[0];
        assert_eq!(refused.body["retMsg"], "Too many visits!");
        assert_eq!(refused.header("X-Bapi-Limit-Status").as_deref(), Some("0"));
        let reset: i64 = refused
            .header("X-Bapi-Limit-Reset-Timestamp")
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset > started - 1000 && reset <= now_ms() + 1000);
    }
    // Refused creates place nothing.
    let placed = h.running.exchange().orders(&account.key).unwrap().len();
    assert_eq!(placed, 11 - limited.len());

    // A raised per-account limit (used by benchmarks) is reported in the headers.
    let fast = h
        .account_with(json!({"order_create_limit_per_second": 1000}))
        .await;
    assert_eq!(
        fast.market("Buy", "1", "f-1")
            .await
            .header("X-Bapi-Limit")
            .as_deref(),
        Some("1000")
    );
}

#[tokio::test]
async fn unknown_routes_and_bad_bodies() {
    let h = start().await;
    let account = h.account().await;
    let response = h.http.get(format!("{}/v5/nope", h.base)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let reply = account
        .request(Method::POST, "/v5/order/create", "not json", Signing::default())
        .await;
    assert_eq!(reply.ret_code(), 10001);
    let wrong_account_type = account
        .get("/v5/account/wallet-balance", "accountType=CONTRACT")
        .await;
    assert_eq!(wrong_account_type.ret_code(), 10001);
}

#[tokio::test]
async fn control_api_accounts_prices_and_listings() {
    let h = start().await;
    let (status, created) = h
        .control(
            Method::POST,
            "/paper/accounts",
            Some(json!({"api_key": "ctl-1", "api_secret": "s3cret-value", "balance_usdt": 1234.5})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(created["balance_usdt"], "1234.5");
    assert!(
        !created.to_string().contains("s3cret-value"),
        "secret never echoed"
    );
    let (status, dup) = h
        .control(
            Method::POST,
            "/paper/accounts",
            Some(json!({"api_key": "ctl-1", "api_secret": "x"})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(dup["error"], "account_exists");
    let (status, bad) = h
        .control(
            Method::POST,
            "/paper/accounts",
            Some(json!({"api_key": "x", "typo": 1})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"], "invalid_body");

    // Numbers are parsed from their text, never through f64.
    let (status, price) = h
        .control(
            Method::PUT,
            "/paper/prices/BTCUSDT",
            Some(json!({"price": 60000.1})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(price["price"], "60000.1");
    let (status, _) = h
        .control(Method::PUT, "/paper/prices/NOPEUSDT", Some(json!({"price": "1"})))
        .await;
    assert_eq!(status, 404);
    let (status, _) = h
        .control(Method::PUT, "/paper/prices/BTCUSDT", Some(json!({"price": "-1"})))
        .await;
    assert_eq!(status, 400);

    let account = h.account().await;
    assert_eq!(account.market("Buy", "2", "ctl-o1").await.ret_code(), 0);
    let (status, orders) = h
        .control(
            Method::GET,
            &format!("/paper/accounts/{}/orders", account.key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(orders[0]["order_link_id"], "ctl-o1");
    assert_eq!(orders[0]["status"], "Filled");
    assert_eq!(orders[0]["cum_exec_qty"], "2");
    let (_, executions) = h
        .control(
            Method::GET,
            &format!("/paper/accounts/{}/executions", account.key),
            None,
        )
        .await;
    assert_eq!(executions[0]["exec_qty"], "2");
    let (_, positions) = h
        .control(
            Method::GET,
            &format!("/paper/accounts/{}/positions", account.key),
            None,
        )
        .await;
    assert_eq!(positions[0]["side"], "Buy");
    assert_eq!(positions[0]["size"], "2");
    let (status, missing) = h.control(Method::GET, "/paper/accounts/none/orders", None).await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"], "account_not_found");
}

#[tokio::test]
async fn position_list_without_symbol_and_recent_closed_orders() {
    let h = start().await;
    let account = h.account().await;
    let empty = account
        .get("/v5/position/list", "category=linear&settleCoin=USDT")
        .await;
    assert_eq!(
        empty.body["result"]["list"],
        json!([]),
        "only open positions without a symbol"
    );
    assert_eq!(account.market("Buy", "1", "pl-1").await.ret_code(), 0);
    let btc = account
        .create(json!({"symbol": "BTCUSDT", "side": "Sell", "orderType": "Market", "qty": "0.001", "orderLinkId": "pl-2"}))
        .await;
    assert_eq!(btc.ret_code(), 0, "{}", btc.body);
    let listed = account
        .get("/v5/position/list", "category=linear&settleCoin=USDT")
        .await;
    let symbols: Vec<_> = listed.body["result"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["symbol"].clone())
        .collect();
    assert_eq!(symbols, vec![json!("AVAXUSDT"), json!("BTCUSDT")]);

    let open = account
        .get("/v5/order/realtime", "category=linear&symbol=AVAXUSDT")
        .await;
    assert_eq!(
        open.body["result"]["list"],
        json!([]),
        "filled orders are not open"
    );
    let recent = account
        .get("/v5/order/realtime", "category=linear&settleCoin=USDT&openOnly=1")
        .await;
    assert_eq!(recent.body["result"]["list"].as_array().unwrap().len(), 2);
    let by_id = account
        .get(
            "/v5/order/realtime",
            &format!(
                "category=linear&orderId={}",
                btc.body["result"]["orderId"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(
        by_id.body["result"]["list"][0]["orderLinkId"], "pl-2",
        "by id finds finished orders"
    );
}

#[tokio::test]
async fn hedge_mode_reduce_only_cannot_grow_a_slot() {
    let h = start().await;
    let hedge = h.account_with(json!({"position_mode": "hedge"})).await;
    assert_eq!(
        hedge
            .create(json!({"side": "Buy", "orderType": "Market", "qty": "1", "positionIdx": 1}))
            .await
            .ret_code(),
        0
    );
    let grow = hedge
        .create(
            json!({"side": "Buy", "orderType": "Market", "qty": "1", "positionIdx": 1, "reduceOnly": true}),
        )
        .await;
    assert_eq!(grow.ret_code(), 110017);
    let empty_short = hedge
        .create(
            json!({"side": "Buy", "orderType": "Market", "qty": "1", "positionIdx": 2, "reduceOnly": true}),
        )
        .await;
    assert_eq!(empty_short.ret_code(), 110017, "the short slot is empty");
}

#[tokio::test]
async fn key_without_trade_permission_is_10005() {
    let h = start().await;
    let viewer = h
        .account_with(json!({"permissions": {"ContractTrade": ["Position"], "Wallet": []}}))
        .await;
    assert_eq!(viewer.market("Buy", "1", "perm-1").await.ret_code(), 10005);
    assert_eq!(
        viewer.get("/v5/account/info", "").await.ret_code(),
        0,
        "reading is still allowed"
    );
}

#[tokio::test]
async fn random_walk_moves_prices() {
    let config = humbex_paper_exchange::PaperExchangeConfig {
        price_walk: Some(humbex_paper_exchange::PriceWalk {
            interval: std::time::Duration::from_millis(10),
            max_step_bps: 50,
        }),
        ..crate::common::test_config()
    };
    let h = crate::common::start_with(config).await;
    let start_price = h.running.exchange().price("AVAXUSDT").unwrap();
    tokio::time::timeout(crate::common::WAIT, async {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
        loop {
            tick.tick().await;
            if h.running.exchange().price("AVAXUSDT").unwrap() != start_price {
                break;
            }
        }
    })
    .await
    .expect("price moved");
}

/// PATCH /paper/accounts/{api_key}: what a user changes in Bybit's API management after the key was
/// registered shows in query-api from the next call on; unknown keys and fields are refused.
#[tokio::test]
async fn control_api_modifies_a_keys_permissions_and_ips() {
    let h = start().await;
    let account = h
        .account_with(json!({"permissions": {"ContractTrade": ["Order", "Position"]}, "ips": ["127.0.0.1"]}))
        .await;
    let before = account.get("/v5/user/query-api", "").await;
    assert_eq!(before.ret_code(), 0);
    let (status, view) = h
        .control(
            Method::PATCH,
            &format!("/paper/accounts/{}", account.key),
            Some(json!({
                "permissions": {"ContractTrade": ["Order", "Position"], "Wallet": ["Withdraw"]},
                "ips": ["127.0.0.1", "198.51.100.20"]
            })),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["permissions"]["Wallet"], json!(["Withdraw"]));
    assert!(!view.to_string().contains(&account.secret));
    let after = account.get("/v5/user/query-api", "").await;
    assert_eq!(after.ret_code(), 0);
    assert_eq!(after.body["result"]["permissions"]["Wallet"], json!(["Withdraw"]));
    assert_eq!(after.body["result"]["ips"], json!(["127.0.0.1", "198.51.100.20"]));

    let (status, _) = h
        .control(
            Method::PATCH,
            "/paper/accounts/nosuchkey",
            Some(json!({"ips": ["*"]})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, bad) = h
        .control(
            Method::PATCH,
            &format!("/paper/accounts/{}", account.key),
            Some(json!({"api_secret": "other"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"], "invalid_body");
}

/// PATCH balance_usdt is a transfer in or out: the wallet answers it from then on. The account view
/// counts each authenticated private request per path (what clients asked, for tests of caching).
#[tokio::test]
async fn control_api_sets_the_balance_and_counts_private_requests() {
    let h = start().await;
    let account = h.account().await;
    account.wallet().await;
    account.wallet().await;
    let (status, view) = h
        .control(
            Method::PATCH,
            &format!("/paper/accounts/{}", account.key),
            Some(json!({"balance_usdt": "1234.5"})),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["balance_usdt"], "1234.5");
    assert_eq!(view["requests"]["/v5/account/wallet-balance"], 2);
    assert_eq!(account.wallet().await["coin"][0]["walletBalance"], "1234.5");
    let (status, bad) = h
        .control(
            Method::PATCH,
            &format!("/paper/accounts/{}", account.key),
            Some(json!({"balance_usdt": "-1"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"], "invalid_body");
    let (_, view) = h
        .control(Method::GET, &format!("/paper/accounts/{}", account.key), None)
        .await;
    assert_eq!(view["requests"]["/v5/account/wallet-balance"], 3);
    assert_eq!(view["balance_usdt"], "1234.5");
}
