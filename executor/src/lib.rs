//! HUMBEX executor (in progress): wakes on NOTIFY or a sweep, claims signals under a lease, and plans
//! one order per target account. Submission to Bybit and fill confirmation arrive with the Bybit
//! client; until then nothing here runs inside `humbex up`.

pub mod claim;
pub mod confirm;
pub mod plan;
pub mod wakeup;
