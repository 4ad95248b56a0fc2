//! Rotate: seal the active file for the finisher and open the next; time rotation and the
//! periodic fsync; follow `<stem>.log` when it is moved away or deleted.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::Level;

use super::{Writer, IDENTITY_CHECK_EVERY};
use crate::error::Error;
use crate::health::{Call, Who};
use crate::segment;
use crate::segment::finish::Job;
use crate::settings::Fsync;

impl Writer {
    pub(super) fn boundary_passed(&self) -> bool {
        self.next_boundary.is_some_and(|b| self.now() >= b)
    }

    /// Rotation: only between records, with the batch written out first.
    pub(super) fn rotate(&mut self) -> Result<(), Error> {
        if !self.write_out() {
            return Err(self
                .counters()
                .peek_error()
                .unwrap_or_else(|| Error::timed_out("writing before rotation")));
        }
        let empty = self.active.as_ref().is_none_or(|a| a.size == 0);
        if empty {
            // Nothing to finish: just move the time anchor.
            let now = self.now();
            if let Some(a) = self.active.as_mut() {
                a.opened = now;
            }
            self.next_boundary = self.cfg.rotation.next_boundary(now, self.cfg.time_zone);
            return Ok(());
        }
        self.finish_segment(true)
    }

    /// Seals the active file into a segment and opens a new one; the finisher thread makes
    /// the segment durable and gives it its final name.
    pub(super) fn finish_segment(&mut self, sync_first: bool) -> Result<(), Error> {
        let Some(active) = self.active.take() else {
            return Ok(());
        };
        let was_dirty = self.dirty;
        self.dirty = false;
        let now = self.now();
        // The segment is named after its start, even when the clock has since gone backwards.
        let opened = active.opened;
        self.health().call_begins();
        let sealed = segment::seal(&self.cfg, opened, &mut self.next_seq);
        self.health().call_ends();
        match sealed {
            Ok((pending, fin)) => {
                self.counters()
                    .segment_bytes
                    .fetch_add(active.size, Ordering::Relaxed);
                self.finisher.send(Job::Seal {
                    pending,
                    fin,
                    file: active.file,
                    sync: sync_first && was_dirty,
                    unsynced: !sync_first,
                });
            }
            Err(e) => {
                self.counters().write_errors.fetch_add(1, Ordering::Relaxed);
                self.counters().error(e.clone());
                // Keep writing where we were rather than lose the file.
                self.active = Some(active);
                self.dirty = was_dirty;
                self.next_boundary = self.cfg.rotation.next_boundary(now, self.cfg.time_zone);
                return Err(e);
            }
        }
        self.next_boundary = self.cfg.rotation.next_boundary(now, self.cfg.time_zone);
        self.health().call_begins();
        let created = segment::create_active(&self.cfg, now);
        self.health().call_ends();
        match created {
            Ok(a) => {
                self.active = Some(a);
                self.dir_dirty = true;
                Ok(())
            }
            Err(e) => {
                // Retried like a failed write: the next write reopens after the backoff.
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    /// Opens `<stem>.log` again (it was moved away, deleted, or never reopened after an error),
    /// recreating the directory if needed.
    pub(super) fn reopen(&mut self) -> Result<(), Error> {
        if !self.write_out() {
            return Err(self
                .counters()
                .peek_error()
                .unwrap_or_else(|| Error::timed_out("writing before reopen")));
        }
        let synced = match self.active.take() {
            Some(old) => self.close_moved_away(old),
            None => Ok(()),
        };
        let opened = self.open_fresh();
        synced.and(opened)
    }

    /// Closes the file that was `<stem>.log` before an external rotation, fsyncing it first
    /// if it was written since its last fsync. A failed fsync is handled as at rotation: never
    /// retried as if the data were then safe, counted, kept for the next flush and reported
    /// in the log; the file keeps the name it was given, which is not the sink's to change.
    fn close_moved_away(&mut self, mut old: segment::Active) -> Result<(), Error> {
        let mut res = Ok(());
        if std::mem::take(&mut self.dirty) {
            self.health().begins(Who::Writer, Call::Fsync);
            let synced = old.file.sync();
            self.health().call_ends();
            self.counters().fsyncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = synced {
                let err = Error::io("fsync", &self.cfg.active_path, e);
                self.counters().write_errors.fetch_add(1, Ordering::Relaxed);
                self.counters().error(err.clone());
                self.note(
                    Level::ERROR,
                    "fsync failed: the file moved away before the reopen is not known to be \
                     durable",
                    &[],
                );
                res = Err(err);
            }
        }
        self.close(old);
        res
    }

    /// Closes a file the writer no longer writes (close(2) can block on a network file
    /// system like any other call).
    pub(super) fn close(&self, file: segment::Active) {
        self.health().call_begins();
        drop(file);
        self.health().call_ends();
    }

    /// Opens `<stem>.log`, creating the directory if it is gone. A failure (a symlink planted
    /// at the path, a full disk, EMFILE, a directory that cannot be recreated) is a failure of
    /// the writer like a failed write: same backoff, same state, retried by the next write.
    pub(super) fn open_fresh(&mut self) -> Result<(), Error> {
        let cfg = self.cfg.clone();
        let now = self.now();
        self.health().call_begins();
        let opened = cfg
            .fs
            .create_dir_all(&cfg.dir, cfg.dir_mode)
            .map_err(|e| Error::io("create directory", &cfg.dir, e))
            .and_then(|()| segment::open_active(&cfg, now));
        self.health().call_ends();
        // A directory deleted and recreated has no lock file: take the lock in it again, so
        // that no other sink starts writing beside this one.
        let lock_path = cfg.path(&segment::name::lock(&cfg.stem));
        let opened = opened.and_then(|a| {
            self.health().call_begins();
            let relocked = match cfg.fs.identity(&lock_path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    segment::lock::take(&cfg).map(Some)
                }
                _ => Ok(None),
            };
            self.health().call_ends();
            if let Some(lock) = relocked? {
                self.relock = Some(lock);
            }
            Ok(a)
        });
        match opened {
            Ok((a, _, reported)) => {
                if reported {
                    self.counters().count_internal_record();
                }
                self.active = Some(a);
                self.dir_dirty = true;
                self.counters().reopens.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    /// Time rotation, periodic fsync, and the check that `<stem>.log` is still our file.
    pub(super) fn timers(&mut self) {
        if self.boundary_passed() && self.buf.is_empty() {
            let _ = self.rotate();
        }
        if let (Fsync::Every(d), Some(t)) = (self.cfg.fsync, self.last_write) {
            if self.dirty && t.elapsed() >= d {
                let _ = self.sync_active();
            }
        }
        let now = Instant::now();
        if now >= self.next_identity_check {
            self.next_identity_check = now + IDENTITY_CHECK_EVERY;
            self.check_identity();
        }
    }

    /// Is `<stem>.log` still the file being written? Moved away (logrotate): its data is
    /// safe under the new name; reopen. Deleted (or its directory): whatever was written
    /// into it since the last check is gone; reopen, and the next flush reports the loss.
    pub(super) fn check_identity(&mut self) {
        let Some(active) = &self.active else {
            return;
        };
        self.queue.health.call_begins();
        let current = self.cfg.fs.identity(&self.cfg.active_path);
        self.queue.health.call_ends();
        match current {
            Ok(id) if id == active.identity => self.unverified = false,
            Ok(_) => {
                self.unverified = false;
                let _ = self.reopen();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let lost = std::mem::take(&mut self.unverified);
                // Nothing more goes into the unlinked file, not even the buffered batch.
                if let Some(old) = self.active.take() {
                    self.close(old);
                }
                self.dirty = false;
                if self.open_fresh().is_ok() && lost {
                    self.note(
                        Level::WARN,
                        "the active file was deleted: events written to it are lost",
                        &[],
                    );
                }
                if lost {
                    self.lost = Some(Error::io(
                        "write",
                        &self.cfg.active_path,
                        io::Error::new(
                            io::ErrorKind::NotFound,
                            "the active file was deleted after events were written to it; \
                             they are lost",
                        ),
                    ));
                }
            }
            Err(_) => {}
        }
    }
}
