//! Admin: read access to signals (filtered by user, strategy, status and time), orders and fills,
//! newest first, in cursor pages.

use humbex_shared::db::Statements;
use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::Object;
use humbex_shared::domain::{order_status, signal_status};
use humbex_shared::store::{fills, orders, signals};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use super::auth::AdminAuth;
use super::models::{Fill, Order, OrderPage, Signal, SignalDetail, SignalPage, SignalTrade};
use super::responses::{admin_response, respond};
use super::{AdminError, decimal_text, page_limit, within_budget};
use crate::state::AppState;
use crate::tags::ApiTags;

fn signal_from_row(r: &Row) -> Signal {
    Signal {
        id: r.get("id"),
        received_at: r.get("received_at"),
        source: r.get("source"),
        user_id: r.get("user_id"),
        strategy_id: r.get("strategy_id"),
        action: r.get("action"),
        symbol: r.get("symbol"),
        quantity: decimal_text(r.get("quantity")),
        client_id: r.get("client_id"),
        price: decimal_text(r.get("price")),
        signal_time: r.get("signal_time"),
        comment: r.get("comment"),
        status: r.get("status"),
        reject_reason: r.get("reject_reason"),
        raw_body: r.get("raw_body"),
        trade: match signals::trade_of(r) {
            Ok(trade) if trade.is_plain() => None,
            Ok(trade) => Some(SignalTrade::from(&trade)),
            Err(e) => {
                // Written by ingest from a TradeSpec, so unreadable only after a bad manual edit.
                tracing::warn!(signal_id = %r.get::<_, Uuid>("id"), error = %e, "a signal's trade fields are unreadable");
                None
            }
        },
    }
}

fn order_from_row(r: &Row) -> Order {
    Order {
        id: r.get("id"),
        signal_id: r.get("signal_id"),
        user_id: r.get("user_id"),
        api_key_id: r.get("api_key_id"),
        order_link_id: r.get("order_link_id"),
        exchange_order_id: r.get("exchange_order_id"),
        symbol: r.get("symbol"),
        side: r.get("side"),
        qty: decimal_text(r.get("qty")),
        reduce_only: r.get("reduce_only"),
        status: r.get("status"),
        error: r.get("error"),
        avg_price: decimal_text(r.get("avg_price")),
        filled_qty: r.get::<_, Decimal>("filled_qty").normalize().to_string(),
        fee: r.get::<_, Decimal>("fee").normalize().to_string(),
        created_at: r.get("created_at"),
        submitted_at: r.get("submitted_at"),
        acknowledged_at: r.get("acknowledged_at"),
        filled_at: r.get("filled_at"),
        slippage: decimal_text(r.get("slippage")),
        error_code: r.get("error_code"),
        origin: r.get("origin"),
        leg: r.get("leg"),
        order_type: r.get("order_type"),
        limit_price: decimal_text(r.get("limit_price")),
        time_in_force: r.get("time_in_force"),
        trigger_price: decimal_text(r.get("trigger_price")),
        take_profit: decimal_text(r.get("take_profit")),
        stop_loss: decimal_text(r.get("stop_loss")),
        trailing_stop: decimal_text(r.get("trailing_stop")),
        leverage: decimal_text(r.get("leverage")),
        closed_pnl: decimal_text(r.get("closed_pnl")),
        unprotected_ms: r.get("unprotected_ms"),
        fills: Vec::new(),
    }
}

/// Attach every order's fills with one query.
async fn with_fills(client: &Object, mut orders: Vec<Order>) -> Result<Vec<Order>, AdminError> {
    if orders.is_empty() {
        return Ok(orders);
    }
    let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let rows = client.rows(fills::OF_ORDERS, &[&ids]).await?;
    let mut by_order: HashMap<Uuid, Vec<Fill>> = HashMap::new();
    for r in rows {
        by_order.entry(r.get("order_id")).or_default().push(Fill {
            exec_id: r.get("exec_id"),
            qty: r.get::<_, Decimal>("qty").normalize().to_string(),
            price: r.get::<_, Decimal>("price").normalize().to_string(),
            fee: r.get::<_, Decimal>("fee").normalize().to_string(),
            exec_time: r.get("exec_time"),
        });
    }
    for order in &mut orders {
        order.fills = by_order.remove(&order.id).unwrap_or_default();
    }
    Ok(orders)
}

/// An order status to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum OrderStatusFilter {
    Pending,
    Submitted,
    New,
    PartiallyFilled,
    Filled,
    Cancelled,
    Rejected,
    Skipped,
    Failed,
}

impl OrderStatusFilter {
    fn as_str(self) -> &'static str {
        match self {
            OrderStatusFilter::Pending => order_status::PENDING,
            OrderStatusFilter::Submitted => order_status::SUBMITTED,
            OrderStatusFilter::New => order_status::NEW,
            OrderStatusFilter::PartiallyFilled => order_status::PARTIALLY_FILLED,
            OrderStatusFilter::Filled => order_status::FILLED,
            OrderStatusFilter::Cancelled => order_status::CANCELLED,
            OrderStatusFilter::Rejected => order_status::REJECTED,
            OrderStatusFilter::Skipped => order_status::SKIPPED,
            OrderStatusFilter::Failed => order_status::FAILED,
        }
    }
}

/// A signal status to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum SignalStatusFilter {
    Received,
    Processing,
    Done,
    Rejected,
}

impl SignalStatusFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalStatusFilter::Received => signal_status::RECEIVED,
            SignalStatusFilter::Processing => signal_status::PROCESSING,
            SignalStatusFilter::Done => signal_status::DONE,
            SignalStatusFilter::Rejected => signal_status::REJECTED,
        }
    }

    /// The filter named `text`, as the console's form sends it.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Received, Self::Processing, Self::Done, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A page of signals, newest first, matching `filter`; at most `limit` (see [`page_limit`]).
pub async fn list_signals(
    state: &AppState,
    filter: &signals::SignalFilter,
    limit: Option<i64>,
) -> Result<SignalPage, AdminError> {
    let limit = page_limit(limit)?;
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since > until
    {
        // An empty range (since = until) is valid and finds nothing.
        return Err(AdminError::field("until", "must not be earlier than since"));
    }
    within_budget(async {
        let client = state.pool.get().await?;
        let fetch = limit + 1;
        let (sql, params) = signals::filtered_page(filter, &fetch);
        let rows = client.rows(sql.as_str(), &params).await?;
        let mut items: Vec<Signal> = rows.iter().map(signal_from_row).collect();
        let mut next_before = None;
        if items.len() as i64 > limit {
            items.truncate(limit as usize);
            next_before = items.last().map(|s| s.id);
        }
        Ok(SignalPage { items, next_before })
    })
    .await
}

/// One signal with its orders and their fills.
pub async fn get_signal(state: &AppState, id: Uuid) -> Result<SignalDetail, AdminError> {
    within_budget(async {
        let client = state.pool.get().await?;
        let row = client
            .row_opt(signals::GET.as_str(), &[&id])
            .await?
            .ok_or_else(|| AdminError::not_found("signal"))?;
        let rows = client.rows(orders::OF_SIGNAL.as_str(), &[&id]).await?;
        let orders = with_fills(&client, rows.iter().map(order_from_row).collect()).await?;
        Ok(SignalDetail {
            signal: signal_from_row(&row),
            orders,
        })
    })
    .await
}

admin_response! {
    pub enum ListSignalsResponse {
        200 Ok(Json<SignalPage>),
        BadRequest, Unauthorized, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum GetSignalResponse {
        200 Ok(Json<SignalDetail>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum ListOrdersResponse {
        200 Ok(Json<OrderPage>),
        BadRequest, Unauthorized, TooManyRequests, Unavailable,
    }
}

pub struct ActivityApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl ActivityApi {
    /// List signals, newest first.
    ///
    /// Pass the previous page's `next_before` as `before` for the next page.
    #[oai(path = "/admin/signals", method = "get", operation_id = "list_signals")]
    #[allow(clippy::too_many_arguments)]
    async fn list_signals(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<i64>>,
        /// Only signals older than this signal id.
        before: Query<Option<Uuid>>,
        /// Only signals of this user's token.
        user_id: Query<Option<Uuid>>,
        /// Only signals of this strategy's token.
        strategy_id: Query<Option<Uuid>>,
        /// received, processing, done or rejected.
        status: Query<Option<SignalStatusFilter>>,
        /// Only signals received at or after this time.
        since: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// Only signals received before this time.
        until: Query<Option<chrono::DateTime<chrono::Utc>>>,
    ) -> poem::Result<ListSignalsResponse> {
        let filter = signals::SignalFilter {
            before: before.0,
            user_id: user_id.0,
            strategy_id: strategy_id.0,
            status: status.0.map(SignalStatusFilter::as_str),
            since: since.0,
            until: until.0,
        };
        respond(async {
            list_signals(&state, &filter, limit.0)
                .await
                .map(|p| ListSignalsResponse::Ok(Json(p)))
        })
        .await
    }

    /// Get one signal with its orders and their fills.
    #[oai(path = "/admin/signals/:id", method = "get", operation_id = "get_signal")]
    async fn get_signal(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
    ) -> poem::Result<GetSignalResponse> {
        respond(async {
            get_signal(&state, id.0)
                .await
                .map(|d| GetSignalResponse::Ok(Json(d)))
        })
        .await
    }

    /// List orders, newest first, optionally of one status.
    #[oai(path = "/admin/orders", method = "get", operation_id = "list_orders")]
    async fn list_orders(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        /// pending, submitted, new, partially_filled, filled, cancelled, rejected, skipped or failed.
        status: Query<Option<OrderStatusFilter>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<i64>>,
        /// Only orders older than this order id.
        before: Query<Option<Uuid>>,
    ) -> poem::Result<ListOrdersResponse> {
        respond(async {
            let limit = page_limit(limit.0)?;
            let status = status.0.map(OrderStatusFilter::as_str);
            within_budget(async {
                let client = state.pool.get().await?;
                let rows = client
                    .rows(orders::PAGE.as_str(), &[&status, &before.0, &(limit + 1)])
                    .await?;
                let mut items: Vec<Order> = rows.iter().map(order_from_row).collect();
                let mut next_before = None;
                if items.len() as i64 > limit {
                    items.truncate(limit as usize);
                    next_before = items.last().map(|o| o.id);
                }
                let items = with_fills(&client, items).await?;
                Ok(ListOrdersResponse::Ok(Json(OrderPage { items, next_before })))
            })
            .await
        })
        .await
    }
}
