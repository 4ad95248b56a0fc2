//! The finisher thread: makes sealed segments durable off the writer's path.
//!
//! Rotation on the writer thread is two cheap metadata operations: rename `<stem>.log` to the
//! segment's *pending* name (`<segment>.log.pending`) and create a new `<stem>.log`. The fsync
//! of the sealed file, its rename to the final segment name (never replacing anything) and the
//! fsync of the directory happen here, so a slow disk never stalls the writer (and, through a
//! full queue, the callers). A file carries a final segment name only once its data is
//! durable; a crash leaves at most `.pending` files, which startup recovery finishes. A
//! segment whose fsync failed (here or on the writer) is never retried as if safe: it is
//! renamed to its *unsynced* name (`<segment>.log.unsynced`) instead, and the writer reports
//! it in the log.
//!
//! A finisher stuck in the kernel (an fsync on a hung disk) must not hide the problem: its
//! work in flight is bounded ([`JOBS_IN_FLIGHT`] jobs, each sealed segment holding one open
//! descriptor), so the writer waits for it at the next rotation instead of sealing segment
//! after segment, and its system calls are watched like the writer's (`health::Who::Finisher`):
//! one outstanding past the stall timeout (the fsync stall timeout for an fsync) makes the
//! sink stalled, so `Block` callers shed and a flush waiting for the finisher returns.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::error::Error;
use crate::fs::FileHandle;
use crate::health::{Call, Health, Who};
use crate::queue::{Ack, Queue};

/// Jobs waiting for the finisher besides the one it is working on: with more, the writer
/// waits to hand over the next one.
pub(crate) const JOBS_IN_FLIGHT: usize = 2;

pub(crate) enum Job {
    /// Finish one sealed segment: fsync it when `sync`. `unsynced` when an fsync of this file
    /// already failed: it is never retried as if the data were then safe.
    Seal {
        pending: PathBuf,
        fin: PathBuf,
        file: Box<dyn FileHandle>,
        sync: bool,
        unsynced: bool,
    },
    /// Answer once every segment sealed before has been finished: `Ok`, or the sink's last
    /// error.
    Barrier(Ack),
}

pub(crate) struct Finisher {
    tx: Option<Sender<Job>>,
    /// Segments sealed and not yet finished.
    in_flight: Arc<AtomicUsize>,
    done: Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

impl Finisher {
    /// `lock` is the sink's directory lock, held by this thread until it exits: it may
    /// outlive the writer (a writer panic, a shutdown deadline) while it still renames
    /// segments, and a new sink must not recover the directory meanwhile.
    pub(crate) fn start(
        cfg: Arc<Config>,
        queue: Arc<Queue>,
        notify: Option<Sender<()>>,
        lock: Arc<std::fs::File>,
    ) -> Result<Finisher, Error> {
        let (tx, rx) = crossbeam_channel::bounded(JOBS_IN_FLIGHT);
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let dir = cfg.dir.clone();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let count = in_flight.clone();
        let handle = std::thread::Builder::new()
            .name(format!("filesink-{}-finish", cfg.stem))
            .spawn(move || {
                crate::health::mark_sink_thread();
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(&cfg, &queue, notify.as_ref(), &rx, &count)
                }));
                if ran.is_err() {
                    // Sealed segments left `.pending` are finished by the next start; every
                    // flush waiting on this thread gets an error from now on.
                    queue.counters.error(Error::panicked("finisher"));
                }
                drop(lock);
                let _ = done_tx.send(());
            })
            .map_err(|e| Error::io("spawn finisher thread", &dir, e))?;
        Ok(Finisher {
            tx: Some(tx),
            in_flight,
            done,
            handle: Some(handle),
        })
    }

    /// True while some sealed segment is not finished yet.
    pub(crate) fn busy(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 0
    }

    /// Hands a job over; waits while [`JOBS_IN_FLIGHT`] are waiting already (the finisher's
    /// own stall, if it is stuck, is what the sink's health shows meanwhile).
    pub(crate) fn send(&self, job: Job) {
        if matches!(job, Job::Seal { .. }) {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(tx) = &self.tx {
            if let Err(e) = tx.send(job) {
                // The thread is gone (it never exits before `stop`); answer a barrier anyway.
                if let Job::Barrier(ack) = e.into_inner() {
                    let _ = ack.send(Err(Error::shut_down()));
                }
            }
        }
    }

    /// Finishes everything sealed so far, then stops, waiting at most until `deadline`.
    pub(crate) fn stop(&mut self, deadline: Instant) -> bool {
        self.tx = None;
        if self.done.recv_deadline(deadline).is_ok() {
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
            true
        } else {
            false
        }
    }
}

fn run(
    cfg: &Config,
    queue: &Queue,
    notify: Option<&Sender<()>>,
    rx: &Receiver<Job>,
    in_flight: &AtomicUsize,
) {
    let c = &queue.counters;
    for job in rx.iter() {
        match job {
            Job::Barrier(ack) => {
                let res = match c.take_error() {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
                let _ = ack.send(res);
            }
            Job::Seal {
                pending,
                fin,
                file,
                sync,
                unsynced,
            } => {
                finish(cfg, queue, pending, fin, file, (sync, unsynced), notify);
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// One system call of the finisher, watched for a stall.
fn call<T>(health: &Health, kind: Call, f: impl FnOnce() -> T) -> T {
    health.begins(Who::Finisher, kind);
    let res = f();
    health.ends(Who::Finisher);
    res
}

fn finish(
    cfg: &Config,
    queue: &Queue,
    pending: PathBuf,
    fin: PathBuf,
    mut file: Box<dyn FileHandle>,
    (sync, mut unsynced): (bool, bool),
    notify: Option<&Sender<()>>,
) {
    let (c, health) = (&queue.counters, &queue.health);
    if sync && !unsynced {
        let res = call(health, Call::Fsync, || file.sync());
        c.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = res {
            // Never retried as if safe.
            c.write_errors.fetch_add(1, Ordering::Relaxed);
            c.error(Error::io("fsync", &pending, e));
            unsynced = true;
        }
    }
    call(health, Call::Other, || drop(file));
    if unsynced {
        let target = crate::segment::name::unsynced(&fin);
        match call(health, Call::Other, || {
            cfg.fs.rename_noreplace(&pending, &target)
        }) {
            Ok(()) => {
                c.segments_unsynced.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                c.write_errors.fetch_add(1, Ordering::Relaxed);
                c.error(Error::io("rename unsynced segment", &target, e));
            }
        }
        return;
    }
    if let Err(e) = call(health, Call::Other, || {
        cfg.fs.rename_noreplace(&pending, &fin)
    }) {
        // Left pending; the next start finishes it.
        c.write_errors.fetch_add(1, Ordering::Relaxed);
        c.error(Error::io("rename sealed segment", &fin, e));
        return;
    }
    c.rotations.fetch_add(1, Ordering::Relaxed);
    let res = call(health, Call::Fsync, || cfg.fs.sync_dir(&cfg.dir));
    c.fsyncs.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = res {
        c.write_errors.fetch_add(1, Ordering::Relaxed);
        c.error(Error::io("fsync directory", &cfg.dir, e));
    }
    if let Some(n) = notify {
        let _ = n.try_send(());
    }
}
