//! Starting a sink, and the guard that flushes, syncs, rotates and shuts it down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::Error;
use crate::maintain::Maintenance;
use crate::queue::deadline_after;
use crate::queue::{Ack, Control, Queue};
use crate::segment::finish::Finisher;
use crate::stats::Stats;
use crate::writer::{Start, Writer};

/// Owns a sink's threads. Keep it alive as long as you log (`let (layer, _guard) = ...`).
/// Dropping it drains the queue and fsyncs (waiting at most the shutdown timeout); then, if
/// no layer of the sink is left, it stops the threads and closes the file, and otherwise the
/// sink keeps writing until its last layer is dropped (and the at-exit flush covers the end
/// of the process). [`shutdown`](Self::shutdown) always stops the sink.
///
/// `Send + Sync`: share it (for example in an `Arc`) to flush from anywhere.
#[must_use = "keep the guard (`let (layer, _guard) = ...`) to flush, sync and shut the sink down"]
pub struct FileSinkGuard {
    queue: Arc<Queue>,
    cfg: Arc<Config>,
    writer: Mutex<Option<JoinHandle<()>>>,
    maintenance: Mutex<Option<Maintenance>>,
    /// The sink's layers and writers; see [`Users`].
    users: Weak<Users>,
}

impl std::fmt::Debug for FileSinkGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSinkGuard")
            .field("active_path", &self.cfg.active_path)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Held by every layer and writer of one sink. A guard dropped while one of them is alive
/// (`let (layer, _) = build()?` drops it at once, and a guard in `main` goes before a global
/// subscriber does) flushes, then leaves its threads here instead of stopping them: the sink
/// keeps writing what the layer logs, the at-exit flush covers the end of the process, and the
/// sink shuts down normally when the last layer is dropped.
#[derive(Debug, Default)]
pub(crate) struct Users {
    heir: Mutex<Option<FileSinkGuard>>,
}

impl Users {
    /// Keeps `guard` (the dropped guard's threads) until the last user is gone.
    pub(crate) fn adopt(&self, guard: FileSinkGuard) {
        let mut heir = self.heir.lock().unwrap_or_else(|p| p.into_inner());
        *heir = Some(guard);
    }
}

/// Validated config → lock → recovery → active file → threads.
pub(crate) fn start(cfg: Arc<Config>) -> Result<(Arc<Queue>, FileSinkGuard), Error> {
    let dir = &cfg.dir;
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.file_type().is_symlink() && dir.is_dir() => {} // a symlinked log dir is the admin's choice
        Ok(_) => {
            return Err(Error::config_path(
                "dir",
                dir,
                "the log directory path exists and is not a directory",
            ))
        }
        Err(_) => cfg
            .fs
            .create_dir_all(dir, cfg.dir_mode)
            .map_err(|e| Error::create_dir(dir, e))?,
    }
    // Shared by every thread that touches the directory: released when the last one exits, so
    // another sink never works next to a straggler of this one.
    let lock = Arc::new(crate::segment::lock::take(&cfg)?);
    let recovered = crate::recover::recover(&cfg)?;
    let now = cfg.formatter.now();
    let (active, trimmed, reported) = crate::segment::open_active(&cfg, now)?;
    let mut notes = recovered.notes;
    let (mut queue, rx) = Queue::new(
        cfg.formatter.clone(),
        cfg.queue_capacity,
        cfg.queue_bytes,
        cfg.overflow,
        (cfg.stall_timeout, cfg.fsync_stall_timeout),
    );
    queue.limits = cfg
        .rate_limit
        .limit()
        .map(|(n, per)| crate::limit::RateLimits::new(n, per));
    let queue = Arc::new(queue);
    let mut actions = recovered.actions;
    if trimmed > 0 {
        actions += 1;
        if reported {
            queue.counters.count_internal_record();
        } else {
            notes.push((
                crate::segment::TRIM_NOTE.into(),
                vec![("trimmed_bytes", trimmed)],
            ));
        }
    }
    queue
        .counters
        .recovery_actions
        .store(actions, std::sync::atomic::Ordering::Relaxed);
    // What recovery left, for `stats().bytes_on_disk` (a failed listing counts nothing: the
    // next maintenance pass, if any, recounts).
    if let Ok(scan) = crate::segment::scan(&cfg) {
        queue
            .counters
            .segment_bytes
            .store(scan.segment_bytes(), std::sync::atomic::Ordering::Relaxed);
    }
    let next_seq = recovered.next_seq;
    let maintenance = Maintenance::start(cfg.clone(), queue.clone(), lock.clone())?;
    let notify = maintenance.as_ref().map(|m| m.notifier());
    let finisher = Finisher::start(cfg.clone(), queue.clone(), notify, lock.clone())?;
    let start = Start {
        active,
        next_seq,
        finisher,
        notes,
        lock,
    };
    let mut writer = Writer::new(cfg.clone(), queue.clone(), rx, start);
    let handle = std::thread::Builder::new()
        .name(format!("filesink-{}", cfg.stem))
        .spawn(move || {
            crate::health::mark_sink_thread();
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.run()));
            if ran.is_err() {
                let _ =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.after_panic()));
            }
        })
        .map_err(|e| Error::io("spawn writer thread", &cfg.active_path, e))?;
    let guard = FileSinkGuard {
        queue: queue.clone(),
        cfg: cfg.clone(),
        writer: Mutex::new(Some(handle)),
        maintenance: Mutex::new(maintenance),
        users: Weak::new(),
    };
    if cfg.flush_on_panic {
        crate::exit_hook::register_panic(Arc::downgrade(&queue), cfg.shutdown_timeout);
    }
    if cfg.flush_on_exit {
        crate::exit_hook::register(Arc::downgrade(&queue), cfg.shutdown_timeout);
    }
    Ok((queue, guard))
}

impl FileSinkGuard {
    fn control(&self, make: impl FnOnce(Ack) -> Control) -> Result<(), Error> {
        self.queue.call(self.cfg.shutdown_timeout, make)
    }

    /// Returns once every event enqueued before the call has been handed to the operating
    /// system (it survives a crash of the process, not of the machine), and every segment
    /// rotated before it carries its final name (a background thread fsyncs it first, so a
    /// flush right after a rotation can take as long as that fsync).
    ///
    /// # Errors
    /// The writer's last I/O error since the previous `flush`/`sync`, if any; an error at once
    /// after shutdown; [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut) after the shutdown
    /// timeout.
    pub fn flush(&self) -> Result<(), Error> {
        self.control(|ack| Control::Flush { sync: false, ack })
    }

    /// Like [`flush`](Self::flush), then fsync of the active file (and of the directory where
    /// its entries changed): the events survive a power loss.
    pub fn sync(&self) -> Result<(), Error> {
        self.control(|ack| Control::Flush { sync: true, ack })
    }

    /// Finishes the active file into a segment now (if it holds anything).
    pub fn rotate(&self) -> Result<(), Error> {
        self.control(Control::Rotate)
    }

    /// Reopens `<stem>.log` by name, for external rotation (logrotate's `create` mode): wire it
    /// to SIGHUP. The sink also notices by itself when the file was moved or deleted: before
    /// its first write after a quiet spell, and about once a second while it writes.
    pub fn reopen(&self) -> Result<(), Error> {
        self.control(Control::Reopen)
    }

    /// Waits until background maintenance has caught up: everything logged before the call is
    /// synced (as by [`sync`](Self::sync)) in finished segments or the active file, every
    /// finished segment due for compression is compressed, and retention has been applied.
    /// Useful before exiting a short-lived program or in tests; a long-running service never
    /// needs it.
    ///
    /// # Errors
    /// As [`flush`](Self::flush); [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut) when the
    /// work takes longer than `timeout` (it goes on in the background).
    pub fn wait_idle(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = deadline_after(Instant::now(), timeout);
        // Synced: every segment sealed so far is finished, so the pass sees them all.
        self.queue
            .call(timeout, |ack| Control::Flush { sync: true, ack })?;
        let pass = match &*self.maintenance.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(m) => m.request_pass(),
            None => return Ok(()),
        };
        match pass.recv_deadline(deadline) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(Error::timed_out("waiting for compression and retention"))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(Error::shut_down()),
        }
    }

    /// A snapshot of the sink's counters, what it holds in memory and has on disk now, its
    /// writer's state and its last error. Never waits for the writer (it takes each logging
    /// thread's chunk lock for a moment), so it answers while the disk is full or hung.
    pub fn stats(&self) -> Stats {
        self.queue.stats()
    }

    /// The path of the active file, `<dir>/<stem>.log`.
    pub fn active_path(&self) -> &Path {
        &self.cfg.active_path
    }

    /// The log directory.
    pub fn dir(&self) -> PathBuf {
        self.cfg.dir.clone()
    }

    /// Drains the queue, writes, fsyncs and closes the file, stops the threads, and returns
    /// the last error. Waits at most `timeout`; afterwards every call on the sink returns an
    /// error at once and events are counted as dropped. Calling it again is harmless.
    ///
    /// # Errors
    /// The writer's last error; on a disk that kept failing until `timeout` (a full disk),
    /// that error with [`Error::events_lost`] saying how many events were given up.
    ///
    /// A compression still running at the deadline is abandoned at its next step; until that
    /// thread has exited it keeps the directory's lock, so a new sink on the same file gets
    /// [`ErrorKind::Locked`](crate::ErrorKind::Locked) rather than work beside it.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = deadline_after(Instant::now(), timeout);
        let dropped_before = self.dropped();
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(handle) = handle else {
            return Err(Error::shut_down());
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let sent = self
            .queue
            .send_control(Control::Shutdown { deadline, ack: tx }, deadline, true);
        // Whether the writer has exited: only then is the count of events given up final.
        let mut joined = false;
        let res = match sent {
            Ok(()) => match rx.recv_deadline(deadline_after(deadline, Duration::from_millis(50))) {
                Ok(res) => {
                    joined = handle.join().is_ok();
                    res
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    Err(Error::timed_out("shutdown"))
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    joined = handle.join().is_ok();
                    Err(Error::shut_down())
                }
            },
            Err(e) => Err(e),
        };
        self.queue.health.set_gone();
        self.queue.wake_waiters();
        let maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(m) = maintenance {
            m.stop(deadline);
        }
        // An error the maintenance thread kept while the writer was shutting down.
        let res = match (res, self.queue.counters.take_error()) {
            (Ok(()), Some(late)) => Err(late),
            (res, _) => res,
        };
        let lost = self.dropped().saturating_sub(dropped_before);
        match res {
            Err(e) if joined && lost > 0 => Err(e.with_events_lost(lost)),
            res => res,
        }
    }

    /// Events dropped or shed so far.
    fn dropped(&self) -> u64 {
        let c = &self.queue.counters;
        c.events_dropped.load(std::sync::atomic::Ordering::Relaxed)
            + c.events_shed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl FileSinkGuard {
    /// A token for a layer or writer of this sink: while one lives, dropping the guard keeps
    /// the sink running (see [`Users`]).
    pub(crate) fn user(&mut self) -> Arc<Users> {
        if let Some(users) = self.users.upgrade() {
            return users;
        }
        let users = Arc::new(Users::default());
        self.users = Arc::downgrade(&users);
        users
    }

    /// This guard's threads in a new guard with no users, which shuts the sink down when it
    /// is dropped.
    fn take_over(&self) -> FileSinkGuard {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        FileSinkGuard {
            queue: self.queue.clone(),
            cfg: self.cfg.clone(),
            writer: Mutex::new(writer),
            maintenance: Mutex::new(maintenance),
            users: Weak::new(),
        }
    }
}

impl Drop for FileSinkGuard {
    fn drop(&mut self) {
        let pending = self.writer.lock().map(|w| w.is_some()).unwrap_or(false);
        if pending {
            if let Some(users) = self.users.upgrade() {
                // A layer still logs into this sink: what was logged so far is made durable
                // as a shutdown would, and the sink goes on until its last layer is dropped.
                if let Err(e) = self.sync() {
                    self.queue.counters.report(&e);
                }
                users.adopt(self.take_over());
                return;
            }
            if let Err(e) = self.shutdown(self.cfg.shutdown_timeout) {
                if e.kind() != crate::ErrorKind::ShutDown {
                    self.queue.counters.report(&e);
                }
            }
        }
    }
}
