//! Counters shared by the callers, the writer thread and the maintenance thread, and the
//! public snapshot of them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Error;

/// A snapshot of a sink's counters, from [`FileSinkGuard::stats`](crate::FileSinkGuard::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records handed to the operating system, the sink's own records (drop and recovery
    /// reports) included.
    pub records_written: u64,
    /// Of those, the sink's own records.
    pub internal_records: u64,
    /// Events dropped by the overflow policy or shed in front of a writer that could not
    /// write, or because the sink was shut down: every event that is not in the log.
    pub events_dropped: u64,
    /// Of those, events shed: dropped at once because the writer was failing, stalled or gone
    /// when the queue was full (see [`Overflow::Block`](crate::Overflow::Block)).
    pub events_shed: u64,
    /// Time logging calls spent waiting for room in the queue, all threads together, in
    /// nanoseconds.
    pub blocked_nanos: u64,
    /// Bytes handed to the operating system.
    pub bytes_written: u64,
    /// Failed write, fsync, rename or open calls of the writer thread.
    pub write_errors: u64,
    /// Events whose formatting failed or panicked (a record saying so was written instead).
    pub format_errors: u64,
    /// The most events the writer found waiting at once: the full chunks in the queue when
    /// it began a pass or came back from writing a batch, plus the threads' open chunks it
    /// collected.
    pub queue_high_water: u64,
    /// The same in bytes of records.
    pub queue_bytes_high_water: u64,
    /// `fsync` calls made on log files and the directory (counted once each has returned).
    pub fsyncs: u64,
    /// Finished segments created by rotation.
    pub rotations: u64,
    /// Segments whose fsync failed, kept under their unsynced name
    /// (`<segment>.log.unsynced`) instead of a final one.
    pub segments_unsynced: u64,
    /// Segments compressed.
    pub segments_compressed: u64,
    /// Compression attempts that failed (the plain segment was kept), also those that failed
    /// during shutdown; a compression abandoned at shutdown is not a failure.
    pub compression_failures: u64,
    /// Finished segments waiting to be compressed.
    pub compression_backlog: u64,
    /// Finished segments deleted by retention.
    pub segments_pruned: u64,
    /// Bytes of this sink's files on disk (active file and finished segments), as of the
    /// last maintenance pass.
    pub bytes_on_disk: u64,
    /// Repairs made at startup (temp files removed, torn tails trimmed, segments adopted).
    pub recovery_actions: u64,
    /// Times the active file was reopened (on request or because it was moved away).
    pub reopens: u64,
    /// Times a logging call had to wake the writer thread (a futex call on the caller's
    /// path). Callers logging every few milliseconds or faster almost never do (the writer
    /// lingers for them); in a quiet service (events more than 5 ms apart) the first event
    /// after each pause does.
    pub caller_wakeups: u64,
    /// Times the writer thread woke up: woken by a caller, a control call or a deadline, or
    /// at the end of a short wait between events that come every few milliseconds. A busy
    /// writer goes from one pass to the next without sleeping; an idle one does not wake.
    pub writer_wakeups: u64,
    /// Of [`events_dropped`](Stats::events_dropped), those per level (records from
    /// [`build_writer`](crate::Builder::build_writer)'s writer have no level and are left out).
    pub dropped_by_level: LevelCounts,
    /// Of [`events_dropped`](Stats::events_dropped), those shed by level-aware shedding
    /// ([`Shedding`](crate::Shedding)).
    pub events_shed_below_level: u64,
    /// Events suppressed by the rate limit ([`RateLimit`](crate::RateLimit)): not in the
    /// log, and not counted in `events_dropped`; reported in the log by their own records.
    pub events_rate_limited: u64,
    /// Records written from a thread's backtrace before its ERROR ([`Backtrace`](crate::Backtrace)).
    pub backtrace_records: u64,
    /// Bytes the threads' backtraces hold now (their buffers' capacity).
    pub backtrace_bytes: u64,
}

/// A count per level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelCounts {
    /// At `ERROR`.
    pub error: u64,
    /// At `WARN`.
    pub warn: u64,
    /// At `INFO`.
    pub info: u64,
    /// At `DEBUG`.
    pub debug: u64,
    /// At `TRACE`.
    pub trace: u64,
}

impl LevelCounts {
    /// The counts with their level names (`"error"`, …, `"trace"`), most severe first.
    pub fn by_name(&self) -> [(&'static str, u64); 5] {
        [
            ("error", self.error),
            ("warn", self.warn),
            ("info", self.info),
            ("debug", self.debug),
            ("trace", self.trace),
        ]
    }

    fn from_array(a: [u64; 5]) -> LevelCounts {
        LevelCounts {
            error: a[0],
            warn: a[1],
            info: a[2],
            debug: a[3],
            trace: a[4],
        }
    }
}

/// A level's place in the per-level counters: ERROR 0 to TRACE 4.
#[inline]
pub(crate) fn level_index(level: tracing::Level) -> usize {
    match level {
        tracing::Level::ERROR => 0,
        tracing::Level::WARN => 1,
        tracing::Level::INFO => 2,
        tracing::Level::DEBUG => 3,
        _ => 4,
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records_written: AtomicU64,
    pub(crate) internal_records: AtomicU64,
    /// Dropped events, not counting shed ones.
    pub(crate) events_dropped: AtomicU64,
    pub(crate) events_shed: AtomicU64,
    pub(crate) blocked_nanos: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) format_errors: AtomicU64,
    pub(crate) queue_high_water: AtomicU64,
    pub(crate) queue_bytes_high_water: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) rotations: AtomicU64,
    pub(crate) segments_unsynced: AtomicU64,
    pub(crate) segments_compressed: AtomicU64,
    pub(crate) compression_failures: AtomicU64,
    pub(crate) compression_backlog: AtomicU64,
    pub(crate) segments_pruned: AtomicU64,
    pub(crate) bytes_on_disk: AtomicU64,
    pub(crate) recovery_actions: AtomicU64,
    pub(crate) reopens: AtomicU64,
    pub(crate) caller_wakeups: AtomicU64,
    pub(crate) writer_wakeups: AtomicU64,
    /// Dropped and shed events per level ([`level_index`]).
    pub(crate) dropped_levels: [AtomicU64; 5],
    pub(crate) shed_below_level: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) backtrace_records: AtomicU64,
    pub(crate) backtrace_bytes: AtomicU64,
    pub(crate) last_error: Mutex<Option<Error>>,
    stderr_gate: Mutex<Option<Instant>>,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            records_written: self.records_written.load(Relaxed),
            internal_records: self.internal_records.load(Relaxed),
            events_dropped: self.events_dropped.load(Relaxed) + self.events_shed.load(Relaxed),
            events_shed: self.events_shed.load(Relaxed),
            blocked_nanos: self.blocked_nanos.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            format_errors: self.format_errors.load(Relaxed),
            queue_high_water: self.queue_high_water.load(Relaxed),
            queue_bytes_high_water: self.queue_bytes_high_water.load(Relaxed),
            fsyncs: self.fsyncs.load(Relaxed),
            rotations: self.rotations.load(Relaxed),
            segments_unsynced: self.segments_unsynced.load(Relaxed),
            segments_compressed: self.segments_compressed.load(Relaxed),
            compression_failures: self.compression_failures.load(Relaxed),
            compression_backlog: self.compression_backlog.load(Relaxed),
            segments_pruned: self.segments_pruned.load(Relaxed),
            bytes_on_disk: self.bytes_on_disk.load(Relaxed),
            recovery_actions: self.recovery_actions.load(Relaxed),
            reopens: self.reopens.load(Relaxed),
            caller_wakeups: self.caller_wakeups.load(Relaxed),
            writer_wakeups: self.writer_wakeups.load(Relaxed),
            dropped_by_level: LevelCounts::from_array(self.dropped_levels()),
            events_shed_below_level: self.shed_below_level.load(Relaxed),
            events_rate_limited: self.rate_limited.load(Relaxed),
            backtrace_records: self.backtrace_records.load(Relaxed),
            backtrace_bytes: self.backtrace_bytes.load(Relaxed),
        }
    }

    pub(crate) fn dropped_levels(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.dropped_levels[i].load(Relaxed))
    }

    /// Raises a high-water mark. A plain load first: the writer calls this every loop, and
    /// an unconditional read-modify-write would take the cache line every time.
    pub(crate) fn raise(counter: &AtomicU64, value: u64) {
        if value > counter.load(Relaxed) {
            counter.fetch_max(value, Relaxed);
        }
    }

    /// Records an error of a background thread (the caller counts it): kept for the next
    /// `flush()`/`sync()`/`shutdown()`, and reported on stderr at most once a minute.
    pub(crate) fn error(&self, err: Error) {
        self.report(&err);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
    }

    /// Reports on stderr, at most once a minute, without keeping the error.
    pub(crate) fn report(&self, err: &Error) {
        let mut gate = self.stderr_gate.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if gate.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
            *gate = Some(now);
            eprintln!("tracing-filesink: {err} (further errors are counted in stats(), reported at most once a minute)");
        }
    }

    /// A record of the sink's own written outside the writer's batches.
    pub(crate) fn count_internal_record(&self) {
        self.records_written.fetch_add(1, Relaxed);
        self.internal_records.fetch_add(1, Relaxed);
    }

    pub(crate) fn take_error(&self) -> Option<Error> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub(crate) fn peek_error(&self) -> Option<Error> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
