//! The flush at process exit (`Builder::flush_on_exit`, on by default), and on a panic
//! (`Builder::flush_on_panic`): one handler of each per process, whatever the number of
//! sinks, each flushing the live sinks that opted in.
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
                let _ = q.flush(timeout, false);
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

static PANIC_SINKS: Mutex<Vec<(Weak<Queue>, Duration)>> = Mutex::new(Vec::new());
static PANIC_HOOK: Once = Once::new();
/// Panic hooks this crate has installed (at most one).
static PANIC_HOOKS_SET: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Registers `queue` to be flushed (and fsynced) from the panic hook. The hook is installed
/// once, chained to the one before it; building more sinks adds them to its list instead of
/// chaining another hook each time.
pub(crate) fn register_panic(queue: Weak<Queue>, timeout: Duration) {
    PANIC_HOOK.call_once(|| {
        PANIC_HOOKS_SET.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let sinks: Vec<_> = match PANIC_SINKS.lock() {
                Ok(s) => s
                    .iter()
                    .filter_map(|(q, t)| Some((q.upgrade()?, *t)))
                    .collect(),
                Err(_) => Vec::new(),
            };
            // To the operating system, not to the disk: a panic ends at most the process, and
            // what the kernel holds outlives it. So a panic the application catches (and
            // every panic runs this hook) costs a flush, not an fsync.
            for (q, timeout) in sinks {
                let _ = q.flush(timeout, false);
            }
            previous(info);
        }));
    });
    if let Ok(mut s) = PANIC_SINKS.lock() {
        s.retain(|(q, _)| q.strong_count() > 0);
        s.push((queue, timeout));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// The hook hands what was logged before a panic to the operating system and does not
    /// fsync: a caught panic costs a flush.
    #[test]
    fn a_caught_panic_flushes_without_an_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = crate::FileSink::builder(dir.path(), "app")
            .flush_on_panic(true)
            .build()
            .unwrap();
        use tracing_subscriber::prelude::*;
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        let fsyncs = guard.stats().fsyncs;
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!("before the panic");
            let caught = std::panic::catch_unwind(|| panic!("caught by the application"));
            assert!(caught.is_err());
        });
        // The hook's flush returned before the panic unwound: the line is in the file.
        let text = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
        assert!(text.contains("before the panic"), "{text:?}");
        assert_eq!(guard.stats().fsyncs, fsyncs, "the panic hook fsynced");
        guard.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn many_sinks_flushing_on_panic_share_one_hook() {
        let dirs: Vec<_> = (0..20).map(|_| tempfile::tempdir().unwrap()).collect();
        let sinks: Vec<_> = dirs
            .iter()
            .map(|d| {
                crate::FileSink::builder(d.path(), "app")
                    .flush_on_panic(true)
                    .build()
                    .unwrap()
            })
            .collect();
        assert_eq!(PANIC_HOOKS_SET.load(Ordering::Relaxed), 1);
        let live = PANIC_SINKS
            .lock()
            .unwrap()
            .iter()
            .filter(|(q, _)| q.strong_count() > 0)
            .count();
        assert!(live >= 20, "{live} sinks listed");
        for (_, guard) in &sinks {
            guard.shutdown(Duration::from_secs(5)).unwrap();
        }
    }
}
