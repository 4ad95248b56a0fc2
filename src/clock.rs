//! The time source: the system clock, or a manual clock that tests move by hand.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
