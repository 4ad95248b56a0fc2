//! A log file sink for [`tracing`] that loses nothing, never tears a line, survives crashes and
//! full disks, and costs the logging thread as little as possible.
//!
//! ```text
//!  caller thread                     writer thread                     maintenance thread
//!  ─────────────                     ─────────────                     ──────────────────
//!  event ─► format (JSON / text, ─► bounded queue ─► batch ─► write(2) ─► <stem>.log
//!           escaped, per-thread      (events+bytes,            │
//!           buffer)                  lock-free send)           └ rotate: fsync → rename → fsync dir
//!                                                                   ─► <stem>.NNNNNNNNNN.<start>.log
//!                                                                        └► gzip → verify → .log.gz
//!                                                                        └► retention
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
//! - **Nothing is lost while the process lives** with [`Overflow::Block`] (the default). With a
//!   dropping policy every drop is counted in [`Stats`] and reported by a record in the log.
//! - **One event, one line.** CR, LF, ESC, the other C0 and C1 controls, DEL and U+2028/U+2029
//!   are escaped in every string, in both formats.
//! - **Crash safety.** Rotation fsyncs the file, renames it without replacing anything and
//!   fsyncs the directory; compression goes through a verified temp file; startup recovery
//!   removes temp files, trims a torn last line and finishes interrupted work.
//!   See `docs/guarantees.md`.
//! - **A sick disk never panics or hangs the application.** Writes are retried with backoff
//!   while events are kept up to the queue bound; then the overflow policy applies.
//!
//! # Files
//!
//! The active file is `<dir>/<stem>.log`; finished segments are
//! `<stem>.<10-digit sequence>.<start time>.log[.gz]`, which sort in write order as plain
//! strings. See `docs/design.md`.

#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod builder;
mod clock;
mod compress;
mod error;
mod exit_hook;
#[cfg(test)]
mod fault;
mod format;
mod fs;
mod guard;
mod layer;
mod maintain;
mod make_writer;
mod queue;
mod recover;
mod retain;
mod rotate;
mod segment;
mod stats;
mod writer;

pub use builder::{Builder, FileSink};
#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use compress::Compression;
pub use error::{Error, ErrorKind};
pub use format::{Format, TimeFormat, TimeZone};
pub use guard::FileSinkGuard;
pub use layer::FileSinkLayer;
pub use make_writer::{FileSinkWriter, RecordWriter};
pub use queue::Overflow;
pub use retain::Retention;
pub use rotate::Rotation;
pub use stats::Stats;
pub use writer::Fsync;

/// Hooks for this crate's benchmarks; not part of the supported API.
#[doc(hidden)]
pub mod __private {
    pub use crate::layer::{format_only_layer, FormatOnlyLayer};
}

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
