//! A log file sink for [`tracing`] that loses nothing, never tears a line, survives crashes and
//! full disks, and costs the logging thread as little as possible.
//!
//! ```text
//!  caller thread          writer thread               finisher thread       maintenance (nice 19)
//!  ─────────────          ─────────────               ───────────────       ─────────────────────
//!  event → format    ─►   per-thread chunk ─► batch ─► write(2) ─► <stem>.log
//!  (JSON / text,          (collected by the writer,     │
//!   every string           full ones sent whole over    └ rotate: seal ─► fsync → rename to
//!   escaped)               a bounded channel)              <stem>.NNNNNNNNNN.<start>.log → fsync dir
//!                                                                              └► gzip → verify → .gz
//!                                                                              └► retention
//! ```
//!
//! # Quick start
//!
//! ```
//! use tracing_filesink::{Compression, FileSink, Retention, Rotation};
//! use tracing_subscriber::prelude::*;
//! # let dir = tempfile::tempdir()?;
//! # let dir = dir.path();
//!
//! let (layer, guard) = FileSink::builder(dir, "app")
//!     .rotation(Rotation::size(64 << 20).or(Rotation::daily()))
//!     .compression(Compression::gzip())
//!     .retention(Retention::files(30))
//!     .build()?;
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(user = "ada", "logged in");
//! });
//! guard.flush()?; // every event logged so far is in the file
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - **Nothing is lost while the process lives and the disk takes writes** with
//!   [`Overflow::Block`] (the default). With a
//!   dropping policy every drop is counted in [`Stats`] and reported by a record in the log.
//! - **One event, one line.** CR, LF, ESC, the other C0 and C1 controls, DEL and U+2028/U+2029
//!   are escaped in every string, in every format.
//! - **Crash safety.** A segment gets its final name only after it was fsynced, and renames
//!   never replace anything; compression goes through a verified temp file; startup recovery
//!   removes temp files, seals a file with a torn last line as it is (never shrinking a file
//!   a reader may have read) and finishes interrupted work.
//!   See `docs/guarantees.md`.
//! - **Nothing is lost at exit.** By default an `atexit` handler flushes and fsyncs every sink
//!   when the process returns from `main` or calls `std::process::exit`, wherever the guard
//!   is; a guard dropped while its layer lives leaves the sink running for the layer.
//! - **Several sinks in one subscriber**, each with its own format and per-layer filter,
//!   beside `fmt::layer()`; records from the `log` crate keep their target, as in `fmt`.
//! - **A sick disk never panics or stalls the application.** Writes are retried with backoff
//!   while events are kept up to the queue bound; then callers shed events instead of waiting
//!   on a writer that is failing, stalled or gone (see [`Overflow::Block`]).
//!
//! # Formats
//!
//! [`Format::Json`] (the default) is `tracing_subscriber::fmt::layer().json()`'s schema;
//! [`Format::Text`] and [`Format::Compact`] are fmt's full and compact text layouts;
//! [`Format::Logfmt`] writes `key=value` lines. fmt's options are on the [`Builder`] under
//! fmt's names (`flatten_event`, `with_file`, ...), with [`Builder::rename_key`] and
//! [`Builder::static_field`] beyond them: the README's "Shaping the JSON" has the migration
//! table and the Elastic Common Schema, Google Cloud Logging and OpenTelemetry recipes.
//!
//! # Rotation, compression, retention
//!
//! [`Rotation`] finishes the active file by size (before a record would overflow it; a record
//! never spans two files) and by wall-clock period in the configured [`TimeZone`] (also while
//! idle), combined with [`Rotation::or`]; [`FileSinkGuard::rotate`] rotates on demand. The
//! active file keeps the stable name `<dir>/<stem>.log`; finished segments are
//! `<stem>.<10-digit sequence>.<start time>.log`, which sort in write order as plain strings
//! and are never reused. [`Compression::gzip`] compresses finished segments on a background
//! thread at the lowest CPU priority, through a verified temp file
//! ([`Builder::compress_after`] keeps the newest plain for shippers). [`Retention`] deletes
//! the oldest finished segments by count, total bytes, age or free space, and never touches
//! the active file or another stem's files. See `docs/design.md`.
//!
//! # Recovery
//!
//! `build()` repairs what a crash left in this stem's files before writing: temp files are
//! removed, a segment found both plain and compressed keeps the verified copy, a segment whose
//! finishing was cut short is finished, an active file whose last line a crash tore is sealed
//! as it is (renamed like any rotation: a shipper never sees it shrink) and a fresh one
//! started. WARN records in the log say what was done (one names each torn segment);
//! [`Stats::recovery_actions`] counts it. Readers return the fragment marked torn, never as
//! a record.
//!
//! # Performance
//!
//! The caller formats into a reused thread-local buffer and copies the line into its own
//! per-thread chunk under an uncontended lock: no allocation, no channel operation and no
//! system call per event (the writer collects chunks, and full chunks travel to it whole).
//! The file is in happens-before order across threads and tasks, and its timestamps rise
//! with it: each record is stamped from the monotonic clock as it is queued, and the writer
//! merges the threads' records by stamp. A quiet service costs about one writer wake-up per
//! event, an idle one none. `cargo bench --bench compare` measures it side by side with
//! `tracing-appender`, a `Mutex<BufWriter<File>>`, spdlog-rs and ftlog: in the published run
//! about 7× the events/s of `tracing-appender`'s `non_blocking` (lossless) at under a fifth of
//! its median caller latency, within 10% of this crate's own formatting floor. See
//! `docs/performance.md`.
//!
//! # Reading back
//!
//! [`read::LogDir`] lists a directory's segments in write order, iterates lines and records
//! across plain and compressed segments, and follows the active file across rotations
//! without losing or repeating a line. The `filesink` command (feature `cli`) does the same
//! from a shell: `cat`, `follow`, `verify`, `stats`. `docs/shipping.md` configures log
//! shippers.
//!
//! # Platforms
//!
//! Linux, macOS, FreeBSD and the other BSDs, and Windows, with the same API. Each system's own
//! calls keep the guarantees (no-replace rename, durable sync: `F_FULLFSYNC` on macOS,
//! `FlushFileBuffers` on Windows). What Windows cannot give is said, not pretended: a
//! directory cannot be fsynced there, files have no modes (`file_mode` is ignored), and
//! `flush_on_exit` covers returning from `main` but not `process::exit`.
//! `docs/guarantees.md` has a column per platform.
//!
//! # Features
//!
//! - `test-util`: exposes `ManualClock` and `Builder::clock`, the seam
//!   for testing time rotation without sleeping.
//! - `cli`: builds the `filesink` command (from a checkout: `cargo install --path .
//!   --features cli`). Enables `notify`.
//! - `notify`: the follower ([`read::LogDir::follow`]) opens each new segment the moment a
//!   file-system event (inotify, kqueue, ReadDirectoryChangesW) says it appeared, so quick
//!   retention cannot remove it first; without it the follower looks when polled.
//! - `opentelemetry`: [`Builder::with_opentelemetry_ids`], the OpenTelemetry `trace_id` and
//!   `span_id` of the event's span on every record, read from a `tracing-opentelemetry`
//!   (0.34) layer in the same subscriber.
//! - `serde`: `Deserialize` for the setting types (through their one-line `FromStr` forms:
//!   `"64 MiB or daily"`, `"30 files, 7 days"`, `"gzip"`) and `FileSinkConfig`, every
//!   builder setting read from a configuration file, with `set(key, value)` for environment
//!   overrides. Errors name the key and quote the value. `Serialize` for [`Stats`].

#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod backtrace;
mod builder;
mod clock;
mod compress;
mod config;
mod error;
mod exit_hook;
#[cfg(test)]
mod fault;
#[cfg(feature = "serde")]
mod file_config;
mod format;
mod fs;
mod guard;
mod health;
mod layer;
mod limit;
mod maintain;
mod make_writer;
mod parse;
mod queue;
pub mod read;
mod recover;
mod retain;
mod rotate;
mod segment;
mod settings;
#[cfg(test)]
mod shedding_tests;
mod slow_disk;
mod stats;
mod sys;
mod writer;

pub use backtrace::BacktraceFilter;
pub use builder::{Builder, FileSink};
#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use error::{Error, ErrorKind};
#[cfg(feature = "serde")]
pub use file_config::FileSinkConfig;
pub use format::{Format, TimeFormat, TimeZone};
pub use guard::FileSinkGuard;
pub use health::WriterState;
pub use layer::FileSinkLayer;
pub use make_writer::{FileSinkWriter, RecordWriter};
pub use retain::Retention;
pub use rotate::Rotation;
pub use settings::{Backtrace, Compression, Fsync, Overflow, RateLimit, Shedding};
pub use stats::{LevelCounts, Stats};

/// Hooks for this crate's benchmarks; not part of the supported API.
#[doc(hidden)]
pub mod __private {
    pub use crate::layer::{format_only_layer, format_only_layer_for, FormatOnlyLayer};
    pub use crate::slow_disk::{slow_disk, Throttle};
}

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
