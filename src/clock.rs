//! The time source: the system clock, or a manual clock that tests move by hand; and the
//! stamp that orders the file.
//!
//! A record's stamp is read once, under its thread's slot lock, from the monotonic clock: the
//! writer orders the file by it (see `writer/order.rs`), and the time printed in the record
//! is derived from the same reading, so the times in a file rise with its order. The system
//! clock enters as an offset checked every 100 ms of logging.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the sink reads the wall clock. An enum rather than a trait object so the common
/// case costs one predictable branch on the logging path.
#[derive(Clone, Default)]
#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
pub(crate) enum Clock {
    #[default]
    System,
    Manual(ManualClock),
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Clock::System => f.write_str("System"),
            Clock::Manual(m) => write!(f, "Manual({:?})", m.now()),
        }
    }
}

impl Clock {
    #[inline]
    pub(crate) fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Manual(m) => m.now(),
        }
    }

    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }

    /// A stamp strictly after `after` (the previous stamp of the same slot, so that a slot's
    /// records never tie). The manual clock gives the printed time; the order always comes
    /// from the monotonic clock.
    #[inline]
    pub(crate) fn stamp(&self, after: u64) -> Stamp {
        let key = mono_now().max(after.saturating_add(1));
        let wall = match self {
            Clock::System => ANCHOR.wall(key),
            Clock::Manual(m) => m.now(),
        };
        Stamp { key, wall }
    }
}

/// Where a record stands in time, read once under its thread's slot lock: `key` orders the
/// file, `wall` is printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    /// Nanoseconds of the monotonic clock since the process's first reading.
    pub(crate) key: u64,
    pub(crate) wall: SystemTime,
}

/// The monotonic clock in nanoseconds since the process's first reading. It never goes back
/// and every thread reads the same clock, so a reading that happens-before another is never
/// larger: the property the file's order rests on.
#[inline]
pub(crate) fn mono_now() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(Instant::now().saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX)
}

/// The system clock as an offset from the monotonic one: a printed time is derived from the
/// record's own monotonic reading, so the times in a file rise with its order. Checked
/// against the system clock at most every [`RECHECK_NANOS`] of logging; a step of the system
/// clock (NTP, an operator) is taken over at the next check.
struct Anchor {
    /// Unix time in nanoseconds minus the monotonic reading.
    offset: AtomicI64,
    /// `mono_now() + 1` at the last check; 0 before the first.
    checked: AtomicU64,
}

static ANCHOR: Anchor = Anchor {
    offset: AtomicI64::new(0),
    checked: AtomicU64::new(0),
};

const RECHECK_NANOS: u64 = 100_000_000;
/// Differences smaller than this are the two readings' own jitter, not a step: ignoring them
/// keeps the printed times of a file from going back by a few nanoseconds at a check.
const STEP_NANOS: i64 = 1_000;

impl Anchor {
    #[inline]
    fn wall(&self, key: u64) -> SystemTime {
        let checked = self.checked.load(Ordering::Relaxed);
        if checked == 0 || key.saturating_sub(checked - 1) >= RECHECK_NANOS {
            self.check();
        }
        let key = i64::try_from(key).unwrap_or(i64::MAX);
        from_unix_nanos(self.offset.load(Ordering::Relaxed).saturating_add(key))
    }

    #[cold]
    fn check(&self) {
        // The system clock between two monotonic readings close together; a reading taken
        // across a preemption says nothing precise, so it is tried again.
        let mut best: Option<(u64, i64)> = None;
        for _ in 0..4 {
            let a = mono_now();
            let w = unix_nanos(SystemTime::now());
            let b = mono_now();
            let spread = b - a;
            let offset = i64::try_from(w - i128::from(a + spread / 2)).unwrap_or(i64::MAX);
            if best.is_none_or(|(s, _)| spread < s) {
                best = Some((spread, offset));
            }
            if spread < 2_000 {
                break;
            }
        }
        let Some((_, offset)) = best else { return };
        let first = self.checked.load(Ordering::Relaxed) == 0;
        let old = self.offset.load(Ordering::Relaxed);
        if first || (offset - old).abs() >= STEP_NANOS {
            self.offset.store(offset, Ordering::Relaxed);
        }
        self.checked.store(mono_now() + 1, Ordering::Relaxed);
    }
}

fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// In 64 bits (good until 2262): this runs for every record.
fn from_unix_nanos(n: i64) -> SystemTime {
    let abs = n.unsigned_abs();
    let d = Duration::new(abs / 1_000_000_000, (abs % 1_000_000_000) as u32);
    if n >= 0 {
        UNIX_EPOCH.checked_add(d).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

/// A wall clock that only moves when told to: the seam for testing time rotation without
/// sleeping. Clones share one time.
///
/// Only available with the `test-util` feature.
#[derive(Clone)]
#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
pub struct ManualClock {
    nanos: Arc<AtomicI64>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: SystemTime) -> ManualClock {
        let c = ManualClock {
            nanos: Arc::new(AtomicI64::new(0)),
        };
        c.set(start);
        c
    }

    /// The current reading.
    pub fn now(&self) -> SystemTime {
        let n = self.nanos.load(Ordering::SeqCst);
        if n >= 0 {
            UNIX_EPOCH + Duration::from_nanos(n as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos(n.unsigned_abs())
        }
    }

    /// Sets the reading; it may move backwards.
    pub fn set(&self, t: SystemTime) {
        let n = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i64,
            Err(e) => -(e.duration().as_nanos() as i64),
        };
        self.nanos.store(n, Ordering::SeqCst);
    }

    /// Moves the reading forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.nanos.fetch_add(d.as_nanos() as i64, Ordering::SeqCst);
    }

    /// Moves the reading backward by `d`.
    pub fn rewind(&self, d: Duration) {
        self.nanos.fetch_sub(d.as_nanos() as i64, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_rise_strictly_and_print_the_system_time() {
        let clock = Clock::System;
        let mut last = 0;
        for _ in 0..10_000 {
            let s = clock.stamp(last);
            assert!(s.key > last);
            last = s.key;
        }
        // A stamp asked to follow one from the future follows it.
        assert_eq!(clock.stamp(last + 1_000_000_000).key, last + 1_000_000_001);
        let before = SystemTime::now();
        let wall = clock.stamp(0).wall;
        let after = SystemTime::now();
        let slack = Duration::from_millis(5);
        assert!(
            wall + slack >= before && wall <= after + slack,
            "{wall:?} not within {before:?}..{after:?}"
        );
    }

    #[test]
    fn printed_times_rise_with_the_stamps_across_threads() {
        let stamps: Vec<Vec<Stamp>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut last = 0;
                        (0..20_000)
                            .map(|_| {
                                let st = Clock::System.stamp(last);
                                last = st.key;
                                st
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<Stamp> = stamps.into_iter().flatten().collect();
        all.sort_by_key(|s| s.key);
        // Within one offset (no step of the system clock during the test), the printed
        // time is the stamp plus a constant: sorted by stamp, sorted by time.
        let back = all.windows(2).filter(|w| w[1].wall < w[0].wall).count();
        assert!(back <= 1, "printed times went back {back} times");
    }

    #[test]
    fn unix_nanos_round_trip() {
        // Multiples of 100 ns: Windows keeps system times in 100 ns units.
        for n in [
            0i64,
            100,
            -100,
            1_999_999_900,
            -1_000_000_100,
            1_780_000_000_123_456_700,
        ] {
            assert_eq!(unix_nanos(from_unix_nanos(n)), i128::from(n));
        }
    }
}
