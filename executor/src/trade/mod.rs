//! The trading language v2 in the executor, as pure decisions with no I/O: instrument rules, sizing
//! by quantity type, the target-position planner, TP/SL prices, break-even, staleness, leverage and
//! the reasons an order is skipped (docs/trading-v2-executor.md). The pipeline feeds them what it read.

pub mod break_even;
pub mod leverage;
pub mod protection;
pub mod rules;
pub mod sizing;
pub mod skip;
pub mod stale;
pub mod target;

#[cfg(test)]
pub(crate) fn d(text: &str) -> rust_decimal::Decimal {
    text.parse().expect("a decimal literal")
}
