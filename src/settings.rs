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
