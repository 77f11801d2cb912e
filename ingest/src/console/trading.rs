//! The console's trading views: positions and realised PnL tables (from the admin positions
//! operations, `crate::admin::positions`) and one order's card with its v2 fields (origin, type,
//! protection, closed PnL), shared by the user, strategy and signal pages.

use maud::{Markup, html};

use super::layout::{millis_between, status, text_or_dash, time};
use crate::admin::models::{Order, Pnl, PositionList};

/// A user's open positions, per account and symbol.
pub fn positions_table(list: &PositionList) -> Markup {
    html! {
        @if list.items.is_empty() { p { "No open positions." } } @else {
            table {
                caption { "Open positions" }
                thead { tr {
                    th scope="col" { "symbol" } th scope="col" { "side" } th scope="col" { "size" }
                    th scope="col" { "entry" } th scope="col" { "mark" } th scope="col" { "unrealised PnL" }
                    th scope="col" { "leverage" } th scope="col" { "TP / SL / trailing" } th scope="col" { "updated" }
                } }
                tbody { @for p in &list.items { tr data-position=(p.symbol) {
                    td { (p.symbol) } td { (p.side) } td { (p.size) }
                    td { (text_or_dash(p.avg_entry_price.as_deref())) }
                    td { (text_or_dash(p.mark_price.as_deref())) }
                    td { (text_or_dash(p.unrealised_pnl.as_deref())) }
                    td { (text_or_dash(p.leverage.as_deref())) }
                    td {
                        (text_or_dash(p.take_profit.as_deref())) " / " (text_or_dash(p.stop_loss.as_deref()))
                        " / " (text_or_dash(p.trailing_stop.as_deref()))
                    }
                    td { (time(&p.updated_at)) }
                } } }
            }
        }
    }
}

/// Realised PnL per symbol and in total.
pub fn pnl_table(pnl: &Pnl) -> Markup {
    html! {
        table class="pnl" {
            caption { "Realised PnL (all time)" }
            thead { tr {
                th scope="col" { "symbol" } th scope="col" { "realised PnL" } th scope="col" { "fees" } th scope="col" { "closed trades" }
            } }
            tbody { @for l in &pnl.symbols { tr {
                td { (l.symbol) } td { (l.realised_pnl) } td { (l.fees) } td { (l.closed_trades) }
            } } }
            tfoot { tr data-pnl-total=(pnl.total.realised_pnl) {
                th scope="row" { "total" } td { (pnl.total.realised_pnl) } td { (pnl.total.fees) } td { (pnl.total.closed_trades) }
            } }
        }
    }
}

/// One order with its timings, its v2 fields and its fills.
pub fn order_card(o: &Order) -> Markup {
    let name = o
        .order_link_id
        .clone()
        .or_else(|| o.exchange_order_id.clone())
        .unwrap_or_else(|| o.id.to_string());
    html! {
        section class="order" aria-label={ "Order " (name) } data-origin=(o.origin) {
            h3 {
                (status(&o.status)) " " (o.origin) ": " (o.side) " " (text_or_dash(o.qty.as_deref())) " " (o.symbol)
                " — " a href={ "/console/users/" (o.user_id) } { "user" }
            }
            dl class="facts" {
                dt { "orderLinkId" } dd { (text_or_dash(o.order_link_id.as_deref())) }
                dt { "exchange order id" } dd { (text_or_dash(o.exchange_order_id.as_deref())) }
                dt { "type" } dd {
                    (o.order_type)
                    @if let Some(p) = &o.limit_price { " at " (p) }
                    @if let Some(t) = &o.time_in_force { ", " (t) }
                    @if o.reduce_only { ", reduce-only" }
                    @if o.leg != "single" { ", leg " (o.leg) }
                }
                dt { "trigger price" } dd { (text_or_dash(o.trigger_price.as_deref())) }
                dt { "leverage" } dd { (text_or_dash(o.leverage.as_deref())) }
                dt { "TP / SL / trailing" } dd {
                    (text_or_dash(o.take_profit.as_deref())) " / " (text_or_dash(o.stop_loss.as_deref()))
                    " / " (text_or_dash(o.trailing_stop.as_deref()))
                }
                dt { "created" } dd { (time(&o.created_at)) }
                dt { "→ submitted" } dd { (millis_between(&o.created_at, o.submitted_at.as_ref())) }
                dt { "→ acknowledged" } dd { (millis_between(&o.created_at, o.acknowledged_at.as_ref())) }
                dt { "→ filled" } dd { (millis_between(&o.created_at, o.filled_at.as_ref())) }
                dt { "filled" } dd { (o.filled_qty) " at " (text_or_dash(o.avg_price.as_deref())) ", fee " (o.fee) }
                dt { "slippage" } dd { (text_or_dash(o.slippage.as_deref())) }
                dt { "closed PnL" } dd { (text_or_dash(o.closed_pnl.as_deref())) }
                dt { "unprotected for" } dd {
                    @match o.unprotected_ms { Some(ms) => { (ms) " ms" }, None => { "—" } }
                }
                dt { "exchange's answer" } dd {
                    (text_or_dash(o.error.as_deref()))
                    @if let Some(c) = &o.error_code { " (" code { (c) } ")" }
                }
            }
            @if !o.fills.is_empty() {
                table {
                    caption { "Fills" }
                    thead { tr { th scope="col" { "exec id" } th scope="col" { "qty" } th scope="col" { "price" } th scope="col" { "fee" } th scope="col" { "time" } } }
                    tbody { @for f in &o.fills { tr { td { code { (f.exec_id) } } td { (f.qty) } td { (f.price) } td { (f.fee) } td { (time(&f.exec_time)) } } } }
                }
            }
        }
    }
}

/// A signal's orders: those HUMBEX placed for it, then those the exchange created on the position
/// it opened (take profit, stop loss, trailing stop, liquidation, ...), which the API links to it.
pub fn signal_orders(orders: &[Order]) -> Markup {
    let (placed, followed): (Vec<&Order>, Vec<&Order>) = orders.iter().partition(|o| o.origin == "signal");
    html! {
        section aria-labelledby="orders-placed" {
            h2 id="orders-placed" { "Orders" }
            @if placed.is_empty() { p { "No orders (yet)." } }
            @for o in placed { (order_card(o)) }
        }
        section aria-labelledby="orders-followed" {
            h2 id="orders-followed" { "Orders the exchange created afterwards" }
            @if followed.is_empty() { p { "None (yet): take-profit, stop-loss, trailing-stop and liquidation orders on the position this signal opened are listed here." } }
            @for o in followed { (order_card(o)) }
        }
    }
}
