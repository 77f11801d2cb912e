//! Bybit's JSON shapes: how instruments, tickers, orders, executions, positions and the wallet are
//! written on REST answers and private-stream pushes, and Bybit's number formatting.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Account, ExchangeState, Execution, Instrument, MarginSummary, Order, Position, Side};

pub fn fmt_dp(value: Decimal, dp: u32) -> String {
    let mut v = value.round_dp(dp);
    v.rescale(dp);
    v.to_string()
}

/// Money in Bybit's style: up to 8 decimals, no trailing zeros.
pub fn money(value: Decimal) -> String {
    value.round_dp(8).normalize().to_string()
}

impl Instrument {
    pub fn to_bybit_json(&self) -> Value {
        json!({
            "symbol": self.symbol,
            "symbolId": self.symbol_id,
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": self.base_coin,
            "quoteCoin": "USDT",
            "symbolType": "",
            "launchTime": "1600000000000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": self.price_dp().to_string(),
            "leverageFilter": {
                "minLeverage": "1",
                "maxLeverage": fmt_dp(self.max_leverage, 2),
                "leverageStep": "0.01"
            },
            "priceFilter": {
                "minPrice": self.fmt_price(self.tick_size),
                "maxPrice": self.fmt_price(self.price * Decimal::from(100)),
                "tickSize": self.fmt_price(self.tick_size)
            },
            "lotSizeFilter": {
                "maxOrderQty": self.fmt_qty(self.max_order_qty),
                "minOrderQty": self.fmt_qty(self.min_order_qty),
                "qtyStep": self.fmt_qty(self.qty_step),
                "postOnlyMaxOrderQty": self.fmt_qty(self.max_order_qty),
                "maxMktOrderQty": self.fmt_qty(self.max_mkt_order_qty),
                "minNotionalValue": money(self.min_notional)
            },
            "unifiedMarginTrade": true,
            "fundingInterval": 480,
            "settleCoin": "USDT",
            "copyTrading": "both",
            "upperFundingRate": "0.005",
            "lowerFundingRate": "-0.005",
            "displayName": "",
            "forbidUplWithdrawal": false,
            "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
            "isPreListing": false,
            "preListingInfo": null
        })
    }

    pub fn ticker_json(&self) -> Value {
        let p = self.fmt_price(self.price);
        json!({
            "symbol": self.symbol, "lastPrice": p, "indexPrice": p, "markPrice": p,
            "prevPrice24h": p, "price24hPcnt": "0", "highPrice24h": p, "lowPrice24h": p,
            "prevPrice1h": p, "openInterest": "0", "openInterestValue": "0",
            "turnover24h": "0", "volume24h": "0", "fundingRate": "0.0001",
            "nextFundingTime": "0", "predictedDeliveryPrice": "", "basisRate": "", "basis": "",
            "deliveryFeeRate": "", "deliveryTime": "0",
            "ask1Size": "1000", "bid1Price": p, "ask1Price": p, "bid1Size": "1000",
            "preOpenPrice": "", "preQty": "", "curPreListingPhase": "",
            "fundingIntervalHour": "8", "fundingCap": "0.005", "basisRateYear": ""
        })
    }
}

impl Order {
    pub fn to_bybit_json(&self, instrument: &Instrument) -> Value {
        let leaves = self.leaves_qty();
        json!({
            "category": "linear",
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderLinkId": self.order_link_id,
            "parentOrderLinkId": "",
            "blockTradeId": "",
            "isLeverage": "",
            "side": self.side.as_str(),
            "positionIdx": self.position_idx,
            "orderStatus": self.status.as_str(),
            "createType": self.create_type.as_str(),
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            "orderType": self.order_type.as_str(),
            "timeInForce": self.time_in_force.as_str(),
            "price": instrument.fmt_price(self.price),
            "brokerOrderPrice": "",
            "qty": instrument.fmt_qty(self.qty),
            "avgPrice": self.avg_price.map(money).unwrap_or_default(),
            "leavesQty": instrument.fmt_qty(leaves),
            "leavesValue": money(leaves * self.price),
            "cumExecQty": instrument.fmt_qty(self.cum_exec_qty),
            "cumExecValue": money(self.cum_exec_value),
            "cumExecFee": money(self.cum_exec_fee),
            "cumFeeDetail": {"USDT": money(self.cum_exec_fee)},
            "closedPnl": money(self.closed_pnl),
            "feeCurrency": "",
            "stopOrderType": self.create_type.stop_order_type(),
            "ocoTriggerBy": "",
            "orderIv": "",
            "marketUnit": "",
            "slippageToleranceType": "UNKNOWN",
            "slippageTolerance": "",
            "triggerPrice": opt_price(instrument, self.trigger_price),
            "triggerBy": self.trigger_by.as_deref().unwrap_or(""),
            "triggerDirection": self.trigger_direction,
            "takeProfit": opt_price(instrument, self.take_profit),
            "stopLoss": opt_price(instrument, self.stop_loss),
            "tpslMode": if self.take_profit.is_some() || self.stop_loss.is_some() { "Full" } else { "" },
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "tpTriggerBy": if self.take_profit.is_some() { "LastPrice" } else { "" },
            "slTriggerBy": if self.stop_loss.is_some() { "LastPrice" } else { "" },
            "lastPriceOnCreated": instrument.fmt_price(self.last_price_on_created),
            "basePrice": "",
            "reduceOnly": self.reduce_only,
            "closeOnTrigger": self.close_on_trigger,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "createdTime": self.created_at.timestamp_millis().to_string(),
            "updatedTime": self.updated_at.timestamp_millis().to_string(),
            "extraFees": "",
            "rpiTakerAccess": false,
            "rpiMatchedQty": "0"
        })
    }
}

impl Execution {
    pub fn to_bybit_json(&self, instrument: &Instrument) -> Value {
        json!({
            "category": "linear",
            "symbol": self.symbol,
            "isLeverage": "",
            "orderId": self.order_id,
            "orderLinkId": self.order_link_id,
            "side": self.side.as_str(),
            "orderPrice": instrument.fmt_price(self.order_price),
            "orderQty": instrument.fmt_qty(self.order_qty),
            "leavesQty": instrument.fmt_qty(self.leaves_qty),
            "createType": self.create_type.as_str(),
            "orderType": self.order_type.as_str(),
            "stopOrderType": match self.create_type.stop_order_type() { "" => "UNKNOWN", t => t },
            "execFee": money(self.exec_fee),
            "execFeeV2": "",
            "execId": self.exec_id,
            "execPrice": instrument.fmt_price(self.exec_price),
            "execQty": instrument.fmt_qty(self.exec_qty),
            "execPnl": money(self.exec_pnl),
            "execType": "Trade",
            "execValue": money(self.exec_value),
            "execTime": self.exec_time.timestamp_millis().to_string(),
            "isMaker": self.is_maker,
            "feeRate": money(self.fee_rate),
            "tradeIv": "",
            "markIv": "",
            "markPrice": instrument.fmt_price(self.mark_price),
            "indexPrice": "",
            "underlyingPrice": "",
            "blockTradeId": "",
            "closedSize": instrument.fmt_qty(self.closed_size),
            "marketUnit": "",
            "extraFees": "",
            "seq": self.seq,
            "feeCurrency": "USDT"
        })
    }

    pub fn to_fast_json(&self, instrument: &Instrument) -> Value {
        json!({
            "category": "linear",
            "symbol": self.symbol,
            "execId": self.exec_id,
            "execPrice": instrument.fmt_price(self.exec_price),
            "execQty": instrument.fmt_qty(self.exec_qty),
            "orderId": self.order_id,
            "isMaker": self.is_maker,
            // Bybit leaves orderLinkId empty on maker fills in this topic.
            "orderLinkId": if self.is_maker { "" } else { self.order_link_id.as_str() },
            "side": self.side.as_str(),
            "execTime": self.exec_time.timestamp_millis().to_string(),
            "seq": self.seq
        })
    }
}

/// Bybit writes an unset price as "0" in positions and "" in orders; orders use this.
fn opt_price(instrument: &Instrument, value: Option<Decimal>) -> String {
    value.map(|v| instrument.fmt_price(v)).unwrap_or_default()
}

fn position_price(instrument: &Instrument, value: Option<Decimal>) -> String {
    value
        .map(|v| instrument.fmt_price(v))
        .unwrap_or_else(|| "0".to_string())
}

impl ExchangeState {
    /// A position as Bybit shows it, with its liquidation price from the account's margin.
    pub fn position_json(&self, account: &Account, position: &Position, websocket: bool) -> Value {
        let instrument = &self.instruments[&position.symbol];
        position.to_bybit_json(instrument, self.liq_price(account, position), websocket)
    }
}

impl Position {
    /// REST (`avgPrice`) and WebSocket (`entryPrice`) name the entry price differently.
    pub fn to_bybit_json(
        &self,
        instrument: &Instrument,
        liq_price: Option<Decimal>,
        websocket: bool,
    ) -> Value {
        let mark = instrument.price;
        let value = self.size * self.avg_price;
        let im = self.initial_margin();
        let mm = self.maintenance_margin();
        let mut v = json!({
            "category": "linear",
            "positionIdx": self.position_idx,
            "riskId": 1,
            "riskLimitValue": "200000",
            "symbol": self.symbol,
            "side": self.side.map(Side::as_str).unwrap_or(""),
            "size": instrument.fmt_qty(self.size),
            "positionValue": money(value),
            "tradeMode": 0,
            "positionStatus": "Normal",
            "autoAddMargin": 0,
            "adlRankIndicator": if self.size.is_zero() { 0 } else { 2 },
            "leverage": money(self.leverage),
            "breakEvenPrice": if self.size.is_zero() { String::new() } else { instrument.fmt_price(self.avg_price) },
            "positionBalance": money(im),
            "markPrice": instrument.fmt_price(mark),
            "liqPrice": opt_price(instrument, liq_price),
            "bustPrice": "",
            "positionMM": money(mm),
            "positionMMByMp": money(mm),
            "positionIM": money(im),
            "positionIMByMp": money(im),
            "tpslMode": "Full",
            "takeProfit": position_price(instrument, self.take_profit),
            "stopLoss": position_price(instrument, self.stop_loss),
            "trailingStop": position_price(instrument, self.trailing_stop),
            "unrealisedPnl": money(self.unrealised_at(mark)),
            "curRealisedPnl": money(self.cur_realised_pnl),
            "cumRealisedPnl": money(self.cum_realised_pnl),
            "sessionAvgPrice": "",
            "seq": self.seq,
            "isReduceOnly": false,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "createdTime": self.created_at.timestamp_millis().to_string(),
            "updatedTime": self.updated_at.timestamp_millis().to_string(),
            "openTime": self.updated_at.timestamp_millis(),
        });
        let entry = if self.size.is_zero() {
            "0".to_string()
        } else {
            money(self.avg_price)
        };
        v[if websocket { "entryPrice" } else { "avgPrice" }] = Value::String(entry);
        v
    }
}

impl MarginSummary {
    pub fn wallet_json(&self) -> Value {
        let total_im = self.position_im + self.order_im;
        let im_rate = if self.equity > Decimal::ZERO {
            (total_im / self.equity).round_dp(4)
        } else {
            Decimal::ZERO
        };
        let mm_rate = if self.equity > Decimal::ZERO {
            (self.position_mm / self.equity).round_dp(4)
        } else {
            Decimal::ZERO
        };
        json!({
            "accountType": "UNIFIED",
            "accountIMRate": money(im_rate),
            "accountIMRateByMp": money(im_rate),
            "accountMMRate": money(mm_rate),
            "accountMMRateByMp": money(mm_rate),
            "accountLTV": "0",
            "totalEquity": money(self.equity),
            "totalWalletBalance": money(self.wallet_balance),
            "totalMarginBalance": money(self.equity),
            "totalAvailableBalance": money(self.available),
            "totalPerpUPL": money(self.unrealised_pnl),
            "totalInitialMargin": money(total_im),
            "totalInitialMarginByMp": money(total_im),
            "totalMaintenanceMargin": money(self.position_mm),
            "totalMaintenanceMarginByMp": money(self.position_mm),
            "coin": [{
                "coin": "USDT",
                "equity": money(self.equity),
                "usdValue": money(self.equity),
                "walletBalance": money(self.wallet_balance),
                "locked": "0",
                "spotHedgingQty": "0",
                "borrowAmount": "0",
                "accruedInterest": "0",
                "totalOrderIM": money(self.order_im),
                "totalPositionIM": money(self.position_im),
                "totalPositionMM": money(self.position_mm),
                "unrealisedPnl": money(self.unrealised_pnl),
                "cumRealisedPnl": money(self.cum_realised_pnl),
                "bonus": "0",
                "marginCollateral": true,
                "collateralSwitch": true,
                "colRes": "0",
                "spotBorrow": "0",
                "availableToWithdraw": "",
                "availableToBorrow": "",
                "free": ""
            }]
        })
    }
}
