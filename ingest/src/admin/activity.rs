//! Admin: read access to signals, orders and fills, newest first, in cursor pages.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::Object;
use humbex_shared::domain::order_status;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use super::auth::AdminAuth;
use super::models::{Fill, Order, OrderPage, Signal, SignalDetail, SignalPage};
use super::responses::{admin_response, respond};
use super::{AdminError, page_limit, within_budget};
use crate::state::AppState;
use crate::tags::ApiTags;

const SIGNAL_COLUMNS: &str = "id, received_at, source, user_id, strategy_id, action, symbol, quantity, \
     client_id, price, signal_time, comment, status, reject_reason, raw_body";

fn decimal_text(d: Option<Decimal>) -> Option<String> {
    d.map(|d| d.normalize().to_string())
}

fn signal_from_row(r: &Row) -> Signal {
    Signal {
        id: r.get(0),
        received_at: r.get(1),
        source: r.get(2),
        user_id: r.get(3),
        strategy_id: r.get(4),
        action: r.get(5),
        symbol: r.get(6),
        quantity: decimal_text(r.get(7)),
        client_id: r.get(8),
        price: decimal_text(r.get(9)),
        signal_time: r.get(10),
        comment: r.get(11),
        status: r.get(12),
        reject_reason: r.get(13),
        raw_body: r.get(14),
    }
}

const ORDER_COLUMNS: &str = "o.id, o.signal_id, o.user_id, o.api_key_id, o.order_link_id, o.exchange_order_id, \
     o.symbol, o.side, o.qty, o.reduce_only, o.status, o.error, o.avg_price, o.filled_qty, o.fee, \
     o.created_at, o.submitted_at, o.acknowledged_at, o.filled_at, \
     CASE WHEN o.side = 'buy' THEN o.avg_price - s.price ELSE s.price - o.avg_price END";

fn order_from_row(r: &Row) -> Order {
    Order {
        id: r.get(0),
        signal_id: r.get(1),
        user_id: r.get(2),
        api_key_id: r.get(3),
        order_link_id: r.get(4),
        exchange_order_id: r.get(5),
        symbol: r.get(6),
        side: r.get(7),
        qty: decimal_text(r.get(8)),
        reduce_only: r.get(9),
        status: r.get(10),
        error: r.get(11),
        avg_price: decimal_text(r.get(12)),
        filled_qty: r.get::<_, Decimal>(13).normalize().to_string(),
        fee: r.get::<_, Decimal>(14).normalize().to_string(),
        created_at: r.get(15),
        submitted_at: r.get(16),
        acknowledged_at: r.get(17),
        filled_at: r.get(18),
        slippage: decimal_text(r.get(19)),
        fills: Vec::new(),
    }
}

/// Attach every order's fills with one query.
async fn with_fills(client: &Object, mut orders: Vec<Order>) -> Result<Vec<Order>, AdminError> {
    if orders.is_empty() {
        return Ok(orders);
    }
    let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let rows = client
        .query(
            "SELECT order_id, exec_id, qty, price, fee, exec_time FROM fills \
             WHERE order_id = ANY($1) ORDER BY exec_time, exec_id",
            &[&ids],
        )
        .await?;
    let mut by_order: HashMap<Uuid, Vec<Fill>> = HashMap::new();
    for r in rows {
        by_order.entry(r.get(0)).or_default().push(Fill {
            exec_id: r.get(1),
            qty: r.get::<_, Decimal>(2).normalize().to_string(),
            price: r.get::<_, Decimal>(3).normalize().to_string(),
            fee: r.get::<_, Decimal>(4).normalize().to_string(),
            exec_time: r.get(5),
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
    async fn list_signals(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<i64>>,
        /// Only signals older than this signal id.
        before: Query<Option<Uuid>>,
    ) -> poem::Result<ListSignalsResponse> {
        respond(async {
            let limit = page_limit(limit.0)?;
            within_budget(async {
                let client = state.pool.get().await?;
                let rows = client
                    .query(
                        &format!(
                            "SELECT {SIGNAL_COLUMNS} FROM signals \
                         WHERE $1::uuid IS NULL OR (received_at, id) < \
                               (SELECT received_at, id FROM signals WHERE id = $1) \
                         ORDER BY received_at DESC, id DESC LIMIT $2"
                        ),
                        &[&before.0, &(limit + 1)],
                    )
                    .await?;
                let mut items: Vec<Signal> = rows.iter().map(signal_from_row).collect();
                let next_before = (items.len() as i64 > limit).then(|| {
                    items.truncate(limit as usize);
                    items.last().map(|s| s.id)
                });
                Ok(ListSignalsResponse::Ok(Json(SignalPage {
                    items,
                    next_before: next_before.flatten(),
                })))
            })
            .await
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
        respond(within_budget(async {
            let client = state.pool.get().await?;
            let row = client
                .query_opt(
                    &format!("SELECT {SIGNAL_COLUMNS} FROM signals WHERE id = $1"),
                    &[&id.0],
                )
                .await?
                .ok_or_else(|| AdminError::not_found("signal"))?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {ORDER_COLUMNS} FROM orders o JOIN signals s ON s.id = o.signal_id \
                         WHERE o.signal_id = $1 ORDER BY o.created_at, o.id"
                    ),
                    &[&id.0],
                )
                .await?;
            let orders = with_fills(&client, rows.iter().map(order_from_row).collect()).await?;
            Ok(GetSignalResponse::Ok(Json(SignalDetail {
                signal: signal_from_row(&row),
                orders,
            })))
        }))
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
                    .query(
                        &format!(
                            "SELECT {ORDER_COLUMNS} FROM orders o JOIN signals s ON s.id = o.signal_id \
                         WHERE ($1::text IS NULL OR o.status = $1) \
                           AND ($2::uuid IS NULL OR (o.created_at, o.id) < \
                                (SELECT created_at, id FROM orders WHERE id = $2)) \
                         ORDER BY o.created_at DESC, o.id DESC LIMIT $3"
                        ),
                        &[&status, &before.0, &(limit + 1)],
                    )
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
