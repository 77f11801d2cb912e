//! The SQL of each table, one module per table (a statement touching several lives with the table
//! it writes). The rules several statements share live once: "may this user trade now" in SQL
//! (sql/V4), an order row's open statuses and ranks in [`crate::domain::order_status`].
//! `api_keys` statements live with the key vault, not here.

pub mod account_leases;
pub mod break_even;
pub mod console_sessions;
pub mod fills;
pub mod notifications;
pub mod orders;
pub mod overview;
pub mod positions;
pub mod signals;
pub mod strategies;
pub mod subscriptions;
pub mod users;

/// Every statement of the store modules, for the test that prepares each one against a freshly
/// migrated database.
pub fn all_statements() -> Vec<&'static str> {
    [
        users::all(),
        strategies::all(),
        subscriptions::all(),
        signals::all(),
        orders::all(),
        fills::all(),
        console_sessions::all(),
        overview::all(),
        signals::filtered_examples(),
        notifications::all(),
        positions::all(),
        break_even::all(),
        account_leases::all(),
    ]
    .concat()
}
