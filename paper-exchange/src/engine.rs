//! The in-memory exchange: instruments, accounts, orders, matching, positions and balances.
//!
//! Everything here is synchronous and runs under one mutex held by [`crate::PaperExchange`]; the
//! functions return the WebSocket pushes they caused so the caller can publish them after unlocking.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bybit_error::BybitError;
use crate::config::{AccountSpec, PositionMode, SymbolConfig};

/// Bybit's default taker fee for USDT perpetuals (0.055 %).
pub const TAKER_FEE_RATE: Decimal = Decimal::from_parts(55, 0, 0, false, 5);
/// Bybit's default maker fee for USDT perpetuals (0.02 %).
pub const MAKER_FEE_RATE: Decimal = Decimal::from_parts(2, 0, 0, false, 4);
const DEFAULT_LEVERAGE: Decimal = Decimal::from_parts(10, 0, 0, false, 0);
/// Market orders become IOC limits at this distance from the last price (Bybit's protective price).
const PROTECTIVE_PRICE_RATIO: Decimal = Decimal::from_parts(5, 0, 0, false, 2);
/// How many finished orders `/v5/order/realtime?openOnly=1` may return, as on Bybit.
const MAX_RECENT_CLOSED: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "Buy",
            Side::Sell => "Sell",
        }
    }
    fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderType {
    Market,
    Limit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    #[serde(rename = "GTC")]
    Gtc,
    #[serde(rename = "IOC")]
    Ioc,
    #[serde(rename = "FOK")]
    Fok,
    PostOnly,
}

impl TimeInForce {
    fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
            TimeInForce::PostOnly => "PostOnly",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Filled,
    Cancelled,
    Rejected,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "New",
            OrderStatus::PartiallyFilled => "PartiallyFilled",
            OrderStatus::Filled => "Filled",
            OrderStatus::Cancelled => "Cancelled",
            OrderStatus::Rejected => "Rejected",
        }
    }
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled)
    }
}

/// A linear USDT perpetual with its trading filters and current (last = mark) price.
#[derive(Clone, Debug)]
pub struct Instrument {
    pub symbol: String,
    pub symbol_id: u32,
    pub base_coin: String,
    pub tick_size: Decimal,
    pub qty_step: Decimal,
    pub min_order_qty: Decimal,
    pub max_order_qty: Decimal,
    pub max_mkt_order_qty: Decimal,
    pub min_notional: Decimal,
    pub max_leverage: Decimal,
    pub price: Decimal,
}

impl Instrument {
    /// Filters modelled on Bybit's real values for the common symbols, derived from the price otherwise.
    pub fn new(symbol_id: u32, config: &SymbolConfig) -> Instrument {
        let symbol = config.symbol.clone();
        let base_coin = symbol.trim_end_matches("USDT").to_string();
        let d = |s: &str| s.parse::<Decimal>().expect("valid literal");
        let (tick, step, min, max, max_mkt, max_lev) = match symbol.as_str() {
            "BTCUSDT" => (d("0.10"), d("0.001"), d("0.001"), d("1190"), d("119"), d("100")),
            "ETHUSDT" => (d("0.01"), d("0.01"), d("0.01"), d("7240"), d("724"), d("100")),
            "AVAXUSDT" => (d("0.001"), d("0.1"), d("0.1"), d("50000"), d("10000"), d("50")),
            "SOLUSDT" => (d("0.010"), d("0.1"), d("0.1"), d("79770"), d("7977"), d("100")),
            _ => {
                let magnitude = decimal_magnitude(config.price);
                let tick = pow10(magnitude - 4);
                let step = pow10(-magnitude.clamp(-3, 4));
                let max = step * Decimal::from(500_000);
                (tick, step, step, max, max / Decimal::from(5), d("25"))
            }
        };
        Instrument {
            symbol,
            symbol_id,
            base_coin,
            tick_size: tick,
            qty_step: step,
            min_order_qty: min,
            max_order_qty: max,
            max_mkt_order_qty: max_mkt,
            min_notional: d("5"),
            max_leverage: max_lev,
            price: round_to_step(config.price, tick),
        }
    }

    pub fn price_dp(&self) -> u32 {
        self.tick_size.normalize().scale()
    }
    pub fn qty_dp(&self) -> u32 {
        self.qty_step.normalize().scale()
    }
    pub fn fmt_price(&self, value: Decimal) -> String {
        fmt_dp(value, self.price_dp())
    }
    pub fn fmt_qty(&self, value: Decimal) -> String {
        fmt_dp(value, self.qty_dp().max(1))
    }

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

/// One order as the paper exchange keeps it; also the control API's view (snake_case).
#[derive(Clone, Debug, Serialize)]
pub struct Order {
    pub order_id: String,
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub qty: Decimal,
    /// The limit price, or for market orders the protective price Bybit reports.
    pub price: Decimal,
    pub position_idx: u8,
    pub reduce_only: bool,
    pub close_on_trigger: bool,
    pub status: OrderStatus,
    pub cum_exec_qty: Decimal,
    pub cum_exec_value: Decimal,
    pub cum_exec_fee: Decimal,
    pub avg_price: Option<Decimal>,
    pub last_price_on_created: Decimal,
    pub cancel_type: &'static str,
    pub reject_reason: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Order {
    pub fn leaves_qty(&self) -> Decimal {
        if self.status.is_open() {
            self.qty - self.cum_exec_qty
        } else {
            Decimal::ZERO
        }
    }

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
            "createType": "CreateByUser",
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            "orderType": match self.order_type { OrderType::Market => "Market", OrderType::Limit => "Limit" },
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
            "closedPnl": "0",
            "feeCurrency": "",
            "stopOrderType": "",
            "ocoTriggerBy": "",
            "orderIv": "",
            "marketUnit": "",
            "slippageToleranceType": "UNKNOWN",
            "slippageTolerance": "",
            "triggerPrice": "",
            "triggerBy": "",
            "triggerDirection": 0,
            "takeProfit": "",
            "stopLoss": "",
            "tpslMode": "",
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "tpTriggerBy": "",
            "slTriggerBy": "",
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

/// One fill; also the control API's view.
#[derive(Clone, Debug, Serialize)]
pub struct Execution {
    pub exec_id: String,
    pub order_id: String,
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub order_price: Decimal,
    pub order_qty: Decimal,
    pub leaves_qty: Decimal,
    pub exec_price: Decimal,
    pub exec_qty: Decimal,
    pub exec_value: Decimal,
    pub exec_fee: Decimal,
    pub fee_rate: Decimal,
    pub is_maker: bool,
    pub closed_size: Decimal,
    pub exec_pnl: Decimal,
    pub mark_price: Decimal,
    pub seq: u64,
    pub exec_time: DateTime<Utc>,
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
            "createType": "CreateByUser",
            "orderType": match self.order_type { OrderType::Market => "Market", OrderType::Limit => "Limit" },
            "stopOrderType": "UNKNOWN",
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

/// A position slot: (symbol, positionIdx). `size` is never negative; `side` is None when flat.
#[derive(Clone, Debug, Serialize)]
pub struct Position {
    pub symbol: String,
    pub position_idx: u8,
    pub side: Option<Side>,
    pub size: Decimal,
    pub avg_price: Decimal,
    pub leverage: Decimal,
    pub mark_price: Decimal,
    pub unrealised_pnl: Decimal,
    pub cur_realised_pnl: Decimal,
    pub cum_realised_pnl: Decimal,
    pub seq: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Position {
    fn flat(symbol: &str, position_idx: u8, leverage: Decimal, now: DateTime<Utc>) -> Position {
        Position {
            symbol: symbol.to_string(),
            position_idx,
            side: None,
            size: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            leverage,
            mark_price: Decimal::ZERO,
            unrealised_pnl: Decimal::ZERO,
            cur_realised_pnl: Decimal::ZERO,
            cum_realised_pnl: Decimal::ZERO,
            seq: 0,
            created_at: now,
            updated_at: now,
        }
    }

    fn unrealised_at(&self, mark: Decimal) -> Decimal {
        match self.side {
            Some(Side::Buy) => (mark - self.avg_price) * self.size,
            Some(Side::Sell) => (self.avg_price - mark) * self.size,
            None => Decimal::ZERO,
        }
    }

    fn initial_margin(&self) -> Decimal {
        self.size * self.avg_price / self.leverage
    }

    /// REST (`avgPrice`) and WebSocket (`entryPrice`) name the entry price differently.
    pub fn to_bybit_json(&self, instrument: &Instrument, websocket: bool) -> Value {
        let mark = instrument.price;
        let value = self.size * self.avg_price;
        let im = self.initial_margin();
        let mm = value * Decimal::new(5, 3);
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
            "liqPrice": "",
            "bustPrice": "",
            "positionMM": money(mm),
            "positionMMByMp": money(mm),
            "positionIM": money(im),
            "positionIMByMp": money(im),
            "tpslMode": "Full",
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
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

/// A topic of the private stream. `data` holds the items already in Bybit's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Order,
    Execution,
    ExecutionFast,
    Position,
    Wallet,
}

impl Topic {
    pub fn base_name(self) -> &'static str {
        match self {
            Topic::Order => "order",
            Topic::Execution => "execution",
            Topic::ExecutionFast => "execution.fast",
            Topic::Position => "position",
            Topic::Wallet => "wallet",
        }
    }
    pub fn from_base_name(name: &str) -> Option<Topic> {
        Some(match name {
            "order" => Topic::Order,
            "execution" => Topic::Execution,
            "execution.fast" => Topic::ExecutionFast,
            "position" => Topic::Position,
            "wallet" => Topic::Wallet,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Push {
    pub topic: Topic,
    /// The `data` array, serialised once here rather than once per listening connection.
    pub data_json: String,
}

impl Push {
    pub fn new(topic: Topic, items: Vec<Value>) -> Push {
        Push {
            topic,
            data_json: Value::Array(items).to_string(),
        }
    }
}

pub struct Account {
    pub spec: AccountSpec,
    pub user_id: u64,
    pub created_at: DateTime<Utc>,
    pub wallet_balance: Decimal,
    pub cum_realised_pnl: Decimal,
    pub orders: Vec<Order>,
    order_index_by_id: HashMap<String, usize>,
    order_index_by_link_id: HashMap<String, usize>,
    pub executions: Vec<Execution>,
    pub positions: BTreeMap<(String, u8), Position>,
    leverage_by_symbol: HashMap<String, Decimal>,
    order_create_times_ms: VecDeque<i64>,
    /// Indexes of New/PartiallyFilled orders, so margin and matching need not scan the whole history.
    open_order_indexes: BTreeSet<usize>,
}

/// What an order-create rate check decided, with the numbers for the X-Bapi-Limit* headers.
#[derive(Clone, Copy, Debug)]
pub struct RateLimitStatus {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_at_ms: i64,
}

impl Account {
    pub fn new(spec: AccountSpec, user_id: u64, now: DateTime<Utc>) -> Account {
        Account {
            wallet_balance: spec.balance_usdt,
            spec,
            user_id,
            created_at: now,
            cum_realised_pnl: Decimal::ZERO,
            orders: Vec::new(),
            order_index_by_id: HashMap::new(),
            order_index_by_link_id: HashMap::new(),
            executions: Vec::new(),
            positions: BTreeMap::new(),
            leverage_by_symbol: HashMap::new(),
            order_create_times_ms: VecDeque::new(),
            open_order_indexes: BTreeSet::new(),
        }
    }

    /// Rolling one-second window per account, as Bybit counts order creates per UID.
    pub fn check_order_create_rate(&mut self, now_ms: i64) -> RateLimitStatus {
        let limit = self.spec.order_create_limit_per_second;
        while let Some(&first) = self.order_create_times_ms.front() {
            if first <= now_ms - 1000 {
                self.order_create_times_ms.pop_front();
            } else {
                break;
            }
        }
        let used = self.order_create_times_ms.len() as u32;
        if used >= limit {
            let reset = self
                .order_create_times_ms
                .front()
                .map(|t| t + 1000)
                .unwrap_or(now_ms);
            return RateLimitStatus {
                allowed: false,
                limit,
                remaining: 0,
                reset_at_ms: reset,
            };
        }
        self.order_create_times_ms.push_back(now_ms);
        RateLimitStatus {
            allowed: true,
            limit,
            remaining: limit - used - 1,
            reset_at_ms: now_ms,
        }
    }

    pub fn order_by_id(&self, order_id: &str) -> Option<&Order> {
        self.order_index_by_id.get(order_id).map(|&i| &self.orders[i])
    }
    pub fn order_by_link_id(&self, order_link_id: &str) -> Option<&Order> {
        self.order_index_by_link_id
            .get(order_link_id)
            .map(|&i| &self.orders[i])
    }

    fn leverage(&self, symbol: &str) -> Decimal {
        self.leverage_by_symbol
            .get(symbol)
            .copied()
            .unwrap_or(DEFAULT_LEVERAGE)
    }

    fn position_mut(&mut self, symbol: &str, idx: u8, now: DateTime<Utc>) -> &mut Position {
        let leverage = self.leverage(symbol);
        self.positions
            .entry((symbol.to_string(), idx))
            .or_insert_with(|| Position::flat(symbol, idx, leverage, now))
    }

    fn position_snapshot(&self, symbol: &str, idx: u8, now: DateTime<Utc>) -> Position {
        self.positions
            .get(&(symbol.to_string(), idx))
            .cloned()
            .unwrap_or_else(|| Position::flat(symbol, idx, self.leverage(symbol), now))
    }

    /// The position slots a symbol has in this account's mode (one in one-way, two in hedge).
    pub fn position_indexes(&self) -> &'static [u8] {
        match self.spec.position_mode {
            PositionMode::OneWay => &[0],
            PositionMode::Hedge => &[1, 2],
        }
    }
}

/// Totals of one account's margin, all in USDT.
#[derive(Clone, Copy, Debug)]
pub struct MarginSummary {
    pub wallet_balance: Decimal,
    pub unrealised_pnl: Decimal,
    pub equity: Decimal,
    pub position_im: Decimal,
    pub position_mm: Decimal,
    pub order_im: Decimal,
    pub available: Decimal,
    pub cum_realised_pnl: Decimal,
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

/// The parsed, not yet validated fields of an order create request.
#[derive(Clone, Debug, Default)]
pub struct OrderRequest {
    pub category: Option<String>,
    pub symbol: Option<String>,
    pub side: Option<String>,
    pub order_type: Option<String>,
    pub qty: Option<String>,
    pub price: Option<String>,
    pub time_in_force: Option<String>,
    pub order_link_id: Option<String>,
    pub position_idx: Option<i64>,
    pub reduce_only: bool,
    pub close_on_trigger: bool,
}

pub struct ExchangeState {
    pub instruments: BTreeMap<String, Instrument>,
    pub accounts: HashMap<String, Account>,
    /// False while serving an account nobody listens to: building pushes is most of an order's cost.
    pub emit_pushes: bool,
    next_user_id: u64,
    next_seq: u64,
}

pub type EngineResult<T> = Result<T, BybitError>;

impl ExchangeState {
    pub fn new(symbols: &[SymbolConfig]) -> ExchangeState {
        let instruments = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.symbol.clone(), Instrument::new(i as u32 + 1, s)))
            .collect();
        ExchangeState {
            instruments,
            accounts: HashMap::new(),
            emit_pushes: true,
            next_user_id: 100_001,
            next_seq: 1,
        }
    }

    pub fn add_account(&mut self, spec: AccountSpec, now: DateTime<Utc>) -> Result<&Account, AccountExists> {
        if self.accounts.contains_key(&spec.api_key) {
            return Err(AccountExists);
        }
        let user_id = self.next_user_id;
        self.next_user_id += 1;
        let key = spec.api_key.clone();
        self.accounts
            .insert(key.clone(), Account::new(spec, user_id, now));
        Ok(&self.accounts[&key])
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub fn margin_summary(&self, account: &Account) -> MarginSummary {
        let mut unrealised = Decimal::ZERO;
        let mut position_im = Decimal::ZERO;
        let mut position_mm = Decimal::ZERO;
        for p in account.positions.values() {
            if p.size.is_zero() {
                continue;
            }
            let mark = self
                .instruments
                .get(&p.symbol)
                .map(|i| i.price)
                .unwrap_or(p.avg_price);
            unrealised += p.unrealised_at(mark);
            position_im += p.initial_margin();
            position_mm += p.size * p.avg_price * Decimal::new(5, 3);
        }
        let order_im: Decimal = account
            .open_order_indexes
            .iter()
            .map(|&i| &account.orders[i])
            .filter(|o| o.status.is_open() && !o.reduce_only)
            .map(|o| o.leaves_qty() * o.price / account.leverage(&o.symbol))
            .sum();
        let equity = account.wallet_balance + unrealised;
        let available = (equity - position_im - order_im).max(Decimal::ZERO);
        MarginSummary {
            wallet_balance: account.wallet_balance,
            unrealised_pnl: unrealised,
            equity,
            position_im,
            position_mm,
            order_im,
            available,
            cum_realised_pnl: account.cum_realised_pnl,
        }
    }

    /// Validates and places an order, filling it at once when it can. Checks run in the order
    /// docs/bybit.md#order-create-validation-order lists, so the first failing rule decides the
    /// code.
    pub fn create_order(
        &mut self,
        api_key: &str,
        request: &OrderRequest,
        now: DateTime<Utc>,
    ) -> EngineResult<(Order, Vec<Push>)> {
        if request.category.as_deref() != Some("linear") {
            return Err(BybitError::params(format!(
                "params error: category invalid {}",
                request.category.as_deref().unwrap_or("")
            )));
        }
        let symbol = request.symbol.as_deref().unwrap_or("");
        let instrument = self
            .instruments
            .get(symbol)
            .cloned()
            .ok_or_else(|| BybitError::params(format!("params error: symbol invalid {symbol}")))?;
        let side = match request.side.as_deref() {
            Some("Buy") => Side::Buy,
            Some("Sell") => Side::Sell,
            other => {
                return Err(BybitError::params(format!(
                    "params error: side invalid {}",
                    other.unwrap_or("")
                )));
            }
        };
        let order_type = match request.order_type.as_deref() {
            Some("Market") => OrderType::Market,
            Some("Limit") => OrderType::Limit,
            other => {
                return Err(BybitError::params(format!(
                    "params error: orderType invalid {}",
                    other.unwrap_or("")
                )));
            }
        };
        let time_in_force = match (order_type, request.time_in_force.as_deref()) {
            (OrderType::Market, _) => TimeInForce::Ioc,
            (OrderType::Limit, None | Some("GTC") | Some("")) => TimeInForce::Gtc,
            (OrderType::Limit, Some("IOC")) => TimeInForce::Ioc,
            (OrderType::Limit, Some("FOK")) => TimeInForce::Fok,
            (OrderType::Limit, Some("PostOnly")) => TimeInForce::PostOnly,
            (_, Some(other)) => {
                return Err(BybitError::params(format!(
                    "params error: timeInForce invalid {other}"
                )));
            }
        };
        let mut qty = request
            .qty
            .as_deref()
            .and_then(|q| q.parse::<Decimal>().ok())
            .filter(|q| !q.is_sign_negative())
            .ok_or_else(|| BybitError::params("params error: qty invalid"))?;

        let account = self
            .accounts
            .get(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        let position_idx = match (account.spec.position_mode, request.position_idx.unwrap_or(0)) {
            (PositionMode::OneWay, 0) => 0u8,
            (PositionMode::Hedge, idx @ (1 | 2)) => idx as u8,
            _ => return Err(BybitError::params("position idx not match position mode")),
        };
        let order_link_id = request.order_link_id.clone().unwrap_or_default();
        if !order_link_id.is_empty() {
            let well_formed = order_link_id.len() <= 36
                && order_link_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err(BybitError::params(
                    "params error: orderLinkId must be at most 36 characters of letters, digits, - and _",
                ));
            }
            if account.order_index_by_link_id.contains_key(&order_link_id) {
                return Err(BybitError::new(110072, "OrderLinkedID is duplicate"));
            }
        }

        let position = account.position_snapshot(symbol, position_idx, now);
        // Which side of the slot this order reduces: in hedge mode a slot only ever holds one side.
        let closes_position = match account.spec.position_mode {
            PositionMode::OneWay => position.side == Some(side.opposite()),
            PositionMode::Hedge => (position_idx == 1) == (side == Side::Sell),
        };

        let close_whole_position = qty.is_zero() && request.reduce_only && request.close_on_trigger;
        if close_whole_position {
            if position.size.is_zero() || !closes_position {
                return Err(BybitError::new(
                    110017,
                    "current position is zero, cannot fix reduce-only order qty",
                ));
            }
            let cap = match order_type {
                OrderType::Market => instrument.max_mkt_order_qty,
                OrderType::Limit => instrument.max_order_qty,
            };
            qty = position.size.min(cap);
        } else {
            if qty < instrument.min_order_qty {
                return Err(BybitError::params(
                    "The number of contracts exceeds minimum limit allowed",
                ));
            }
            if !(qty % instrument.qty_step).is_zero() {
                return Err(BybitError::params(format!(
                    "Qty invalid: qty {} is not a multiple of qtyStep {}",
                    qty.normalize(),
                    instrument.qty_step.normalize()
                )));
            }
            let max = match order_type {
                OrderType::Market => instrument.max_mkt_order_qty,
                OrderType::Limit => instrument.max_order_qty,
            };
            if qty > max {
                let scale = Decimal::from(100_000_000);
                return Err(BybitError::params(format!(
                    "The number of contracts exceeds maximum limit allowed: too large, order_qty:{} > max_qty:{}",
                    (qty * scale).normalize(),
                    (max * scale).normalize()
                )));
            }
        }

        let last = instrument.price;
        let price = match order_type {
            OrderType::Market => {
                let protective = match side {
                    Side::Buy => last * (Decimal::ONE + PROTECTIVE_PRICE_RATIO),
                    Side::Sell => last * (Decimal::ONE - PROTECTIVE_PRICE_RATIO),
                };
                round_to_step(protective, instrument.tick_size)
            }
            OrderType::Limit => {
                let price = request
                    .price
                    .as_deref()
                    .and_then(|p| p.parse::<Decimal>().ok())
                    .filter(|p| *p > Decimal::ZERO)
                    .ok_or_else(|| BybitError::params("params error: price invalid"))?;
                if !(price % instrument.tick_size).is_zero() {
                    return Err(BybitError::params(format!(
                        "params error: price {} is not a multiple of tickSize {}",
                        price.normalize(),
                        instrument.tick_size.normalize()
                    )));
                }
                price
            }
        };
        let reference_price = match order_type {
            OrderType::Market => last,
            OrderType::Limit => price,
        };
        if !request.reduce_only && qty * reference_price < instrument.min_notional {
            return Err(BybitError::new(
                110094,
                format!(
                    "Order does not meet minimum order value {}USDT",
                    instrument.min_notional.normalize()
                ),
            ));
        }

        let is_hedge_close = account.spec.position_mode == PositionMode::Hedge && closes_position;
        if request.reduce_only || is_hedge_close {
            if position.size.is_zero() {
                return Err(BybitError::new(
                    110017,
                    "current position is zero, cannot fix reduce-only order qty",
                ));
            }
            if !closes_position {
                return Err(BybitError::new(110017, "Reduce-only rule not satisfied"));
            }
            // Bybit truncates a reduce-only quantity to the position it can reduce.
            qty = qty.min(position.size);
        } else {
            let opening_qty = if closes_position {
                (qty - position.size).max(Decimal::ZERO)
            } else {
                qty
            };
            let leverage = account.leverage(symbol);
            let needed =
                opening_qty * reference_price / leverage + opening_qty * reference_price * TAKER_FEE_RATE;
            if needed > self.margin_summary(account).available {
                return Err(BybitError::new(110007, "ab not enough for new order"));
            }
        }

        let order = Order {
            order_id: uuid::Uuid::new_v4().to_string(),
            order_link_id,
            symbol: symbol.to_string(),
            side,
            order_type,
            time_in_force,
            qty,
            price,
            position_idx,
            reduce_only: request.reduce_only,
            close_on_trigger: request.close_on_trigger,
            status: OrderStatus::New,
            cum_exec_qty: Decimal::ZERO,
            cum_exec_value: Decimal::ZERO,
            cum_exec_fee: Decimal::ZERO,
            avg_price: None,
            last_price_on_created: last,
            cancel_type: "UNKNOWN",
            reject_reason: "EC_NoError",
            created_at: now,
            updated_at: now,
        };
        let crosses = match (order_type, side) {
            (OrderType::Market, _) => true,
            (OrderType::Limit, Side::Buy) => price >= last,
            (OrderType::Limit, Side::Sell) => price <= last,
        };
        let account = self.accounts.get_mut(api_key).expect("checked above");
        let index = account.orders.len();
        account.order_index_by_id.insert(order.order_id.clone(), index);
        if !order.order_link_id.is_empty() {
            account
                .order_index_by_link_id
                .insert(order.order_link_id.clone(), index);
        }
        account.orders.push(order);

        let mut pushes = Vec::new();
        if crosses && time_in_force == TimeInForce::PostOnly {
            self.finish_unfilled(api_key, index, "EC_PostOnlyWillTakeLiquidity", now, &mut pushes);
        } else if crosses {
            // Taker fills happen at the last price: the book is assumed deep enough at the touch.
            self.fill(api_key, index, last, false, now, &mut pushes);
        } else if matches!(time_in_force, TimeInForce::Ioc | TimeInForce::Fok) {
            let reason = if time_in_force == TimeInForce::Fok {
                "EC_CancelForNoFullFill"
            } else {
                "EC_NoImmediateQtyToFill"
            };
            self.finish_unfilled(api_key, index, reason, now, &mut pushes);
        } else {
            self.push_order_position_wallet(api_key, index, now, &mut pushes);
        }
        let account = &self.accounts[api_key];
        Ok((account.orders[index].clone(), pushes))
    }

    fn finish_unfilled(
        &mut self,
        api_key: &str,
        index: usize,
        reason: &'static str,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let account = self.accounts.get_mut(api_key).expect("account exists");
        let order = &mut account.orders[index];
        order.status = OrderStatus::Cancelled;
        order.cancel_type = "UNKNOWN";
        order.reject_reason = reason;
        order.updated_at = now;
        self.push_order_position_wallet(api_key, index, now, pushes);
    }

    fn push_order_position_wallet(
        &mut self,
        api_key: &str,
        index: usize,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let account = self.accounts.get_mut(api_key).expect("account exists");
        // Every status change ends here, which keeps the open-order index exact.
        if account.orders[index].status.is_open() {
            account.open_order_indexes.insert(index);
        } else {
            account.open_order_indexes.remove(&index);
        }
        if !self.emit_pushes {
            return;
        }
        let account = &self.accounts[api_key];
        let order = &account.orders[index];
        let instrument = &self.instruments[&order.symbol];
        pushes.push(Push::new(Topic::Order, vec![order.to_bybit_json(instrument)]));
        let position = account.position_snapshot(&order.symbol, order.position_idx, now);
        pushes.push(Push::new(
            Topic::Position,
            vec![position.to_bybit_json(instrument, true)],
        ));
        pushes.push(Push::new(
            Topic::Wallet,
            vec![self.margin_summary(account).wallet_json()],
        ));
    }

    /// Fills the whole remaining quantity of an order at `price` (capped for reduce-only orders).
    fn fill(
        &mut self,
        api_key: &str,
        index: usize,
        price: Decimal,
        is_maker: bool,
        now: DateTime<Utc>,
        pushes: &mut Vec<Push>,
    ) {
        let seq = self.next_seq();
        let instrument = self.instruments[&self.accounts[api_key].orders[index].symbol].clone();
        let account = self.accounts.get_mut(api_key).expect("account exists");
        let order = account.orders[index].clone();
        let mut exec_qty = order.qty - order.cum_exec_qty;
        let leverage = account.leverage(&order.symbol);
        let position = account.position_mut(&order.symbol, order.position_idx, now);
        let closes = match position.side {
            Some(s) => s != order.side,
            None => false,
        } || (order.position_idx == 1 && order.side == Side::Sell)
            || (order.position_idx == 2 && order.side == Side::Buy);
        if order.reduce_only || order.position_idx != 0 && closes {
            exec_qty = exec_qty.min(position.size);
        }
        if exec_qty.is_zero() {
            let order = &mut account.orders[index];
            order.status = OrderStatus::Cancelled;
            order.cancel_type = "CancelByReduceOnly";
            order.updated_at = now;
            self.push_order_position_wallet(api_key, index, now, pushes);
            return;
        }

        let fee_rate = if is_maker { MAKER_FEE_RATE } else { TAKER_FEE_RATE };
        let exec_value = exec_qty * price;
        let fee = (exec_value * fee_rate).round_dp(8);
        let mut closed_size = Decimal::ZERO;
        let mut pnl = Decimal::ZERO;
        if closes && !position.size.is_zero() {
            closed_size = exec_qty.min(position.size);
            pnl = match position.side {
                Some(Side::Buy) => (price - position.avg_price) * closed_size,
                _ => (position.avg_price - price) * closed_size,
            };
            position.size -= closed_size;
            let opening = exec_qty - closed_size;
            if position.size.is_zero() {
                position.side = None;
                position.avg_price = Decimal::ZERO;
                if !opening.is_zero() {
                    position.side = Some(order.side);
                    position.size = opening;
                    position.avg_price = price;
                }
            }
        } else {
            let new_size = position.size + exec_qty;
            position.avg_price =
                ((position.avg_price * position.size + price * exec_qty) / new_size).round_dp(10);
            position.size = new_size;
            position.side = Some(order.side);
        }
        position.cur_realised_pnl += pnl - fee;
        position.cum_realised_pnl += pnl - fee;
        position.mark_price = instrument.price;
        position.leverage = leverage;
        position.seq = seq;
        position.updated_at = now;
        account.wallet_balance += pnl - fee;
        account.cum_realised_pnl += pnl - fee;

        let order = &mut account.orders[index];
        order.cum_exec_value += exec_value;
        order.cum_exec_qty += exec_qty;
        order.cum_exec_fee += fee;
        order.avg_price =
            Some((order.cum_exec_value / order.cum_exec_qty).round_dp(instrument.price_dp() + 4));
        order.updated_at = now;
        // Reduce-only truncation shrinks the order to what was actually filled, as Bybit does.
        if order.cum_exec_qty < order.qty && order.reduce_only {
            order.qty = order.cum_exec_qty;
        }
        order.status = if order.cum_exec_qty >= order.qty {
            OrderStatus::Filled
        } else {
            OrderStatus::Cancelled
        };
        let execution = Execution {
            exec_id: uuid::Uuid::new_v4().to_string(),
            order_id: order.order_id.clone(),
            order_link_id: order.order_link_id.clone(),
            symbol: order.symbol.clone(),
            side: order.side,
            order_type: order.order_type,
            order_price: order.price,
            order_qty: order.qty,
            leaves_qty: order.leaves_qty(),
            exec_price: price,
            exec_qty,
            exec_value,
            exec_fee: fee,
            fee_rate,
            is_maker,
            closed_size,
            exec_pnl: pnl,
            mark_price: instrument.price,
            seq,
            exec_time: now,
        };
        if self.emit_pushes {
            pushes.push(Push::new(
                Topic::Execution,
                vec![execution.to_bybit_json(&instrument)],
            ));
            pushes.push(Push::new(
                Topic::ExecutionFast,
                vec![execution.to_fast_json(&instrument)],
            ));
        }
        account.executions.push(execution);
        self.push_order_position_wallet(api_key, index, now, pushes);
    }

    pub fn cancel_order(
        &mut self,
        api_key: &str,
        symbol: &str,
        order_id: Option<&str>,
        order_link_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> EngineResult<(Order, Vec<Push>)> {
        let account = self
            .accounts
            .get_mut(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        let index = match (
            order_id.filter(|s| !s.is_empty()),
            order_link_id.filter(|s| !s.is_empty()),
        ) {
            (Some(id), _) => account.order_index_by_id.get(id).copied(),
            (None, Some(link)) => account.order_index_by_link_id.get(link).copied(),
            (None, None) => {
                return Err(BybitError::params(
                    "params error: orderId or orderLinkId is required",
                ));
            }
        };
        let index = index
            .filter(|&i| account.orders[i].symbol == symbol)
            .ok_or_else(|| BybitError::new(110001, "order not exists or too late to cancel"))?;
        let order = &mut account.orders[index];
        if !order.status.is_open() {
            return Err(BybitError::new(110001, "order not exists or too late to cancel"));
        }
        order.status = OrderStatus::Cancelled;
        order.cancel_type = "CancelByUser";
        order.updated_at = now;
        let mut pushes = Vec::new();
        self.push_order_position_wallet(api_key, index, now, &mut pushes);
        Ok((self.accounts[api_key].orders[index].clone(), pushes))
    }

    /// Sets a symbol's price and fills every resting limit order the move crosses, at its limit price.
    pub fn set_price(
        &mut self,
        symbol: &str,
        price: Decimal,
        now: DateTime<Utc>,
    ) -> Option<Vec<(String, Vec<Push>)>> {
        let instrument = self.instruments.get_mut(symbol)?;
        instrument.price = round_to_step(price, instrument.tick_size).max(instrument.tick_size);
        let price = instrument.price;
        let mut crossed: Vec<(String, usize)> = Vec::new();
        for (key, account) in &self.accounts {
            for &i in &account.open_order_indexes {
                let o = &account.orders[i];
                if o.symbol == symbol && o.status.is_open() {
                    let hit = match o.side {
                        Side::Buy => price <= o.price,
                        Side::Sell => price >= o.price,
                    };
                    if hit {
                        crossed.push((key.clone(), i));
                    }
                }
            }
        }
        let mut by_account: Vec<(String, Vec<Push>)> = Vec::new();
        for (key, index) in crossed {
            let limit_price = self.accounts[&key].orders[index].price;
            let mut pushes = Vec::new();
            self.fill(&key, index, limit_price, true, now, &mut pushes);
            match by_account.iter_mut().find(|(k, _)| *k == key) {
                Some((_, all)) => all.extend(pushes),
                None => by_account.push((key, pushes)),
            }
        }
        for account in self.accounts.values_mut() {
            for p in account.positions.values_mut() {
                if p.symbol == symbol {
                    p.mark_price = price;
                }
            }
        }
        Some(by_account)
    }

    pub fn set_leverage(
        &mut self,
        api_key: &str,
        symbol: &str,
        buy: Option<&str>,
        sell: Option<&str>,
        now: DateTime<Utc>,
    ) -> EngineResult<Vec<Push>> {
        let instrument = self
            .instruments
            .get(symbol)
            .cloned()
            .ok_or_else(|| BybitError::params(format!("params error: symbol invalid {symbol}")))?;
        let parse = |s: Option<&str>| s.and_then(|v| v.parse::<Decimal>().ok());
        let (Some(buy), Some(sell)) = (parse(buy), parse(sell)) else {
            return Err(BybitError::params(
                "params error: buyLeverage and sellLeverage are required",
            ));
        };
        let account = self
            .accounts
            .get_mut(api_key)
            .ok_or_else(BybitError::invalid_api_key)?;
        if account.spec.position_mode == PositionMode::OneWay && buy != sell {
            return Err(BybitError::params(
                "buy leverage must equal sell leverage in one-way mode",
            ));
        }
        if buy < Decimal::ONE || buy > instrument.max_leverage || !(buy % Decimal::new(1, 2)).is_zero() {
            return Err(BybitError::new(10001, "leverage invalid"));
        }
        if account.leverage(symbol) == buy {
            return Err(BybitError::new(110043, "leverage not modified"));
        }
        account.leverage_by_symbol.insert(symbol.to_string(), buy);
        let mut pushes = Vec::new();
        for &idx in account.position_indexes() {
            let position = account.position_mut(symbol, idx, now);
            position.leverage = buy;
            position.updated_at = now;
            pushes.push(Push::new(
                Topic::Position,
                vec![position.to_bybit_json(&instrument, true)],
            ));
        }
        Ok(pushes)
    }

    /// Orders matching a Bybit order query, newest first.
    pub fn query_orders<'a>(
        &'a self,
        account: &'a Account,
        filter: &OrderQuery,
    ) -> impl Iterator<Item = &'a Order> + 'a {
        let by_id = filter.order_id.clone().filter(|s| !s.is_empty());
        let by_link = filter.order_link_id.clone().filter(|s| !s.is_empty());
        let open_only = filter.open_only;
        let closed_only = filter.closed_only;
        let symbol = filter.symbol.clone();
        let status = filter.order_status.clone();
        let mut closed_seen = 0usize;
        account.orders.iter().rev().filter(move |o| {
            if let Some(id) = &by_id {
                return &o.order_id == id;
            }
            if let Some(link) = &by_link {
                return &o.order_link_id == link;
            }
            if symbol.as_ref().is_some_and(|s| s != &o.symbol) {
                return false;
            }
            if status
                .as_ref()
                .is_some_and(|s| !s.split(',').any(|x| x == o.status.as_str()))
            {
                return false;
            }
            if open_only && !o.status.is_open() {
                return false;
            }
            if closed_only && o.status.is_open() {
                closed_seen += 1;
                return closed_seen <= MAX_RECENT_CLOSED;
            }
            true
        })
    }

    pub fn positions_json(&self, account: &Account, symbol: Option<&str>, now: DateTime<Utc>) -> Vec<Value> {
        let mut list = Vec::new();
        for instrument in self.instruments.values() {
            if symbol.is_some_and(|s| s != instrument.symbol) {
                continue;
            }
            for &idx in account.position_indexes() {
                let p = account.position_snapshot(&instrument.symbol, idx, now);
                // Without a symbol filter Bybit lists only open positions.
                if symbol.is_none() && p.size.is_zero() {
                    continue;
                }
                list.push(p.to_bybit_json(instrument, false));
            }
        }
        list
    }
}

/// Filters of /v5/order/realtime and /v5/order/history.
#[derive(Clone, Debug, Default)]
pub struct OrderQuery {
    pub symbol: Option<String>,
    pub order_id: Option<String>,
    pub order_link_id: Option<String>,
    pub order_status: Option<String>,
    pub open_only: bool,
    pub closed_only: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("an account with this api_key already exists")]
pub struct AccountExists;

pub fn fmt_dp(value: Decimal, dp: u32) -> String {
    let mut v = value.round_dp(dp);
    v.rescale(dp);
    v.to_string()
}

/// Money in Bybit's style: up to 8 decimals, no trailing zeros.
pub fn money(value: Decimal) -> String {
    value.round_dp(8).normalize().to_string()
}

pub fn round_to_step(value: Decimal, step: Decimal) -> Decimal {
    ((value / step).round() * step).normalize()
}

fn pow10(exp: i32) -> Decimal {
    if exp >= 0 {
        Decimal::from(10u64.pow(exp as u32))
    } else {
        Decimal::new(1, (-exp) as u32)
    }
}

fn decimal_magnitude(value: Decimal) -> i32 {
    let mut magnitude = 0i32;
    let mut v = value.abs();
    if v.is_zero() {
        return 0;
    }
    while v >= Decimal::TEN {
        v /= Decimal::TEN;
        magnitude += 1;
    }
    while v < Decimal::ONE {
        v *= Decimal::TEN;
        magnitude -= 1;
    }
    magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_constants_are_bybit_defaults() {
        assert_eq!(TAKER_FEE_RATE.to_string(), "0.00055");
        assert_eq!(MAKER_FEE_RATE.to_string(), "0.0002");
        assert_eq!(DEFAULT_LEVERAGE.to_string(), "10");
        assert_eq!(PROTECTIVE_PRICE_RATIO.to_string(), "0.05");
    }

    #[test]
    fn derived_filters_for_unknown_symbols() {
        let cfg = SymbolConfig {
            symbol: "XYZUSDT".into(),
            price: "2.5".parse().unwrap(),
        };
        let i = Instrument::new(9, &cfg);
        assert_eq!(i.tick_size.to_string(), "0.0001");
        assert_eq!(i.qty_step.to_string(), "1");
    }
}
