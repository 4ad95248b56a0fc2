//! Write: the batch into the active file, in as few `write(2)` calls as possible; on an error
//! keep it, back off and retry. A failed fsync is never retried as if the data were then
//! safe.

use std::io::{self, Write as _};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::Writer;
use crate::error::Error;
use crate::health::{Call, Who};
use crate::settings::Fsync;

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The writer is failing: when it tries again.
pub(super) struct Failure {
    backoff: Duration,
    pub(super) retry_at: Instant,
}

impl Writer {
    /// Hands the batch to the kernel. Returns true when nothing is left buffered.
    ///
    /// A batch that would cross the size limit (chunks arrive whole; after an outage it may
    /// hold several segments' worth) is split at record boundaries and rotated between the
    /// parts.
    pub(super) fn write_out(&mut self) -> bool {
        let mut split = true;
        loop {
            if !self.ready() {
                return false;
            }
            let end = if split {
                self.fitting_prefix()
            } else {
                self.buf.len()
            };
            if end > 0 && !self.write_prefix(end) {
                return false;
            }
            if self.buf.is_empty() {
                return true;
            }
            // The rest belongs to the next segment.
            let sealed = self.finish_segment(true);
            if self.active.is_none() {
                return false;
            }
            if sealed.is_err() {
                // Could not seal: keep everything in the current file rather than lose it.
                split = false;
            }
        }
    }

    /// How much of the batch goes into the active file before size rotation is due.
    fn fitting_prefix(&self) -> usize {
        match &self.active {
            Some(active) => self.cfg.rotation.fitting_prefix(active.size, &self.buf),
            None => self.buf.len(),
        }
    }

    /// True when the writer may write now: not waiting out a backoff, and with an open file
    /// (reopened here after a failure).
    fn ready(&mut self) -> bool {
        if let Some(f) = &self.failure {
            if Instant::now() < f.retry_at {
                return false;
            }
        }
        self.active.is_some() || self.open_fresh().is_ok()
    }

    /// Writes `buf[..end]` (whole records). Returns true when all of it was written.
    fn write_prefix(&mut self, end: usize) -> bool {
        let Some(active) = self.active.as_mut() else {
            return false;
        };
        let health = &self.queue.health;
        let mut written = 0;
        let result = loop {
            if written == end {
                break Ok(());
            }
            let started = health.call_begins();
            let res = active.file.write(&self.buf[written..end]);
            health.call_ends();
            if health.was_stall(started) {
                // A stalled write is an outage too: the shed report says how long it lasted.
                self.outage_since.get_or_insert(started);
                self.outage_memory = true;
            }
            match res {
                Ok(0) => break Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => {
                    written += n;
                    active.size += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if written > 0 {
            self.dirty = true;
            self.unverified = true;
            self.last_write = Some(Instant::now());
            self.counters()
                .bytes_written
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        match result {
            Ok(()) if end == self.buf.len() => {
                self.counters()
                    .records_written
                    .fetch_add(self.buf_records, Ordering::Relaxed);
                self.counters()
                    .internal_records
                    .fetch_add(self.buf_internal, Ordering::Relaxed);
                self.buf.clear();
                self.buf_records = 0;
                self.buf_internal = 0;
                self.recovered();
                let urgent = std::mem::take(&mut self.buf_urgent);
                if urgent || self.cfg.fsync == Fsync::Always {
                    let _ = self.sync_active();
                }
                true
            }
            Ok(()) => {
                // Part of a batch split for size rotation; its internal records are counted
                // with the last part.
                let lines = self.buf[..end].iter().filter(|&&b| b == b'\n').count() as u64;
                self.counters()
                    .records_written
                    .fetch_add(lines, Ordering::Relaxed);
                self.buf_records = self.buf_records.saturating_sub(lines);
                self.buf.drain(..end);
                self.recovered();
                true
            }
            Err(e) => {
                // A partly written record is cut back off the file (never leave a torn last
                // line while the disk is full) and kept whole for the retry.
                let complete = self.buf[..written]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                if complete < written {
                    if let Some(a) = self.active.as_mut() {
                        let cut = (written - complete) as u64;
                        health.call_begins();
                        let res = a.file.set_len(a.size - cut);
                        health.call_ends();
                        if res.is_ok() {
                            a.size -= cut;
                            written = complete;
                        }
                    }
                }
                // Keep the unwritten rest: the retry writes it.
                let done = &self.buf[..written];
                let lines = done.iter().filter(|&&b| b == b'\n').count() as u64;
                self.counters()
                    .records_written
                    .fetch_add(lines, Ordering::Relaxed);
                self.buf_records = self.buf_records.saturating_sub(lines);
                self.buf.drain(..written);
                if written > 0 {
                    self.health().progressed();
                }
                let path = self.cfg.active_path.clone();
                self.fail(Error::io("write", &path, e));
                false
            }
        }
    }

    /// Data reached the kernel: the outage, if any, is over.
    fn recovered(&mut self) {
        self.health().progressed();
        if self.failure.take().is_some() {
            self.health().set_healthy();
        }
    }

    pub(super) fn fail(&mut self, err: Error) {
        self.counters().write_errors.fetch_add(1, Ordering::Relaxed);
        self.counters().error(err);
        let backoff = match &self.failure {
            Some(f) => (f.backoff * 2).min(BACKOFF_MAX),
            None => BACKOFF_MIN,
        };
        // Jitter of up to a quarter, so sinks on one sick disk do not retry in lockstep.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0) as u64;
        let jitter = Duration::from_nanos(nanos % (backoff.as_nanos() as u64 / 4 + 1));
        let now = Instant::now();
        self.outage_since.get_or_insert(now);
        self.outage_memory = true;
        self.failure = Some(Failure {
            backoff,
            retry_at: now + backoff + jitter,
        });
        self.health().set_failing();
    }

    /// fsync of the active file, and of the directory when its entries changed. A failed
    /// fsync is never retried as if the data were then safe: the segment is finished as it is
    /// and a new one started.
    pub(super) fn sync_active(&mut self) -> Result<(), Error> {
        let Some(active) = self.active.as_mut() else {
            return Err(self
                .counters()
                .peek_error()
                .unwrap_or_else(Error::shut_down));
        };
        if self.dirty {
            self.queue.health.begins(Who::Writer, Call::Fsync);
            let res = active.file.sync();
            self.queue.health.call_ends();
            // Counted once made: a count read after it never runs ahead of the system call.
            self.queue.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = res {
                let err = Error::io("fsync", &self.cfg.active_path, e);
                self.counters().write_errors.fetch_add(1, Ordering::Relaxed);
                self.counters().error(err.clone());
                self.dirty = false;
                let _ = self.finish_segment(false);
                return Err(err);
            }
            self.dirty = false;
        }
        if self.dir_dirty {
            self.health().begins(Who::Writer, Call::Fsync);
            let res = self.cfg.fs.sync_dir(&self.cfg.dir);
            self.health().call_ends();
            self.queue.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            res.map_err(|e| Error::io("fsync directory", &self.cfg.dir, e))?;
            self.dir_dirty = false;
        }
        Ok(())
    }
}
