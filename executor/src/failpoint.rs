//! Named crash points for the fault-injection suite: with `HUMBEX_FAILPOINT=<name>` the process
//! aborts, like a `kill -9`, the first time it passes that point. Unset (always, in production),
//! a check is one comparison against `None`.

use std::sync::LazyLock;

static ARMED: LazyLock<Option<String>> = LazyLock::new(|| {
    std::env::var("HUMBEX_FAILPOINT")
        .ok()
        .filter(|name| !name.is_empty())
});

/// After a signal is claimed, before anything is planned or sent.
pub const AFTER_CLAIM: &str = "after_claim";
/// After the order row is committed, just before the POST to the exchange.
pub const BEFORE_POST: &str = "before_post";
/// After the exchange answered, before the answer is committed to the database.
pub const AFTER_ANSWER: &str = "after_answer";

/// Abort the process here if this failpoint is armed.
pub fn hit(name: &str) {
    if ARMED.as_deref() == Some(name) {
        eprintln!("failpoint {name}: aborting the process");
        std::process::abort();
    }
}
