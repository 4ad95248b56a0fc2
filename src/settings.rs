//! The types settings are made of: small policies with constructors, below everything that
//! uses them (the builder, the configuration file, the queue, the writer, compression), so
//! that imports run one way.
//!
//! Rotation, retention and time zones have their own files (`rotate.rs`, `retain.rs`,
//! `format/timestamp.rs`), each with the pure logic that goes with the type.

use std::time::Duration;

use tracing::Level;

/// What a caller does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Wait for room (the default): back-pressure from a writer that is making progress, never
    /// waiting on a dead disk. No event is lost while the writer can write. When the writer is
    /// failing (a full disk, an I/O error, a file it cannot open), stalled (one system call
    /// outstanding longer than [`stall_timeout`](crate::Builder::stall_timeout)) or gone, a
    /// caller that finds the queue full waits at most one slice of 100 ms, once per outage
    /// (not once per event): after that slice every caller finding no room drops its event
    /// at once ("sheds" it) until the writer writes again. Shed events are counted in
    /// [`Stats::events_shed`](crate::Stats::events_shed) and reported by one record in the
    /// log when writing resumes.
    #[default]
    Block,
    /// Never wait: drop the event, count it, and report the count in the log.
    Drop,
    /// Wait at most this long for room, then drop, count and report. In front of a writer
    /// that cannot write, sheds like [`Block`](Overflow::Block).
    BlockFor(Duration),
}

/// When the writer fsyncs the active file. Finalization (rotation) always fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fsync {
    /// Leave it to the kernel (the default); `guard.sync()` fsyncs on demand.
    #[default]
    Never,
    /// At most this long after a write.
    Every(Duration),
    /// After every batch holding a record at this level or more severe (`Level::ERROR` syncs
    /// batches with errors).
    OnLevel(Level),
    /// After every batch.
    Always,
}

impl Fsync {
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            // No API names: a configuration file's user reads this too.
            Fsync::Every(d) if d.is_zero() => {
                Err("the interval between fsyncs must be greater than zero".into())
            }
            _ => Ok(()),
        }
    }
}

/// `gzip`'s default level.
const DEFAULT_LEVEL: u32 = 6;
/// The level of an unpinned [`Compression::gzip()`] while more than one segment waits. On
/// the bench's JSON lines with zlib-rs: about 2.1 GB/s against level 6's 0.4 GB/s on one
/// core, for a file 1.8 times as large (23:1 against 42:1).
const CATCH_UP_LEVEL: u32 = 1;

/// Compression of finished segments. Also reads from one line (`"none"`, `"gzip"`,
/// `"gzip 9"`) through `FromStr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compression {
    gzip: bool,
    level: Option<u32>,
}

impl Compression {
    /// No compression (the default).
    pub const fn none() -> Compression {
        Compression {
            gzip: false,
            level: None,
        }
    }
    /// Gzip at level 6 (`gzip`'s default) while compression keeps up. When more than one
    /// finished segment is waiting (the application logs faster than level 6 compresses on
    /// the CPU it leaves idle), segments are compressed at level 1 until it has caught up, so
    /// plain segments do not pile up on a busy machine. [`level`](Compression::level) pins
    /// one level instead.
    pub const fn gzip() -> Compression {
        Compression {
            gzip: true,
            level: None,
        }
    }
    /// The gzip level, 0 (store) to 9 (smallest), used for every segment however far behind
    /// compression is; `build()` rejects anything else, and a level on
    /// [`Compression::none()`] (it never turns gzip on).
    #[must_use]
    pub const fn level(self, level: u32) -> Compression {
        Compression {
            gzip: self.gzip,
            level: Some(level),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.level {
            Some(l) if !self.gzip => Err(format!(
                "a level ({l}) was set on Compression::none(); use Compression::gzip().level({l})"
            )),
            Some(l) if l > 9 => Err(format!("gzip level {l} is not within 0..=9")),
            _ => Ok(()),
        }
    }

    /// The level for the next segment when `waiting` finished segments (this one included)
    /// are due: the pinned level, else 6, or 1 while compression is behind.
    pub(crate) fn level_for(&self, waiting: usize) -> u32 {
        match self.level {
            Some(l) => l,
            None if waiting > 1 => CATCH_UP_LEVEL,
            None => DEFAULT_LEVEL,
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.gzip
    }
}

/// Level-aware shedding: once the queue is fuller than a fraction of its capacity, events
/// less severe than a level are dropped at once, before they are formatted, while events at
/// or above it keep the [`Overflow`] policy's behaviour. Off by default; as Logback's
/// `AsyncAppender` when on (`Shedding::below(Level::WARN)`: INFO, DEBUG and TRACE are shed
/// above 80% full, WARN and ERROR keep the queue's remaining fifth).
///
/// An event the policy may shed never waits for room either, whatever the `Overflow`
/// policy: a caller is never blocked on a DEBUG. Shed events are counted per level in
/// [`Stats::dropped_by_level`](crate::Stats::dropped_by_level) and
/// [`Stats::events_shed_below_level`](crate::Stats::events_shed_below_level), and reported
/// with the other dropped events by the in-band "events dropped" record, which gives the
/// counts per level. Also reads from one line (`"off"`, `"below warn"`, `"below info at 90%"`)
/// through `FromStr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shedding {
    below: Option<Level>,
    percent: u8,
}

impl Shedding {
    /// No level-aware shedding (the default): every event follows the `Overflow` policy.
    pub const fn off() -> Shedding {
        Shedding {
            below: None,
            percent: 80,
        }
    }

    /// Sheds events less severe than `level` once the queue is more than 80% full.
    pub const fn below(level: Level) -> Shedding {
        Shedding {
            below: Some(level),
            percent: 80,
        }
    }

    /// Sheds once the queue is more than `percent` full (1 to 99; `build()` checks it).
    #[must_use]
    pub const fn when_fuller_than(self, percent: u8) -> Shedding {
        Shedding {
            below: self.below,
            percent,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.below {
            Some(Level::TRACE) => Err("Shedding::below(Level::TRACE) sheds nothing: every \
                 event is at TRACE or above; use Shedding::below(Level::DEBUG) to shed TRACE"
                .into()),
            Some(_) if !(1..=99).contains(&self.percent) => Err(format!(
                "the queue fill of {}% is not within 1..=99",
                self.percent
            )),
            _ => Ok(()),
        }
    }

    /// The level events must be at (or above) to be kept, and the fill in percent, when on.
    pub(crate) fn threshold(&self) -> Option<(Level, u8)> {
        self.below.map(|l| (l, self.percent))
    }
}

/// A rate limit per callsite: at most a number of events per interval from each `event!`
/// (each `info!`, `debug!`, … in the source), checked on the calling thread without a lock
/// or an allocation. The events over the limit are counted; the first event of the callsite
/// after such a spell is preceded by a record of the sink's own naming the callsite, the
/// number suppressed and the interval (`"suppressed"` and `"interval_ms"` fields), and what
/// is still uncounted when the sink flushes or shuts down is reported then. Off by default.
/// Also reads from one line (`"off"`, `"100 per 1 s"`) through `FromStr`.
///
/// Every level is limited alike. The sink keeps the state of 4,096 callsites; the events of
/// any further callsite pass unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    events: u32,
    per: Duration,
}

impl RateLimit {
    /// No rate limit (the default).
    pub const fn off() -> RateLimit {
        RateLimit {
            events: 0,
            per: Duration::ZERO,
        }
    }

    /// At most `events` events per `interval` from each callsite (`build()` checks that
    /// both are non-zero).
    pub const fn per_callsite(events: u32, interval: Duration) -> RateLimit {
        RateLimit {
            events,
            per: interval,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match (self.events, self.per.is_zero()) {
            (0, true) => Ok(()),
            (0, false) => Err("a rate limit of 0 events suppresses everything; use \
                 RateLimit::off() for no limit"
                .into()),
            (_, true) => Err("a rate limit needs a non-zero interval".into()),
            _ if self.per > Duration::from_secs(86_400) => {
                Err("a rate limit's interval is at most a day".into())
            }
            _ => Ok(()),
        }
    }

    /// The events allowed per interval and the interval, when on.
    pub(crate) fn limit(&self) -> Option<(u32, Duration)> {
        (self.events > 0).then_some((self.events, self.per))
    }
}

/// A backtrace on error: each thread keeps its last few records that the sink's filter
/// rejected, formatted as they happen (on the calling thread, as every record), and writes
/// them just before its next ERROR, in order and marked (`"backtrace":true` in JSON,
/// `backtrace=true` at the end of a text or logfmt line). A thread that logs no ERROR writes
/// nothing more. Off by default. Also reads from one line (`"off"`, `"last 32"`,
/// `"last 32 from trace"`) through `FromStr`.
///
/// The sink sees the events its filter rejects only through
/// [`FileSinkLayer::backtrace_filter`](crate::FileSinkLayer::backtrace_filter), which wraps
/// the sink's per-layer filter. The records keep the time they were logged at, so their
/// printed times are earlier than the records before them in the file. Memory: at most
/// `records` records of up to 16 KiB per thread that logged to the sink (a longer record is
/// not kept), counted in [`Stats::backtrace_bytes`](crate::Stats::backtrace_bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backtrace {
    records: usize,
    from: Option<Level>,
}

impl Backtrace {
    /// No backtrace (the default).
    pub const fn off() -> Backtrace {
        Backtrace {
            records: 0,
            from: None,
        }
    }

    /// Keeps the last `records` rejected records of each thread (1 to 1,024; `build()` checks
    /// it) at DEBUG or above.
    pub const fn last(records: usize) -> Backtrace {
        Backtrace {
            records,
            from: Some(Level::DEBUG),
        }
    }

    /// Keeps records at `level` or above (`Level::TRACE`: every rejected record, at the cost
    /// of formatting every TRACE event).
    #[must_use]
    pub const fn at_or_above(self, level: Level) -> Backtrace {
        Backtrace {
            records: self.records,
            from: Some(level),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.from.is_some() && !(1..=1024).contains(&self.records) {
            return Err(format!(
                "a backtrace of {} records is not within 1..=1024",
                self.records
            ));
        }
        Ok(())
    }

    /// The records kept per thread and the lowest level kept, when on.
    pub(crate) fn keep(&self) -> Option<(usize, Level)> {
        self.from
            .filter(|_| self.records > 0)
            .map(|l| (self.records, l))
    }
}
