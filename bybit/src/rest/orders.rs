//! Orders: create (market, limit with time in force, conditional, with attached TP/SL), find by
//! orderLinkId, list open orders, cancel one or all of a symbol, and an order's fills.

use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::{BybitRest, CATEGORY, MAX_PAGES, decode};
use crate::error::BybitError;
use crate::model::{
    BybitResponse, CreateOrderRequest, Execution, ExecutionFilter, Order, OrderAck, OrderLinkId, OrderRef,
    OrderType, TimeInForce,
};
use crate::parse;
use crate::signing::Credentials;

impl BybitRest {
    /// `POST /v5/order/create`. `Ok` only means Bybit accepted the order; fills come later.
    ///
    /// On [`BybitError::Ambiguous`] or [`BybitError::DuplicateOrderLinkId`] the order may exist:
    /// call [`BybitRest::get_order_by_link_id`] before sending it again under the same id.
    #[tracing::instrument(
        skip_all,
        fields(api_key = %credentials.masked_key(), order_link_id = request.order_link_id.as_str())
    )]
    pub async fn create_order(
        &self,
        credentials: &Credentials,
        request: &CreateOrderRequest,
    ) -> Result<BybitResponse<OrderAck>, BybitError> {
        let body = create_order_body(request)?;
        let envelope = self
            .signed(credentials, Method::POST, "/v5/order/create", "", Some(&body))
            .await?;
        decode(envelope, parse::parse_order_ack)
    }

    /// Finds an order by orderLinkId: `/v5/order/realtime` first (open and recently closed), then
    /// `/v5/order/history` (Bybit moves closed orders there after a service restart).
    #[tracing::instrument(
        skip_all,
        fields(api_key = %credentials.masked_key(), order_link_id = order_link_id.as_str())
    )]
    pub async fn get_order_by_link_id(
        &self,
        credentials: &Credentials,
        symbol: &str,
        order_link_id: &OrderLinkId,
    ) -> Result<BybitResponse<Option<Order>>, BybitError> {
        let query = [
            ("category", CATEGORY),
            ("symbol", symbol),
            ("orderLinkId", order_link_id.as_str()),
        ];
        let matching = |page: parse::Page<Order>| {
            page.items
                .into_iter()
                .find(|o| o.order_link_id == order_link_id.as_str())
        };
        let envelope = self.signed_get(credentials, "/v5/order/realtime", &query).await?;
        let realtime = decode(envelope, |r| parse::parse_orders(r).map(matching))?;
        if realtime.value.is_some() {
            return Ok(realtime);
        }
        let envelope = self.signed_get(credentials, "/v5/order/history", &query).await?;
        decode(envelope, |r| parse::parse_orders(r).map(matching))
    }

    /// `GET /v5/execution/list` for one order (first page, up to 100 fills, newest first).
    #[tracing::instrument(skip(self, credentials), fields(api_key = %credentials.masked_key()))]
    pub async fn execution_list(
        &self,
        credentials: &Credentials,
        symbol: &str,
        filter: &ExecutionFilter,
    ) -> Result<BybitResponse<Vec<Execution>>, BybitError> {
        let (field, value) = match filter {
            ExecutionFilter::OrderId(id) => ("orderId", id.as_str()),
            ExecutionFilter::OrderLinkId(id) => ("orderLinkId", id.as_str()),
        };
        let query = [
            ("category", CATEGORY),
            ("symbol", symbol),
            (field, value),
            ("limit", "100"),
        ];
        let envelope = self.signed_get(credentials, "/v5/execution/list", &query).await?;
        decode(envelope, |r| parse::parse_executions(r).map(|p| p.items))
    }

    /// Every open order of a symbol (`/v5/order/realtime`, New, PartiallyFilled and Untriggered;
    /// all pages, newest first), including orders the user or Bybit created.
    #[tracing::instrument(skip(self, credentials), fields(api_key = %credentials.masked_key()))]
    pub async fn open_orders(
        &self,
        credentials: &Credentials,
        symbol: &str,
    ) -> Result<Vec<Order>, BybitError> {
        let mut orders = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("category", CATEGORY), ("symbol", symbol), ("limit", "50")];
            if let Some(cursor) = cursor.as_deref() {
                query.push(("cursor", cursor));
            }
            let envelope = self.signed_get(credentials, "/v5/order/realtime", &query).await?;
            let page = decode(envelope, parse::parse_orders)?.value;
            orders.extend(page.items);
            match page.next_page_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(orders),
            }
        }
        Err(BybitError::Ambiguous {
            reason: "open order list did not end".into(),
        })
    }

    /// Every fill of the account since `start_time_ms` (`/v5/execution/list`, all pages, newest
    /// first; one symbol or, with `None`, every USDT contract): what the private stream may have
    /// missed, including fills of orders the user or Bybit created. Dedupe by `exec_id`.
    #[tracing::instrument(skip(self, credentials), fields(api_key = %credentials.masked_key()))]
    pub async fn executions_since(
        &self,
        credentials: &Credentials,
        symbol: Option<&str>,
        start_time_ms: i64,
    ) -> Result<Vec<Execution>, BybitError> {
        let start = start_time_ms.to_string();
        let mut fills = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("category", CATEGORY)];
            match symbol {
                Some(symbol) => query.push(("symbol", symbol)),
                None => query.push(("settleCoin", "USDT")),
            }
            query.extend([("startTime", start.as_str()), ("limit", "100")]);
            if let Some(cursor) = cursor.as_deref() {
                query.push(("cursor", cursor));
            }
            let envelope = self.signed_get(credentials, "/v5/execution/list", &query).await?;
            let page = decode(envelope, parse::parse_executions)?.value;
            fills.extend(page.items);
            match page.next_page_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(fills),
            }
        }
        Err(BybitError::Ambiguous {
            reason: "execution list did not end".into(),
        })
    }

    /// `POST /v5/order/cancel`. `Ok` means accepted; the `order` push confirms. 110001 (gone or
    /// already finished) comes back as `Rejected { code: 110001 }`: look the order up.
    #[tracing::instrument(skip(self, credentials), fields(api_key = %credentials.masked_key()))]
    pub async fn cancel_order(
        &self,
        credentials: &Credentials,
        symbol: &str,
        order: &OrderRef,
    ) -> Result<BybitResponse<OrderAck>, BybitError> {
        let mut body = json!({"category": CATEGORY, "symbol": symbol});
        match order {
            OrderRef::OrderId(id) => body["orderId"] = json!(id),
            OrderRef::OrderLinkId(id) => body["orderLinkId"] = json!(id.as_str()),
        }
        let envelope = self.signed_post(credentials, "/v5/order/cancel", &body).await?;
        decode(envelope, parse::parse_order_ack)
    }

    /// `POST /v5/order/cancel-all` for one symbol: every open order, conditional ones included
    /// (the position's TP/SL stay). Returns the orders cancelled (possibly none).
    #[tracing::instrument(skip(self, credentials), fields(api_key = %credentials.masked_key()))]
    pub async fn cancel_all_orders(
        &self,
        credentials: &Credentials,
        symbol: &str,
    ) -> Result<BybitResponse<Vec<OrderAck>>, BybitError> {
        let body = json!({"category": CATEGORY, "symbol": symbol});
        let envelope = self
            .signed_post(credentials, "/v5/order/cancel-all", &body)
            .await?;
        decode(envelope, parse::parse_cancel_all)
    }
}

/// The exact JSON body for `/v5/order/create`: decimals as strings, `positionIdx` as a number.
pub fn create_order_body(request: &CreateOrderRequest) -> Result<String, BybitError> {
    let invalid = |reason: String| BybitError::InvalidRequest { reason };
    if request.qty <= Decimal::ZERO {
        return Err(invalid(format!("qty must be positive, got {}", request.qty)));
    }
    let mut body = Map::new();
    body.insert("category".into(), json!(CATEGORY));
    body.insert("symbol".into(), json!(request.symbol));
    body.insert("side".into(), json!(request.side.as_str()));
    let order_type = match request.order_type {
        OrderType::Market => "Market",
        OrderType::Limit => "Limit",
        OrderType::Unknown => return Err(invalid("order type must be Market or Limit".into())),
    };
    body.insert("orderType".into(), json!(order_type));
    body.insert("qty".into(), json!(request.qty.normalize().to_string()));
    match (request.order_type, request.price) {
        (OrderType::Limit, Some(price)) => {
            body.insert("price".into(), json!(price.normalize().to_string()));
        }
        (OrderType::Limit, None) => return Err(invalid("a Limit order needs a price".into())),
        _ => {}
    }
    if let Some(tif) = request.time_in_force {
        let tif = match tif {
            TimeInForce::GoodTillCancel => "GTC",
            TimeInForce::ImmediateOrCancel => "IOC",
            TimeInForce::FillOrKill => "FOK",
            TimeInForce::PostOnly => "PostOnly",
        };
        body.insert("timeInForce".into(), json!(tif));
    }
    body.insert("orderLinkId".into(), json!(request.order_link_id.as_str()));
    body.insert("reduceOnly".into(), json!(request.reduce_only));
    if request.close_on_trigger {
        body.insert("closeOnTrigger".into(), json!(true));
    }
    body.insert("positionIdx".into(), json!(u8::from(request.position_idx)));
    if let Some(trigger) = request.trigger {
        if trigger.price <= Decimal::ZERO {
            return Err(invalid(format!(
                "triggerPrice must be positive, got {}",
                trigger.price
            )));
        }
        body.insert(
            "triggerPrice".into(),
            json!(trigger.price.normalize().to_string()),
        );
        body.insert("triggerDirection".into(), json!(trigger.direction.wire()));
        body.insert("triggerBy".into(), json!(trigger.by.as_str()));
    }
    if request.take_profit.is_some() || request.stop_loss.is_some() {
        // Bybit refuses TP/SL on a reduce-only order; say so before sending.
        if request.reduce_only {
            return Err(invalid("TP/SL cannot be attached to a reduce-only order".into()));
        }
        body.insert("tpslMode".into(), json!("Full"));
        for (name, value) in [
            ("takeProfit", request.take_profit),
            ("stopLoss", request.stop_loss),
        ] {
            if let Some(price) = value {
                if price <= Decimal::ZERO {
                    return Err(invalid(format!("{name} must be positive, got {price}")));
                }
                body.insert(name.into(), json!(price.normalize().to_string()));
                let by = if name == "takeProfit" {
                    "tpTriggerBy"
                } else {
                    "slTriggerBy"
                };
                body.insert(by.into(), json!("LastPrice"));
            }
        }
    }
    Ok(Value::Object(body).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Side, TriggerDirection};
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn order_body_has_bybit_types() {
        let request = CreateOrderRequest::market(
            "AVAXUSDT",
            Side::Buy,
            dec("1.50"),
            OrderLinkId::parse("bot-0001").unwrap(),
        )
        .reduce_only(true);
        let body: Value = serde_json::from_str(&create_order_body(&request).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"category":"linear","symbol":"AVAXUSDT","side":"Buy","orderType":"Market",
                   "qty":"1.5","orderLinkId":"bot-0001","reduceOnly":true,"positionIdx":0})
        );
    }

    #[test]
    fn limit_body_carries_price_and_refuses_missing_price() {
        let id = OrderLinkId::parse("l-1").unwrap();
        let request = CreateOrderRequest::limit("AVAXUSDT", Side::Sell, dec("2"), dec("24.500"), id);
        let body: Value = serde_json::from_str(&create_order_body(&request).unwrap()).unwrap();
        assert_eq!(body["price"], json!("24.5"));
        assert_eq!(body["orderType"], json!("Limit"));
        let no_price = CreateOrderRequest {
            price: None,
            ..request
        };
        assert!(matches!(
            create_order_body(&no_price),
            Err(BybitError::InvalidRequest { .. })
        ));
    }

    #[test]
    fn zero_qty_is_refused_locally() {
        let request = CreateOrderRequest::market(
            "AVAXUSDT",
            Side::Buy,
            Decimal::ZERO,
            OrderLinkId::parse("z").unwrap(),
        );
        assert!(create_order_body(&request).is_err());
    }

    #[test]
    fn conditional_limit_with_tpsl_body() {
        let request = CreateOrderRequest::limit(
            "AVAXUSDT",
            Side::Buy,
            dec("2"),
            dec("26.5"),
            OrderLinkId::parse("c-1").unwrap(),
        )
        .time_in_force(TimeInForce::PostOnly)
        .trigger(dec("26.000"), TriggerDirection::Rise)
        .take_profit(dec("30"))
        .stop_loss(dec("24"));
        let body: Value = serde_json::from_str(&create_order_body(&request).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"category":"linear","symbol":"AVAXUSDT","side":"Buy","orderType":"Limit","qty":"2",
                   "price":"26.5","timeInForce":"PostOnly","orderLinkId":"c-1","reduceOnly":false,
                   "positionIdx":0,"triggerPrice":"26","triggerDirection":1,"triggerBy":"LastPrice",
                   "tpslMode":"Full","takeProfit":"30","tpTriggerBy":"LastPrice","stopLoss":"24",
                   "slTriggerBy":"LastPrice"})
        );
        let reduce =
            CreateOrderRequest::market("AVAXUSDT", Side::Sell, dec("1"), OrderLinkId::parse("r").unwrap())
                .reduce_only(true)
                .close_on_trigger(true);
        let body: Value = serde_json::from_str(&create_order_body(&reduce).unwrap()).unwrap();
        assert_eq!(body["closeOnTrigger"], json!(true));
        assert!(create_order_body(&reduce.stop_loss(dec("30"))).is_err());
    }
}
