//! Starting a sink, and the guard that flushes, syncs, rotates and shuts it down.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::Error;
use crate::health::State;
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
    /// The sink's layers and writers; see `exit_hook::Users`.
    users: Weak<crate::exit_hook::Users>,
}

impl std::fmt::Debug for FileSinkGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSinkGuard")
            .field("active_path", &self.cfg.active_path)
            .field("queue", &self.queue)
            .finish()
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
                "directory",
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
    let lock = Arc::new(take_lock(&cfg)?);
    let recovered = crate::recover::recover(&cfg)?;
    let now = cfg.formatter.now();
    let (active, trimmed, reported) = crate::segment::open_active(&cfg, now)?;
    let mut notes = recovered.notes;
    let (queue, rx) = Queue::new(
        cfg.formatter.clone(),
        cfg.queue_capacity,
        cfg.queue_bytes,
        cfg.overflow,
        cfg.stall_timeout,
    );
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
        install_panic_hook(Arc::downgrade(&queue), cfg.shutdown_timeout);
    }
    if cfg.flush_on_exit {
        crate::exit_hook::register(Arc::downgrade(&queue), cfg.shutdown_timeout);
    }
    Ok((queue, guard))
}

pub(crate) fn take_lock(cfg: &Config) -> Result<File, Error> {
    let path = cfg.path(&crate::segment::name::lock(&cfg.stem));
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::symlink(&path));
    }
    let file = crate::sys::open_nofollow(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
        &path,
        cfg.file_mode,
    )
    .map_err(|e| Error::io("open lock file", &path, e))?;
    // A process forking in another thread holds a copy of a just-closed lock descriptor until
    // its exec; such a holder lets go within milliseconds, another sink never does.
    let mut attempts = 0;
    let locked = loop {
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            other => break other,
        }
    };
    match locked {
        Ok(()) => {
            // open(2) applied the umask; give the lock file the exact mode like every other
            // file. Best effort: a lock file owned by someone else still locks.
            let _ = crate::sys::set_mode(&file, cfg.file_mode);
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::locked(&path)),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}

fn install_panic_hook(queue: Weak<Queue>, timeout: Duration) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(q) = queue.upgrade() {
            let _ = flush_queue(&q, timeout, true);
        }
        previous(info);
    }));
}

/// Flush (and with `sync`, fsync) through the queue, waiting at most `timeout`.
pub(crate) fn flush_queue(queue: &Queue, timeout: Duration, sync: bool) -> Result<(), Error> {
    control(queue, timeout, |ack| Control::Flush { sync, ack })
}

/// Sends a control message and waits for its answer, never longer than `timeout`.
fn control(
    queue: &Queue,
    timeout: Duration,
    make: impl FnOnce(Ack) -> Control,
) -> Result<(), Error> {
    if queue.health.is_gone() {
        return Err(Error::shut_down());
    }
    if crate::health::on_sink_thread() {
        return Err(Error::timed_out(
            "a control call from the sink's own thread would wait for itself",
        ));
    }
    let deadline = deadline_after(Instant::now(), timeout);
    let (tx, rx) = crossbeam_channel::bounded(1);
    queue.send_control(make(tx), deadline, false)?;
    await_reply(queue, &rx, deadline)
}

/// Waits for the writer's answer until `deadline`, but not on a writer that is gone or stuck
/// in a system call.
fn await_reply(
    queue: &Queue,
    rx: &crossbeam_channel::Receiver<Result<(), Error>>,
    deadline: Instant,
) -> Result<(), Error> {
    loop {
        let slice = deadline
            .saturating_duration_since(Instant::now())
            .min(REPLY_SLICE);
        match rx.recv_timeout(slice) {
            Ok(res) => return res,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(Error::shut_down())
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= deadline {
            return Err(Error::timed_out("waiting for the writer"));
        }
        if matches!(queue.health.state(), State::Stalled | State::Gone) {
            return Err(queue.unhealthy_error());
        }
    }
}

/// How often a control call waiting for the writer's answer checks the writer's health.
const REPLY_SLICE: Duration = Duration::from_millis(50);

impl FileSinkGuard {
    fn control(&self, make: impl FnOnce(Ack) -> Control) -> Result<(), Error> {
        control(&self.queue, self.cfg.shutdown_timeout, make)
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
        control(&self.queue, timeout, |ack| Control::Flush {
            sync: true,
            ack,
        })?;
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

    /// A snapshot of the sink's counters.
    pub fn stats(&self) -> Stats {
        self.queue.counters.snapshot()
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
    /// A compression still running at the deadline is abandoned at its next step; until that
    /// thread has exited it keeps the directory's lock, so a new sink on the same file gets
    /// [`ErrorKind::Locked`](crate::ErrorKind::Locked) rather than work beside it.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = deadline_after(Instant::now(), timeout);
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(handle) = handle else {
            return Err(Error::shut_down());
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let sent = self
            .queue
            .send_control(Control::Shutdown { deadline, ack: tx }, deadline, true);
        let res = match sent {
            Ok(()) => match rx.recv_deadline(deadline_after(deadline, Duration::from_millis(50))) {
                Ok(res) => {
                    let _ = handle.join();
                    res
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    Err(Error::timed_out("shutdown"))
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    let _ = handle.join();
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
        match (res, self.queue.counters.take_error()) {
            (Ok(()), Some(late)) => Err(late),
            (res, _) => res,
        }
    }
}

impl FileSinkGuard {
    /// A token for a layer or writer of this sink: while one lives, dropping the guard keeps
    /// the sink running (see `exit_hook::Users`).
    pub(crate) fn user(&mut self) -> Arc<crate::exit_hook::Users> {
        if let Some(users) = self.users.upgrade() {
            return users;
        }
        let users = Arc::new(crate::exit_hook::Users::default());
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
