//! The opt-in flush at `std::process::exit` (`Builder::flush_on_exit`).
//!
//! `process::exit` runs the C library's `atexit` handlers but no Rust destructors, so a guard
//! living in `main` is never dropped and whatever is queued would be lost. One handler is
//! registered per process; it flushes and fsyncs every live sink that opted in, waiting at most
//! each sink's shutdown timeout. It cannot help with `abort()` (including `panic = "abort"`),
//! `_exit`, or a fatal signal: nothing runs then.

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
                let _ = crate::guard::flush_queue(&q, timeout, true);
            }
        }
    });
}

/// Registers `queue` to be flushed when the process exits through `exit`.
pub(crate) fn register(queue: Weak<Queue>, timeout: Duration) {
    REGISTER.call_once(|| {
        // SAFETY: `atexit` only stores the function pointer; `flush_all` is an `extern "C"`
        // function with no arguments that never unwinds, as `atexit` requires.
        #[allow(unsafe_code)]
        unsafe {
            libc::atexit(flush_all);
        }
    });
    if let Ok(mut s) = SINKS.lock() {
        s.retain(|(q, _)| q.strong_count() > 0);
        s.push((queue, timeout));
    }
}
