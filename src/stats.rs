//! Counters shared by the callers, the writer thread and the maintenance thread, and the
//! public snapshot of them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::error::Error;
use crate::health::WriterState;

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
    /// Bytes of this sink's files on disk now: the active file and the finished segments
    /// (plain, compressed, or sealed and waiting for their fsync). The sink's own writes,
    /// rotations, compressions and deletions count at once; files changed by others
    /// (logrotate, an operator) are recounted by the next compression or retention pass
    /// (without either, at the next start).
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
    /// Events in memory now, not yet handed to the operating system: in the logging
    /// threads' open chunks, in the queue, and held by the writer (while the disk is full,
    /// everything it could not write). The sink's own records included. Each place is read
    /// on its own, so while events flow a chunk moving between two places can be counted
    /// twice or not at all; when nothing moves (a writer that cannot write, callers that
    /// stopped) the figure is exact.
    pub events_buffered: u64,
    /// The bytes of those events' records.
    pub bytes_buffered: u64,
    /// The writer's state now: healthy, failing (retrying writes the disk refuses), stalled
    /// (one system call outstanding past the stall timeout) or gone.
    pub state: WriterState,
    /// The last error of the sink's threads (write, fsync, rename, compression, retention),
    /// as its message; kept after the sink has recovered (compare
    /// [`last_error_at`](Self::last_error_at) with the time of the last write). Unlike
    /// [`flush`](crate::FileSinkGuard::flush), reading it does not clear it.
    pub last_error: Option<String>,
    /// When [`last_error`](Self::last_error) happened.
    pub last_error_at: Option<SystemTime>,
    /// Of [`events_dropped`](Stats::events_dropped), those per level. Left out, as they have
    /// no level: records from [`build_writer`](crate::Builder::build_writer)'s writer, and
    /// events the writer gives up when it stops (at shutdown on a full disk, after a panic),
    /// which [`Error::events_lost`](crate::Error::events_lost) counts.
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

/// One line for a log or a status page:
///
/// ```text
/// healthy: 1200 records written (150.2 KiB), 150.2 KiB on disk; buffered 0 events (0 B); 0 dropped (0 shed); 2 rotations, 1 compressed (0 waiting), 0 pruned; 0 write errors
/// ```
///
/// followed by `; last error at <RFC 3339 time>: <message>` when there was one.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} records written ({}), {} on disk; buffered {} events ({}); \
             {} dropped ({} shed); {} rotations, {} compressed ({} waiting), {} pruned; \
             {} write errors",
            self.state,
            self.records_written,
            Bytes(self.bytes_written),
            Bytes(self.bytes_on_disk),
            self.events_buffered,
            Bytes(self.bytes_buffered),
            self.events_dropped,
            self.events_shed,
            self.rotations,
            self.segments_compressed,
            self.compression_backlog,
            self.segments_pruned,
            self.write_errors,
        )?;
        if let Some(e) = &self.last_error {
            f.write_str("; last error")?;
            if let Some(t) = self.last_error_at {
                write!(f, " at {}", rfc3339(t))?;
            }
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

/// A byte count for people: `0 B`, `812 B`, `150.2 KiB`, `3.0 GiB`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut v = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while v >= 1024.0 && unit + 1 < UNITS.len() {
            v /= 1024.0;
            unit += 1;
        }
        write!(f, "{v:.1} {}", UNITS[unit])
    }
}

/// `2026-12-03T11:40:00.123Z`.
fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Every field under its name; `state` as `"healthy"`, `"failing"`, `"stalled"` or `"gone"`,
/// and `last_error_at` as an RFC 3339 time in UTC (or null).
#[cfg(feature = "serde")]
impl serde::Serialize for Stats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        macro_rules! fields {
            ($($name:ident),* $(,)?) => {{
                let mut st = serializer.serialize_struct("Stats", [$(stringify!($name)),*].len() + 2)?;
                $(st.serialize_field(stringify!($name), &self.$name)?;)*
                st
            }};
        }
        let mut st = fields!(
            records_written,
            internal_records,
            events_dropped,
            events_shed,
            blocked_nanos,
            bytes_written,
            write_errors,
            format_errors,
            queue_high_water,
            queue_bytes_high_water,
            fsyncs,
            rotations,
            segments_unsynced,
            segments_compressed,
            compression_failures,
            compression_backlog,
            segments_pruned,
            bytes_on_disk,
            recovery_actions,
            reopens,
            caller_wakeups,
            writer_wakeups,
            events_buffered,
            bytes_buffered,
            last_error,
            dropped_by_level,
            events_shed_below_level,
            events_rate_limited,
            backtrace_records,
            backtrace_bytes,
        );
        st.serialize_field("state", self.state.as_str())?;
        st.serialize_field("last_error_at", &self.last_error_at.map(rfc3339))?;
        st.end()
    }
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

/// `{"error": n, "warn": n, "info": n, "debug": n, "trace": n}`.
#[cfg(feature = "serde")]
impl serde::Serialize for LevelCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = serializer.serialize_struct("LevelCounts", 5)?;
        for (name, n) in self.by_name() {
            st.serialize_field(name, &n)?;
        }
        st.end()
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
    /// Bytes of finished and sealed segments on disk: recounted by each maintenance pass,
    /// raised by each rotation.
    pub(crate) segment_bytes: AtomicU64,
    /// Bytes of the active file.
    pub(crate) active_bytes: AtomicU64,
    pub(crate) recovery_actions: AtomicU64,
    pub(crate) reopens: AtomicU64,
    pub(crate) caller_wakeups: AtomicU64,
    pub(crate) writer_wakeups: AtomicU64,
    /// Records and bytes of full chunks in the channel (added before a chunk is sent,
    /// subtracted when the writer takes it).
    pub(crate) channel_records: AtomicU64,
    pub(crate) channel_bytes: AtomicU64,
    /// Records and bytes the writer holds (in hand and in its batch), as of its last step.
    pub(crate) writer_records: AtomicU64,
    pub(crate) writer_bytes: AtomicU64,
    /// Dropped and shed events per level ([`level_index`]).
    pub(crate) dropped_levels: [AtomicU64; 5],
    pub(crate) shed_below_level: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) backtrace_records: AtomicU64,
    pub(crate) backtrace_bytes: AtomicU64,
    pub(crate) last_error: Mutex<Option<Error>>,
    /// The last error reported, with its time: never taken, for `stats()`.
    last_seen: Mutex<Option<(Error, SystemTime)>>,
    stderr_gate: Mutex<Option<Instant>>,
}

/// What the logging threads' open chunks hold now, and the writer's state: the parts of a
/// snapshot the counters do not have.
pub(crate) struct Live {
    pub(crate) open_records: u64,
    pub(crate) open_bytes: u64,
    pub(crate) state: WriterState,
}

impl Counters {
    pub(crate) fn snapshot(&self, live: Live) -> Stats {
        let last = self
            .last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
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
            bytes_on_disk: self.segment_bytes.load(Relaxed) + self.active_bytes.load(Relaxed),
            recovery_actions: self.recovery_actions.load(Relaxed),
            reopens: self.reopens.load(Relaxed),
            caller_wakeups: self.caller_wakeups.load(Relaxed),
            writer_wakeups: self.writer_wakeups.load(Relaxed),
            events_buffered: live.open_records
                + self.channel_records.load(Relaxed)
                + self.writer_records.load(Relaxed),
            bytes_buffered: live.open_bytes
                + self.channel_bytes.load(Relaxed)
                + self.writer_bytes.load(Relaxed),
            state: live.state,
            last_error: last.as_ref().map(|(e, _)| e.to_string()),
            last_error_at: last.map(|(_, t)| t),
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

    /// Reports on stderr, at most once a minute; kept only for `stats()`, not for the next
    /// `flush()`.
    pub(crate) fn report(&self, err: &Error) {
        *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((err.clone(), SystemTime::now()));
        let mut gate = self.stderr_gate.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if gate.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
            *gate = Some(now);
            eprintln!("tracing-filesink: {err} (further errors are counted in stats(), reported at most once a minute)");
        }
    }

    /// A chunk of `records` records and `bytes` bytes enters the channel.
    pub(crate) fn in_channel(&self, records: u64, bytes: u64) {
        self.channel_records.fetch_add(records, Relaxed);
        self.channel_bytes.fetch_add(bytes, Relaxed);
    }

    /// A chunk leaves the channel (the writer took it, or it was never sent).
    pub(crate) fn out_of_channel(&self, records: u64, bytes: u64) {
        self.channel_records.fetch_sub(records, Relaxed);
        self.channel_bytes.fetch_sub(bytes, Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `Serialize` is written by hand (the crate's serde has no derive): it must list every
    /// field `Debug` lists, under the same name.
    #[cfg(feature = "serde")]
    #[test]
    fn serialize_has_every_field() {
        let stats = Stats {
            records_written: 7,
            state: WriterState::Failing,
            last_error: Some("write (app.log): No space left on device".into()),
            last_error_at: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1500)),
            ..Stats::default()
        };
        let json = serde_json::to_value(&stats).expect("serialize");
        let map = json.as_object().expect("an object");
        let debug = format!("{:?}", Stats::default());
        // The top-level fields: split on the commas outside nested structs
        // (`dropped_by_level: LevelCounts { .. }`).
        let body = debug.trim_start_matches("Stats {").trim_end_matches('}');
        let (mut names, mut depth, mut start) = (Vec::new(), 0, 0);
        for (i, c) in body.char_indices().chain([(body.len(), ',')]) {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    names.extend(body[start..i].split(':').next().map(str::trim));
                    start = i + 1;
                }
                _ => {}
            }
        }
        assert_eq!(map.len(), names.len(), "{map:?} vs {names:?}");
        for name in names {
            assert!(map.contains_key(name), "`{name}` is not serialized");
        }
        assert_eq!(json["records_written"], 7);
        assert_eq!(json["state"], "failing");
        assert_eq!(json["last_error_at"], "1970-01-01T00:00:01.500Z");
        assert_eq!(
            json["last_error"],
            "write (app.log): No space left on device"
        );
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
        let shown: Vec<String> = [0, 812, 1024, 153_804, 3 << 30]
            .into_iter()
            .map(|b| Bytes(b).to_string())
            .collect();
        assert_eq!(shown, ["0 B", "812 B", "1.0 KiB", "150.2 KiB", "3.0 GiB"]);
    }
}
