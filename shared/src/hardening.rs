//! Process hardening at start-up: no core dumps (a dump would hold decrypted exchange keys,
//! docs/security.md#secrets-in-memory-and-core-dumps) and panics reported as one tracing event
//! instead of raw text on stderr.

use std::panic::PanicHookInfo;

/// Set RLIMIT_CORE to 0 (soft and hard), so neither this process nor its children can dump core.
pub fn disable_core_dumps() -> std::io::Result<()> {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit only reads the initialised struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The current (soft, hard) core-dump size limit (`rlim_t` is `u64` on the Linux targets we build for).
pub fn core_dump_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) } == 0 {
        Ok((limit.rlim_cur, limit.rlim_max))
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Report panics through tracing (so they reach the same, filtered, log as everything else, in
/// the chosen format) instead of the default hook's free text on stderr. The message is kept: it is
/// written by our code, and every secret type prints as `[REDACTED]` (the leak tests check both).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info: &PanicHookInfo<'_>| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = panic_message(info.payload());
        let thread = std::thread::current();
        tracing::error!(
            panic.location = %location,
            panic.thread = thread.name().unwrap_or("unnamed"),
            panic.message = %message,
            "a thread panicked"
        );
    }));
}

/// The text of a panic payload (`panic!` with a literal or a format string), or a placeholder.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(a non-text panic payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_dumps_are_off_after_the_call() {
        disable_core_dumps().unwrap();
        assert_eq!(core_dump_limit().unwrap(), (0, 0));
    }

    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(literal.as_ref()), "plain");
        let formatted = std::panic::catch_unwind(|| panic!("n = {}", 7)).unwrap_err();
        assert_eq!(panic_message(formatted.as_ref()), "n = 7");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(other.as_ref()), "(a non-text panic payload)");
    }
}
