//! The frozen, validated settings shared by the threads of one sink.
//!
//! `builder.rs` produces it; the layer, the writer, the finisher, the maintenance thread and
//! recovery only read it. Kept apart so that none of them imports the builder.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::Level;

use crate::format::{Formatter, TimeZone};
use crate::fs::Fs;
use crate::retain::Retention;
use crate::rotate::Rotation;
use crate::settings::Compression;
use crate::settings::Fsync;
use crate::settings::Overflow;
use crate::settings::{Backtrace, RateLimit, Shedding};

/// The validated settings of one sink.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) dir: PathBuf,
    pub(crate) stem: crate::segment::name::Stem,
    pub(crate) active_path: PathBuf,
    pub(crate) file_mode: u32,
    pub(crate) dir_mode: u32,
    pub(crate) overflow: Overflow,
    pub(crate) queue_capacity: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) stall_timeout: Duration,
    pub(crate) fsync_stall_timeout: Duration,
    pub(crate) rotation: Rotation,
    pub(crate) rotate_on_startup: bool,
    pub(crate) compression: Compression,
    pub(crate) compress_after: usize,
    pub(crate) retention: Retention,
    pub(crate) fsync: Fsync,
    pub(crate) flush_on_panic: bool,
    pub(crate) flush_on_exit: bool,
    pub(crate) time_zone: TimeZone,
    pub(crate) formatter: Formatter,
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) shedding: Shedding,
    pub(crate) rate_limit: RateLimit,
    pub(crate) backtrace: Backtrace,
}

impl Config {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Records at or above this level ask for an fsync of their batch.
    pub(crate) fn urgent_level(&self) -> Option<Level> {
        match self.fsync {
            Fsync::OnLevel(l) => Some(l),
            _ => None,
        }
    }
}
