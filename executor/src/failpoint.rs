//! Named crash points for the fault-injection suite: with `HUMBEX_FAILPOINT=<name>` the process
//! aborts, like a `kill -9`, the first time it passes that point. Unset (always, in production),
//! a check is one comparison against `None`. `HUMBEX_FAILPOINT=panic:<name>` panics there once
//! instead, for the leak test's induced panic (the signal task dies, its lease expires, and the
//! signal is retried).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

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

static PANICKED: AtomicBool = AtomicBool::new(false);

/// Abort the process here if this failpoint is armed (or panic, once, if armed as `panic:<name>`).
pub fn hit(name: &str) {
    let Some(armed) = ARMED.as_deref() else {
        return;
    };
    if armed == name {
        eprintln!("failpoint {name}: aborting the process");
        std::process::abort();
    }
    if armed.strip_prefix("panic:") == Some(name) && !PANICKED.swap(true, Ordering::SeqCst) {
        panic!("failpoint {name}: induced panic");
    }
}
