//! Admin: a user's positions (per account and symbol, from the private `position` topic) and
//! realised PnL per user and per strategy (orders' closed_pnl and fees, per symbol and in total).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use humbex_shared::db::Statements;
use humbex_shared::store::{orders, positions, strategies, users};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use super::auth::AdminAuth;
use super::models::{Pnl, PnlLine, Position, PositionList};
use super::responses::{admin_response, respond};
use super::{AdminError, decimal_text, within_budget};
use crate::state::AppState;
use crate::tags::ApiTags;

admin_response! {
    pub enum ListPositionsResponse {
        200 Ok(Json<PositionList>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum UserPnlResponse {
        200 Ok(Json<Pnl>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

admin_response! {
    pub enum StrategyPnlResponse {
        200 Ok(Json<Pnl>),
        BadRequest, Unauthorized, NotFound, TooManyRequests, Unavailable,
    }
}

fn position_from_row(r: &Row) -> Position {
    Position {
        api_key_id: r.get("api_key_id"),
        symbol: r.get("symbol"),
        side: r.get("side"),
        size: r.get::<_, Decimal>("size").normalize().to_string(),
        avg_entry_price: decimal_text(r.get("avg_entry_price")),
        mark_price: decimal_text(r.get("mark_price")),
        unrealised_pnl: decimal_text(r.get("unrealised_pnl")),
        leverage: decimal_text(r.get("leverage")),
        take_profit: decimal_text(r.get("take_profit")),
        stop_loss: decimal_text(r.get("stop_loss")),
        trailing_stop: decimal_text(r.get("trailing_stop")),
        updated_at: r.get("updated_at"),
    }
}

/// The PnL rows of [`orders::PNL_OF_USER`] / [`orders::PNL_OF_STRATEGY`]: per symbol, then the
/// total (symbol NULL).
fn pnl_from_rows(rows: &[Row], from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Pnl {
    let line = |r: &Row, symbol: String| PnlLine {
        symbol,
        realised_pnl: r.get::<_, Decimal>("realised_pnl").normalize().to_string(),
        fees: r.get::<_, Decimal>("fees").normalize().to_string(),
        closed_trades: r.get("closed_trades"),
    };
    let mut symbols = Vec::new();
    let mut total = None;
    for r in rows {
        match r.get::<_, Option<String>>("symbol") {
            Some(symbol) => symbols.push(line(r, symbol)),
            None => total = Some(line(r, "*".into())),
        }
    }
    Pnl {
        from,
        to,
        symbols,
        total: total.unwrap_or(PnlLine {
            symbol: "*".into(),
            realised_pnl: "0".into(),
            fees: "0".into(),
            closed_trades: 0,
        }),
    }
}

fn check_range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<(), AdminError> {
    match (from, to) {
        // An empty range (from = to) is valid and sums nothing.
        (Some(from), Some(to)) if from > to => Err(AdminError::field("from", "must not be after to")),
        _ => Ok(()),
    }
}

/// A user's open positions, per account and symbol.
pub async fn user_positions(state: &AppState, id: Uuid) -> Result<PositionList, AdminError> {
    within_budget(async {
        let client = state.pool.get().await?;
        if client.row_opt(users::EXISTS, &[&id]).await?.is_none() {
            return Err(AdminError::not_found("user"));
        }
        let rows = client.rows(positions::OF_USER.as_str(), &[&id]).await?;
        Ok(PositionList {
            items: rows.iter().map(position_from_row).collect(),
        })
    })
    .await
}

/// A user's realised PnL for orders filled in [from, to) (see the `get_user_pnl` operation).
pub async fn user_pnl(
    state: &AppState,
    id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Pnl, AdminError> {
    pnl_of(state, Owner::User, id, from, to).await
}

/// A strategy's realised PnL for orders filled in [from, to) (see the `get_strategy_pnl`
/// operation).
pub async fn strategy_pnl(
    state: &AppState,
    id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Pnl, AdminError> {
    pnl_of(state, Owner::Strategy, id, from, to).await
}

/// Whose orders a PnL sums.
#[derive(Clone, Copy)]
enum Owner {
    User,
    Strategy,
}

async fn pnl_of(
    state: &AppState,
    owner: Owner,
    id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Pnl, AdminError> {
    let (exists, pnl, what) = match owner {
        Owner::User => (users::EXISTS, orders::PNL_OF_USER.as_str(), "user"),
        Owner::Strategy => (strategies::EXISTS, orders::PNL_OF_STRATEGY.as_str(), "strategy"),
    };
    check_range(from, to)?;
    within_budget(async {
        let client = state.pool.get().await?;
        if client.row_opt(exists, &[&id]).await?.is_none() {
            return Err(AdminError::not_found(what));
        }
        let rows = client.rows(pnl, &[&id, &from, &to]).await?;
        Ok(pnl_from_rows(&rows, from, to))
    })
    .await
}

pub struct PositionsApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl PositionsApi {
    /// A user's open positions, per account and symbol.
    #[oai(
        path = "/admin/users/:id/positions",
        method = "get",
        operation_id = "list_user_positions"
    )]
    async fn list_positions(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
    ) -> poem::Result<ListPositionsResponse> {
        respond(async {
            user_positions(&state, id.0)
                .await
                .map(|p| ListPositionsResponse::Ok(Json(p)))
        })
        .await
    }

    /// A user's realised PnL, fees and closed trades, per symbol and in total, for orders filled
    /// in [from, to).
    #[oai(path = "/admin/users/:id/pnl", method = "get", operation_id = "get_user_pnl")]
    async fn user_pnl(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
        /// From this time (RFC 3339), inclusive.
        from: Query<Option<DateTime<Utc>>>,
        /// Until this time (RFC 3339), exclusive.
        to: Query<Option<DateTime<Utc>>>,
    ) -> poem::Result<UserPnlResponse> {
        respond(async {
            user_pnl(&state, id.0, from.0, to.0)
                .await
                .map(|p| UserPnlResponse::Ok(Json(p)))
        })
        .await
    }

    /// A strategy's realised PnL over its subscribers' orders (exchange-created exits count for
    /// the signal that opened the position), per symbol and in total, for orders filled in
    /// [from, to).
    #[oai(
        path = "/admin/strategies/:id/pnl",
        method = "get",
        operation_id = "get_strategy_pnl"
    )]
    async fn strategy_pnl(
        &self,
        _auth: AdminAuth,
        state: Data<&Arc<AppState>>,
        id: Path<Uuid>,
        /// From this time (RFC 3339), inclusive.
        from: Query<Option<DateTime<Utc>>>,
        /// Until this time (RFC 3339), exclusive.
        to: Query<Option<DateTime<Utc>>>,
    ) -> poem::Result<StrategyPnlResponse> {
        respond(async {
            strategy_pnl(&state, id.0, from.0, to.0)
                .await
                .map(|p| StrategyPnlResponse::Ok(Json(p)))
        })
        .await
    }
}
