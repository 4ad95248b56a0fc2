//! The flush at process exit (`Builder::flush_on_exit`, on by default).
//!
//! `process::exit` runs the C library's `atexit` handlers but no Rust destructors, so a guard
//! living in `main` or in a `static` is never dropped and whatever is queued would be lost;
//! returning from `main` ends the same way once `main`'s locals are gone. One handler is
//! registered per process; it flushes and fsyncs every live sink that opted in, waiting at most
//! each sink's shutdown timeout. It cannot help with `abort()` (including `panic = "abort"`),
//! `_exit`, or a fatal signal: nothing runs then. Nor at `process::exit` on Windows, which ends
//! every other thread, the writer included, and runs no handler; returning from `main` is
//! covered there.

use std::sync::{Mutex, Once, Weak};
use std::time::Duration;

use crate::queue::Queue;

static SINKS: Mutex<Vec<(Weak<Queue>, Duration)>> = Mutex::new(Vec::new());
static REGISTER: Once = Once::new();

extern "C" fn flush_all() {
    // Never unwind into C.
    let _ = std::panic::catch_unwind(|| {
        let sinks = match SINKS.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(_) => return,
        };
        for (queue, timeout) in sinks {
            if let Some(q) = queue.upgrade() {
                let _ = q.flush(timeout, true);
            }
        }
    });
}

/// Registers `queue` to be flushed when the process exits through `exit`.
pub(crate) fn register(queue: Weak<Queue>, timeout: Duration) {
    REGISTER.call_once(|| {
        // On Windows it runs when `main` returns, not at `process::exit` (`crate::sys`).
        let _ = crate::sys::at_exit(flush_all);
    });
    if let Ok(mut s) = SINKS.lock() {
        s.retain(|(q, _)| q.strong_count() > 0);
        s.push((queue, timeout));
    }
}
