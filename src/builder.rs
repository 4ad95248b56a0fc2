//! `FileSink::builder(dir, stem)` → settings → `build()`: validation, startup recovery,
//! and the threads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::format::options::Settings;
use crate::format::timestamp::Timestamper;
use crate::format::{Format, Formatter, SinkId, TimeFormat, TimeZone};
use crate::fs::{Fs, RealFs};
use crate::guard::FileSinkGuard;
use crate::layer::FileSinkLayer;
use crate::make_writer::FileSinkWriter;
use crate::retain::Retention;
use crate::rotate::Rotation;
use crate::settings::Compression;
use crate::settings::Fsync;
use crate::settings::Overflow;
use crate::settings::{Backtrace, RateLimit, Shedding};

/// The most events a queue may hold: its slots are allocated when the sink starts.
const MAX_QUEUE_CAPACITY: usize = 1 << 22;

/// The entry point: `FileSink::builder(dir, stem)`.
#[derive(Debug)]
pub struct FileSink(());

impl FileSink {
    /// Starts configuring a sink writing `dir/<stem>.log`. See [`Builder`] for the settings
    /// and their defaults.
    pub fn builder(dir: impl AsRef<Path>, stem: impl Into<String>) -> Builder {
        Builder {
            dir: dir.as_ref().to_path_buf(),
            stem: stem.into(),
            format: Format::Json,
            overflow: Overflow::Block,
            queue_capacity: 64 * 1024,
            queue_bytes: 64 << 20,
            time_zone: TimeZone::Utc,
            time_format: TimeFormat::rfc3339_micros(),
            file_mode: 0o600,
            dir_mode: None,
            shutdown_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(2),
            fsync_stall_timeout: Duration::from_secs(30),
            rotation: Rotation::never(),
            rotate_on_startup: false,
            compression: Compression::none(),
            compress_after: 0,
            retention: Retention::keep_all(),
            fsync: Fsync::Never,
            flush_on_panic: false,
            flush_on_exit: true,
            clock: Clock::System,
            fs: Arc::new(RealFs),
            options: Settings::default(),
            file_extension: crate::segment::name::DEFAULT_EXT.to_string(),
            shedding: Shedding::off(),
            rate_limit: RateLimit::off(),
            backtrace: Backtrace::off(),
        }
    }
}

/// Settings of a sink. Every setter consumes and returns the builder; nothing is checked
/// until [`build`](Builder::build).
///
/// | setting | default |
/// |---|---|
/// | [`format`](Builder::format) | [`Format::Json`] |
/// | [`overflow`](Builder::overflow) | [`Overflow::Block`] (lossless) |
/// | [`queue_capacity`](Builder::queue_capacity) | 65,536 events |
/// | [`queue_bytes`](Builder::queue_bytes) | 64 MiB |
/// | [`time_zone`](Builder::time_zone) | [`TimeZone::Utc`] |
/// | [`time_format`](Builder::time_format) | RFC 3339, microseconds |
/// | [`file_mode`](Builder::file_mode) | `0o600` |
/// | [`dir_mode`](Builder::dir_mode) | `0o700`, plus read and search for whoever `file_mode` lets read (only when the sink creates the directory) |
/// | [`shutdown_timeout`](Builder::shutdown_timeout) | 5 s |
/// | [`stall_timeout`](Builder::stall_timeout) | 2 s |
/// | [`fsync_stall_timeout`](Builder::fsync_stall_timeout) | 30 s |
/// | [`rotation`](Builder::rotation) | [`Rotation::never()`] |
/// | [`rotate_on_startup`](Builder::rotate_on_startup) | `false` |
/// | [`compression`](Builder::compression) | [`Compression::none()`] |
/// | [`compress_after`](Builder::compress_after) | 0 (compress every finished segment) |
/// | [`retention`](Builder::retention) | [`Retention::keep_all()`] |
/// | [`fsync`](Builder::fsync) | [`Fsync::Never`] (finalization always fsyncs) |
/// | [`flush_on_panic`](Builder::flush_on_panic) | `false` |
/// | [`flush_on_exit`](Builder::flush_on_exit) | `true` |
/// | [`file_extension`](Builder::file_extension) | `log` |
/// | [`shedding`](Builder::shedding) | [`Shedding::off()`] |
/// | [`rate_limit`](Builder::rate_limit) | [`RateLimit::off()`] |
/// | [`backtrace`](Builder::backtrace) | [`Backtrace::off()`] |
///
/// What a record carries, under `tracing_subscriber::fmt`'s names (`fmt::layer().json()
/// .flatten_event(true)` becomes `FileSink::builder(..).flatten_event(true)`), with fmt's
/// defaults; output with any combination is what fmt writes with the same options:
///
/// | setting | default | formats |
/// |---|---|---|
/// | [`without_time`](Builder::without_time) | (timestamps written) | all |
/// | [`flatten_event`](Builder::flatten_event) | `false` | JSON |
/// | [`with_current_span`](Builder::with_current_span) | `true` | JSON |
/// | [`with_span_list`](Builder::with_span_list) | `true` | JSON |
/// | [`with_target`](Builder::with_target) | `true` | all |
/// | [`with_level`](Builder::with_level) | `true` | all |
/// | [`with_file`](Builder::with_file) | `false` | all |
/// | [`with_line_number`](Builder::with_line_number) | `false` | all |
/// | [`with_thread_names`](Builder::with_thread_names) | `false` | all |
/// | [`with_thread_ids`](Builder::with_thread_ids) | `false` | all |
/// | [`rename_key`](Builder::rename_key) | fmt's key names | JSON, logfmt |
/// | [`static_field`](Builder::static_field) | none | all |
/// | [`with_opentelemetry_ids`](Builder::with_opentelemetry_ids) (feature `opentelemetry`) | `false` | all |
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build()` is called"]
pub struct Builder {
    dir: PathBuf,
    stem: String,
    format: Format,
    overflow: Overflow,
    queue_capacity: usize,
    queue_bytes: usize,
    time_zone: TimeZone,
    time_format: TimeFormat,
    file_mode: u32,
    /// `None`: derived from `file_mode` (`dir_mode_for`).
    dir_mode: Option<u32>,
    shutdown_timeout: Duration,
    stall_timeout: Duration,
    fsync_stall_timeout: Duration,
    rotation: Rotation,
    rotate_on_startup: bool,
    compression: Compression,
    compress_after: usize,
    retention: Retention,
    fsync: Fsync,
    flush_on_panic: bool,
    flush_on_exit: bool,
    clock: Clock,
    fs: Arc<dyn Fs>,
    options: Settings,
    file_extension: String,
    shedding: Shedding,
    rate_limit: RateLimit,
    backtrace: Backtrace,
}

impl Builder {
    /// The record format. Default: [`Format::Json`].
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Leaves the timestamp out of records (fmt's `without_time`), for a collector that
    /// stamps lines itself (journald, a container runtime). Readers find no time in them:
    /// `filesink cat --since` selects nothing. Default: timestamps are written.
    pub fn without_time(mut self) -> Self {
        self.options.timestamp = false;
        self
    }

    /// Writes the event's fields at the top level of the JSON object instead of under
    /// `fields` (fmt's `Json::flatten_event`). JSON only. Default: `false`.
    pub fn flatten_event(mut self, yes: bool) -> Self {
        self.options.flatten_event = yes;
        self
    }

    /// Writes the event's span (its explicit parent, else the current span) under `span`
    /// (fmt's `Json::with_current_span`). JSON only. Default: `true`.
    pub fn with_current_span(mut self, yes: bool) -> Self {
        self.options.current_span = yes;
        self
    }

    /// Writes the current span's scope, root first, under `spans` (fmt's
    /// `Json::with_span_list`). JSON only. Default: `true`.
    pub fn with_span_list(mut self, yes: bool) -> Self {
        self.options.span_list = yes;
        self
    }

    /// Writes the event's target (fmt's `with_target`). Default: `true`.
    pub fn with_target(mut self, yes: bool) -> Self {
        self.options.target = yes;
        self
    }

    /// Writes the event's level (fmt's `with_level`). Default: `true`.
    pub fn with_level(mut self, yes: bool) -> Self {
        self.options.level = yes;
        self
    }

    /// Writes the source file of the event's callsite (`filename` in JSON; fmt's
    /// `with_file`). Default: `false`.
    pub fn with_file(mut self, yes: bool) -> Self {
        self.options.file = yes;
        self
    }

    /// Writes the line of the event's callsite (`line_number` in JSON; fmt's
    /// `with_line_number`). Default: `false`.
    pub fn with_line_number(mut self, yes: bool) -> Self {
        self.options.line_number = yes;
        self
    }

    /// Writes the logging thread's name (`threadName` in JSON; its id when it has no name and
    /// [`with_thread_ids`](Builder::with_thread_ids) is off; fmt's `with_thread_names`).
    /// Default: `false`.
    pub fn with_thread_names(mut self, yes: bool) -> Self {
        self.options.thread_names = yes;
        self
    }

    /// Writes the logging thread's id (`threadId` in JSON, `ThreadId(7)`; fmt's
    /// `with_thread_ids`). Default: `false`.
    pub fn with_thread_ids(mut self, yes: bool) -> Self {
        self.options.thread_ids = yes;
        self
    }

    /// Writes the top-level key `key` (one of `timestamp`, `level`, `message`, `target`,
    /// `fields`, `span`, `spans`) as `name` instead, in the JSON and logfmt formats; repeat
    /// it for each key. `message` is the event's message field, under `fields` unless
    /// [`flatten_event`](Builder::flatten_event) is on. Elastic Common Schema:
    /// `.flatten_event(true).rename_key("timestamp", "@timestamp").rename_key("level",
    /// "log.level")`; Google Cloud Logging: `.flatten_event(true).rename_key("timestamp",
    /// "time").rename_key("level", "severity")`. `build()` rejects an unknown key, an empty
    /// name, and two top-level keys with one name. Default: fmt's names.
    pub fn rename_key(mut self, key: impl Into<String>, name: impl Into<String>) -> Self {
        self.options.renames.push((key.into(), name.into()));
        self
    }

    /// Writes `key` with the string `value` on every record (service, host, version), after
    /// everything else; repeat it for each field. `build()` rejects an empty or duplicate
    /// key and a key that every record already has. Default: none.
    pub fn static_field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.static_fields.push((key.into(), value.into()));
        self
    }

    /// Writes the OpenTelemetry `trace_id` and `span_id` (lowercase hex, the OpenTelemetry
    /// log data model's names) of the event's span, as a `tracing-opentelemetry` layer in the
    /// same subscriber assigned them; records outside a span, or in one without
    /// OpenTelemetry data, have neither. Needs the `opentelemetry` feature (`build()` says so
    /// without it). Default: `false`.
    pub fn with_opentelemetry_ids(mut self, yes: bool) -> Self {
        self.options.otel_ids = yes;
        self
    }

    /// The extension of every file name: `file_extension("jsonl")` writes `<stem>.jsonl` and
    /// segments `<stem>.<seq>.<start>.jsonl` (`.jsonl.gz` compressed), the JSON Lines
    /// convention. Readers need it too: [`LogDir::with_extension`](crate::read::LogDir::with_extension),
    /// `filesink cat --extension jsonl`. ASCII letters, digits, `_` and `-`; not `gz`,
    /// `pending`, `unsynced`, `lock` or `tmp`. Default: `log`.
    pub fn file_extension(mut self, ext: impl Into<String>) -> Self {
        self.file_extension = ext.into();
        self
    }

    /// What a caller does when the queue is full. Default: [`Overflow::Block`].
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Level-aware shedding: above a queue fill, events less severe than a level are dropped
    /// at once and never wait. Default: [`Shedding::off()`].
    pub fn shedding(mut self, shedding: Shedding) -> Self {
        self.shedding = shedding;
        self
    }

    /// At most N events per interval from each callsite, the rest counted and reported.
    /// Default: [`RateLimit::off()`].
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Each thread's last records below the sink's filter, written before its next ERROR
    /// (with [`FileSinkLayer::backtrace_filter`]). Default: [`Backtrace::off()`].
    pub fn backtrace(mut self, backtrace: Backtrace) -> Self {
        self.backtrace = backtrace;
        self
    }

    /// Most events waiting in the queue, at most 4,194,304. Default: 65,536.
    ///
    /// Events travel in chunks: each logging thread fills its own chunk (up to 64 KiB, or
    /// `queue_bytes / 8` if less) and hands it to the writer whole. The channel holds
    /// `min(queue_capacity, queue_bytes / (2 × chunk size))` full chunks (512 by default,
    /// allocated up front), each of at most `queue_capacity / that` events (128 by default),
    /// so full chunks hold at most `queue_capacity` events; each thread's open chunk holds at
    /// most as many again.
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events;
        self
    }

    /// Most bytes of formatted events waiting in the queue (a single larger event is still
    /// accepted into an empty queue). Default: 64 MiB. Half of it bounds full chunks of
    /// typical size through the channel's capacity (no shared counter on the logging path),
    /// the other half bounds chunks holding large records. Each logging thread's open chunk
    /// adds at most one chunk (64 KiB by default) plus one record. The writer holds at most
    /// `max(queue_bytes, 256 KiB)` again while it cannot write. Chunk buffers are reused, not
    /// freed: after a burst that filled the channel, about half of `queue_bytes` stays
    /// allocated for the next one. After an outage (a full disk), once the backlog is written,
    /// the writer's buffer and the free chunks are given back.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Time zone of timestamps, segment names and time-rotation boundaries. Default: UTC.
    pub fn time_zone(mut self, tz: TimeZone) -> Self {
        self.time_zone = tz;
        self
    }

    /// Timestamp format in records. Default: RFC 3339 with microseconds.
    pub fn time_format(mut self, format: TimeFormat) -> Self {
        self.time_format = format;
        self
    }

    /// Permission bits of every file the sink creates, applied exactly whatever the umask.
    /// A file that exists already (logrotate's `create 0640 app logreaders`) keeps its mode
    /// and group. Default: `0o600`. Ignored on Windows, which has no modes (files inherit the
    /// directory's ACL).
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }

    /// Permission bits of the log directory when the sink creates it (an existing
    /// directory's mode and group are left alone). Default: derived from
    /// [`file_mode`](Builder::file_mode), so that whoever may read the files may also list
    /// the directory: `0o700`, plus read and search for the group if the file mode lets the
    /// group read, and the same for others (`0o600` → `0o700`, `0o640` → `0o750`, `0o644` →
    /// `0o755`). Ignored on Windows.
    pub fn dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = Some(mode);
        self
    }

    /// How long dropping the guard waits for the queue to drain. Default: 5 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long one system call of the writer (a write, an fsync, an open) may be outstanding
    /// before the writer counts as stalled (a hung network file system, a paused FUSE
    /// daemon): from then on [`Overflow::Block`] callers finding the queue full shed their
    /// events instead of waiting, and `flush`/`sync` return an error instead of waiting for
    /// the shutdown timeout. Default: 2 s. An fsync has its own threshold,
    /// [`fsync_stall_timeout`](Self::fsync_stall_timeout).
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// How long one fsync (of the writer, or of the thread that finishes rotated segments)
    /// may be outstanding before the sink counts as stalled, as
    /// [`stall_timeout`](Self::stall_timeout) does for every other call. An fsync writes out
    /// everything the kernel holds for the file and on slow or busy storage takes seconds
    /// while the disk is working, so with [`Fsync::Always`] or frequent `sync()` calls a
    /// threshold as short as a write's would make `Block` callers shed events while the disk
    /// is alive. Default: 30 s.
    pub fn fsync_stall_timeout(mut self, timeout: Duration) -> Self {
        self.fsync_stall_timeout = timeout;
        self
    }

    /// When the active file becomes a finished segment. Default: never.
    pub fn rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// Finish a non-empty active file left by a previous run before writing. Default: `false`
    /// (append to it).
    pub fn rotate_on_startup(mut self, yes: bool) -> Self {
        self.rotate_on_startup = yes;
        self
    }

    /// Compression of finished segments, on a background thread. Default: none.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Keep the newest `n` finished segments uncompressed, for log shippers still reading
    /// them (logrotate's `delaycompress` is `1`). Default: 0.
    pub fn compress_after(mut self, n: usize) -> Self {
        self.compress_after = n;
        self
    }

    /// Which finished segments to delete. Default: keep all.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// When to fsync the active file. Default: [`Fsync::Never`]; rotation always fsyncs.
    pub fn fsync(mut self, fsync: Fsync) -> Self {
        self.fsync = fsync;
        self
    }

    /// Install a panic hook (chained to the previous one; one for every sink of the process)
    /// that flushes what was logged before the panic to the operating system, waiting at
    /// most the shutdown timeout. It does not fsync: a panic ends at most the process, and
    /// the hook runs for every panic, caught ones too. Default: `false`.
    pub fn flush_on_panic(mut self, yes: bool) -> Self {
        self.flush_on_panic = yes;
        self
    }

    /// Flush and fsync what was logged when the process ends through `std::process::exit` or
    /// by returning from `main` (neither drops a guard kept in a `static`, and a guard dropped
    /// while a layer still logs leaves the sink running), from an `atexit` handler, waiting at
    /// most the shutdown timeout. Nothing can flush on `abort()` (also `panic = "abort"`),
    /// `_exit` or a fatal signal. Default: `true`; `flush_on_exit(false)` leaves whatever is
    /// still queued at exit unwritten.
    /// On Windows it covers returning from `main` but not `process::exit`, which ends the
    /// writer thread without running exit handlers: call `shutdown()` before `exit` there.
    pub fn flush_on_exit(mut self, yes: bool) -> Self {
        self.flush_on_exit = yes;
        self
    }

    /// Reads the wall clock from `clock` instead of the system: the seam for testing time
    /// rotation without sleeping.
    #[cfg(feature = "test-util")]
    pub fn clock(mut self, clock: crate::clock::ManualClock) -> Self {
        self.clock = Clock::Manual(clock);
        self
    }

    /// Routes every file operation through `fs` (fault injection in this crate's tests, the
    /// benchmarks' slow disk).
    pub(crate) fn with_fs(mut self, fs: Arc<dyn Fs>) -> Self {
        self.fs = fs;
        self
    }

    pub(crate) fn validate(self) -> Result<Config, Error> {
        let stem = self.stem;
        if stem.is_empty() {
            return Err(Error::config("stem", "the file stem is empty"));
        }
        if stem.contains('/') || stem.contains('\\') || stem.contains('\0') {
            return Err(Error::config(
                "stem",
                format!("the file stem {stem:?} contains a path separator or NUL"),
            ));
        }
        if stem == "." || stem == ".." || stem.starts_with('.') {
            return Err(Error::config(
                "stem",
                format!("the file stem {stem:?} must not start with a dot"),
            ));
        }
        let ext = self.file_extension;
        if ext.is_empty()
            || !ext
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::config(
                "file_extension",
                format!("{ext:?} must be ASCII letters, digits, `_` or `-`, without the dot"),
            ));
        }
        if ["gz", "pending", "unsynced", "lock", "tmp"].contains(&ext.as_str()) {
            return Err(Error::config(
                "file_extension",
                format!("{ext:?} is a suffix the sink gives its own files"),
            ));
        }
        let dot_ext = format!(".{ext}");
        if stem.ends_with(&dot_ext) {
            return Err(Error::config(
                "stem",
                format!(
                    "the file stem {stem:?} ends in `{dot_ext}`, which the sink adds itself \
                     (the active file would be {stem}{dot_ext}): use {:?}",
                    stem.trim_end_matches(&dot_ext)
                ),
            ));
        }
        if self.dir.as_os_str().is_empty() {
            return Err(Error::config("dir", "the directory path is empty"));
        }
        if self.queue_capacity == 0 {
            return Err(Error::config("queue_capacity", "must be at least 1 event"));
        }
        if self.queue_capacity > MAX_QUEUE_CAPACITY {
            // The channel allocates its slots up front.
            return Err(Error::config(
                "queue_capacity",
                format!(
                    "{} events is more than the {MAX_QUEUE_CAPACITY} allowed",
                    self.queue_capacity
                ),
            ));
        }
        if self.queue_bytes == 0 {
            return Err(Error::config("queue_bytes", "must be at least 1 byte"));
        }
        if self.file_mode & !0o777 != 0 || self.file_mode & 0o600 != 0o600 {
            return Err(Error::config(
                "file_mode",
                format!(
                    "{:#o} must be permission bits that let the owner read and write{}",
                    self.file_mode,
                    decimal_mode_hint(self.file_mode)
                ),
            ));
        }
        let dir_mode = self
            .dir_mode
            .unwrap_or_else(|| dir_mode_for(self.file_mode));
        if dir_mode & !0o777 != 0 || dir_mode & 0o700 != 0o700 {
            return Err(Error::config(
                "dir_mode",
                format!(
                    "{dir_mode:#o} must let the owner read, write and search{}",
                    decimal_mode_hint(dir_mode)
                ),
            ));
        }
        self.time_zone
            .validate()
            .map_err(|m| Error::config("time_zone", m))?;
        self.time_format
            .validate()
            .map_err(|m| Error::config("time_format", m))?;
        self.rotation
            .validate()
            .map_err(|m| Error::config("rotation", m))?;
        self.compression
            .validate()
            .map_err(|m| Error::config("compression", m))?;
        self.retention
            .validate(self.rotation.size)
            .map_err(|m| Error::config("retention", m))?;
        self.fsync
            .validate()
            .map_err(|m| Error::config("fsync", m))?;
        self.shedding
            .validate()
            .map_err(|m| Error::config("shedding", m))?;
        self.rate_limit
            .validate()
            .map_err(|m| Error::config("rate_limit", m))?;
        self.backtrace
            .validate()
            .map_err(|m| Error::config("backtrace", m))?;
        if self.options.otel_ids && !cfg!(feature = "opentelemetry") {
            return Err(Error::config(
                "with_opentelemetry_ids",
                "needs the crate's `opentelemetry` feature",
            ));
        }
        let options = self
            .options
            .check(self.format)
            .map_err(|(setting, m)| Error::config(setting, m))?;
        let stem = crate::segment::name::Stem::new(stem, ext);
        let active_path = self.dir.join(crate::segment::name::active(&stem));
        Ok(Config {
            formatter: Formatter {
                format: self.format,
                timestamper: Timestamper::new(self.time_zone, &self.time_format),
                clock: self.clock,
                sink: SinkId::next(),
                options: Arc::new(options),
            },
            dir: self.dir,
            active_path,
            stem,
            file_mode: self.file_mode,
            dir_mode,
            overflow: self.overflow,
            queue_capacity: self.queue_capacity,
            queue_bytes: self.queue_bytes,
            shutdown_timeout: self.shutdown_timeout,
            stall_timeout: self.stall_timeout,
            fsync_stall_timeout: self.fsync_stall_timeout,
            rotation: self.rotation,
            rotate_on_startup: self.rotate_on_startup,
            compression: self.compression,
            compress_after: self.compress_after,
            retention: self.retention,
            fsync: self.fsync,
            flush_on_panic: self.flush_on_panic,
            flush_on_exit: self.flush_on_exit,
            time_zone: self.time_zone,
            fs: self.fs,
            shedding: self.shedding,
            rate_limit: self.rate_limit,
            backtrace: self.backtrace,
        })
    }

    /// How `build()`'s errors name this sink, so that a service with several can tell which
    /// one failed: its stem and directory.
    fn sink_name(&self) -> String {
        format!("sink {:?} in {}", self.stem, self.dir.display())
    }

    /// Validates the settings, takes the directory's lock for this stem, recovers what a
    /// previous run left, opens the active file and starts the writer thread (and the
    /// maintenance thread when compression or retention is on).
    ///
    /// # Errors
    /// Each names the sink (`sink "app" in /var/log/app: ...`) and is one of:
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming the setting,
    /// [`ErrorKind::Locked`](crate::ErrorKind::Locked) when another sink writes this file,
    /// [`ErrorKind::Symlink`](crate::ErrorKind::Symlink) when a path is a symbolic link,
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) naming the operation and path.
    pub fn build(self) -> Result<(FileSinkLayer, FileSinkGuard), Error> {
        let sink = self.sink_name();
        let config = Arc::new(self.validate().map_err(|e| e.in_sink(&sink))?);
        let (queue, mut guard) =
            crate::guard::start(config.clone()).map_err(|e| e.in_sink(&sink))?;
        let users = guard.user();
        Ok((FileSinkLayer::new(config, queue, users), guard))
    }

    /// Like [`build`](Builder::build), but returns a [`MakeWriter`](tracing_subscriber::fmt::MakeWriter)
    /// for users who keep `tracing_subscriber::fmt::layer()` and its formatting. Each event the
    /// fmt layer writes becomes one record; control characters inside it are escaped.
    pub fn build_writer(self) -> Result<(FileSinkWriter, FileSinkGuard), Error> {
        let sink = self.sink_name();
        let config = Arc::new(self.validate().map_err(|e| e.in_sink(&sink))?);
        let (queue, mut guard) = crate::guard::start(config).map_err(|e| e.in_sink(&sink))?;
        let users = guard.user();
        Ok((FileSinkWriter::new(queue, users), guard))
    }
}

/// The default directory mode for `file_mode`: the owner's `rwx`, and read and search for the
/// group and for others where the file mode lets them read (what they could read they can
/// also find). Write permission on files gives no write permission on the directory.
fn dir_mode_for(file_mode: u32) -> u32 {
    let mut mode = 0o700;
    if file_mode & 0o040 != 0 {
        mode |= 0o050;
    }
    if file_mode & 0o004 != 0 {
        mode |= 0o005;
    }
    mode
}

/// The octal digits `mode` was probably meant as, when it reads like permission bits written
/// in decimal (`640` is `0o1200`): its decimal digits are all octal ones and make valid bits.
pub(crate) fn decimal_mode_digits(mode: u32) -> Option<String> {
    let digits = mode.to_string();
    let octal = u32::from_str_radix(&digits, 8).ok()?;
    (mode > 0o777 && octal <= 0o777).then_some(digits)
}

/// `decimal_mode_digits` as the end of `build()`'s message.
fn decimal_mode_hint(mode: u32) -> String {
    decimal_mode_digits(mode).map_or_else(String::new, |d| {
        format!("; {mode} is decimal, and permission bits are octal: did you mean 0o{d}?")
    })
}
