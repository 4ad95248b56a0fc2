//! Rate limits per callsite ([`RateLimit`](crate::RateLimit)), checked on the calling thread
//! before the event is formatted.
//!
//! A callsite is its `Metadata`, which lives as long as the program: its address is the
//! key. The table is allocated when the sink starts and never grows; a callsite claims an
//! entry with one compare-and-swap the first time it logs, so the check takes no lock and
//! makes no allocation. An entry's state is one word (the interval's number and the events
//! let through in it), advanced by compare-and-swap; suppressed events go to a counter of
//! their own, which the first event of a later interval takes and reports. What is left
//! there when the sink flushes or shuts down, the writer takes ([`RateLimits::sweep`]), so
//! every suppressed event is reported exactly once.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tracing::Metadata;

/// Entries in the table: callsites beyond it are not limited.
const ENTRIES: usize = 4096;
/// Entries looked at from a callsite's home before giving up on a full neighbourhood.
const PROBES: usize = 16;

#[derive(Default)]
struct Entry {
    /// The callsite's `Metadata` address; 0 while the entry is free.
    key: AtomicUsize,
    /// The interval's number (high 32 bits, wrapping) and the events let through in it.
    state: AtomicU64,
    /// Events suppressed and not yet reported.
    suppressed: AtomicU64,
    /// The callsite's metadata, for the report (set once, after `key`).
    meta: std::sync::OnceLock<&'static Metadata<'static>>,
}

/// What the rate limit says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    /// Pass, and report first that this many events of the callsite were suppressed.
    PassAfter(u64),
    Suppress,
}

/// The rate-limit table of one sink.
pub(crate) struct RateLimits {
    entries: Box<[Entry]>,
    events: u32,
    interval: Duration,
    interval_nanos: u64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("events", &self.events)
            .field("interval", &self.interval)
            .finish()
    }
}

impl RateLimits {
    pub(crate) fn new(events: u32, interval: Duration) -> RateLimits {
        RateLimits {
            entries: (0..ENTRIES).map(|_| Entry::default()).collect(),
            events,
            interval,
            interval_nanos: u64::try_from(interval.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// This callsite's entry, claimed on its first event; `None` when the table is full
    /// around its home.
    #[inline]
    fn entry(&self, meta: &'static Metadata<'static>) -> Option<&Entry> {
        let key = meta as *const Metadata<'static> as usize;
        // Fibonacci hashing of the address (metadata are at least 8-byte aligned).
        let home = ((key >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize)) >> 20;
        for i in 0..PROBES {
            let e = &self.entries[(home + i) % ENTRIES];
            match e.key.load(Relaxed) {
                k if k == key => return Some(e),
                0 => match e.key.compare_exchange(0, key, Relaxed, Relaxed) {
                    Ok(_) => {
                        let _ = e.meta.set(meta);
                        return Some(e);
                    }
                    Err(k) if k == key => return Some(e),
                    Err(_) => {}
                },
                _ => {}
            }
        }
        None
    }

    /// Lets the event through or counts it as suppressed. `now`: the monotonic clock in
    /// nanoseconds (`clock::mono_now`).
    #[inline]
    pub(crate) fn check(&self, meta: &'static Metadata<'static>, now: u64) -> Verdict {
        let Some(e) = self.entry(meta) else {
            return Verdict::Pass;
        };
        let window = (now / self.interval_nanos) as u32;
        let mut cur = e.state.load(Relaxed);
        loop {
            let (w, n) = ((cur >> 32) as u32, cur as u32);
            let opens = w != window || cur == 0;
            let next = if opens {
                (u64::from(window) << 32) | 1
            } else if n < self.events {
                cur + 1
            } else {
                e.suppressed.fetch_add(1, Relaxed);
                return Verdict::Suppress;
            };
            match e.state.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) if opens && e.suppressed.load(Relaxed) > 0 => {
                    return match e.suppressed.swap(0, Relaxed) {
                        0 => Verdict::Pass,
                        n => Verdict::PassAfter(n),
                    };
                }
                Ok(_) => return Verdict::Pass,
                Err(c) => cur = c,
            }
        }
    }

    /// Takes every count of suppressed events not reported yet, with its callsite.
    pub(crate) fn sweep(&self, mut report: impl FnMut(&'static Metadata<'static>, u64)) {
        for e in self.entries.iter() {
            if e.key.load(Relaxed) == 0 || e.suppressed.load(Relaxed) == 0 {
                continue;
            }
            let n = e.suppressed.swap(0, Relaxed);
            match e.meta.get() {
                Some(meta) if n > 0 => report(meta, n),
                // Claimed a moment ago: its metadata is about to be set; give it back.
                _ => {
                    e.suppressed.fetch_add(n, Relaxed);
                }
            }
        }
    }
}

/// The message of the record reporting suppressed events of `meta`'s callsite.
pub(crate) fn message(meta: &Metadata<'_>) -> String {
    let place = match (meta.file(), meta.line()) {
        (Some(f), Some(l)) => format!(" at {f}:{l}"),
        _ => String::new(),
    };
    format!(
        "events suppressed by the rate limit: {} {}{place}",
        meta.target(),
        meta.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cs;
    impl tracing::callsite::Callsite for Cs {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            &META
        }
    }
    static CS: Cs = Cs;
    static META: Metadata<'static> = tracing::metadata!(
        name: "hot",
        target: "limit",
        level: tracing::Level::INFO,
        fields: &[],
        callsite: &CS,
        kind: tracing::metadata::Kind::EVENT
    );

    #[test]
    fn counts_add_up_across_intervals() {
        let limits = RateLimits::new(3, Duration::from_millis(10));
        let ms = 1_000_000;
        let mut passed = 0;
        let mut reported = 0;
        // 10 events in each of 5 intervals: 3 pass, 7 wait for the next interval's first.
        for interval in 1..=5u64 {
            for i in 0..10 {
                match limits.check(&META, interval * 10 * ms + i) {
                    Verdict::Pass => passed += 1,
                    Verdict::PassAfter(n) => {
                        passed += 1;
                        reported += n;
                    }
                    Verdict::Suppress => {}
                }
            }
        }
        assert_eq!(passed, 15);
        assert_eq!(
            reported, 28,
            "four spells reported by the next interval's first event"
        );
        limits.sweep(|_, n| reported += n);
        assert_eq!(passed + reported, 50);
    }
}
