//! The bounded queue between the callers and the writer thread.
//!
//! Bounded twice: in events (the channel's capacity) and in bytes (an atomic count of the
//! bytes waiting), so a burst of huge events cannot exhaust memory. The send path is
//! crossbeam's lock-free array channel plus one atomic add; the writer thread is woken only
//! when it has gone to sleep after a long idle spell, so a caller logging now and then never
//! pays a futex call (see `writer.rs` for the other half of that protocol).

use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

use crate::error::Error;
use crate::health::{Health, State};
use crate::stats::Counters;

/// What a caller does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Wait for room (the default): back-pressure from a writer that is making progress, never
    /// waiting on a dead disk. No event is lost while the writer can write. When the writer is
    /// failing (a full disk, an I/O error, a file it cannot open), stalled (one system call
    /// outstanding longer than [`stall_timeout`](crate::Builder::stall_timeout)) or gone, a
    /// caller that finds the queue full waits at most one slice of 100 ms, once per outage
    /// (not once per event): after that slice every caller finding no room drops its event
    /// at once ("sheds" it) until the writer writes again. Shed events are counted in
    /// [`Stats::events_shed`](crate::Stats::events_shed) and reported by one record in the
    /// log when writing resumes.
    #[default]
    Block,
    /// Never wait: drop the event, count it, and report the count in the log.
    Drop,
    /// Wait at most this long for room, then drop, count and report. In front of a writer
    /// that cannot write, sheds like [`Block`](Overflow::Block).
    BlockFor(Duration),
}

/// Messages to the writer thread, in one FIFO so a flush marker follows every event sent
/// before it.
pub(crate) enum Msg {
    /// A formatted record (one line, newline included) and whether its level asks for fsync.
    Record(Vec<u8>, bool),
    Control(Control),
}

pub(crate) type Ack = Sender<Result<(), Error>>;

pub(crate) enum Control {
    /// Write everything before this marker; with `sync`, fsync it too.
    Flush {
        sync: bool,
        ack: Ack,
    },
    Rotate(Ack),
    Reopen(Ack),
    /// Write everything, sync, close and exit, giving up on a sick disk at `deadline`.
    Shutdown {
        deadline: Instant,
        ack: Ack,
    },
}

impl Control {
    /// Answers a control message the writer will not carry out (it is exiting).
    pub(crate) fn refuse(self) {
        let (Control::Flush { ack, .. }
        | Control::Rotate(ack)
        | Control::Reopen(ack)
        | Control::Shutdown { ack, .. }) = self;
        let _ = ack.send(Err(Error::shut_down()));
    }
}

/// Why a blocking send gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GaveUp {
    /// The writer thread has exited.
    Gone,
    /// The writer is failing or stalled and the one slice of waiting of this outage was spent.
    Shed,
    Deadline,
}

/// How long a waiter keeps waiting in front of a writer that is not healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patience {
    /// A logging call: one slice per outage, then shed.
    Caller,
    /// `flush`, `sync`, `rotate`, `reopen`: one slice, then the writer's error.
    Control,
    /// `shutdown`: until the deadline (the writer may come back and drain the queue).
    Deadline,
}

/// An instant as far ahead as `Instant` can go from `from` (about a century): what a
/// deadline of `Duration::MAX` saturates to.
pub(crate) fn far_future(from: Instant) -> Instant {
    let mut step = Duration::from_secs(100 * 365 * 86_400);
    let mut t = from;
    while !step.is_zero() {
        if let Some(next) = t.checked_add(step) {
            t = next;
        }
        step /= 2;
    }
    t
}

/// Instant + Duration, saturating instead of panicking.
pub(crate) fn deadline_after(from: Instant, d: Duration) -> Instant {
    from.checked_add(d).unwrap_or_else(|| far_future(from))
}

/// How long a waiter waits between checks of the writer's health, and the one slice a
/// caller waits in front of a writer that is not healthy.
const BLOCK_SLICE: Duration = Duration::from_millis(100);

pub(crate) struct Queue {
    tx: Sender<Msg>,
    /// Bytes of *large* records in the channel (see [`Queue::accounted`]).
    bytes: AtomicUsize,
    max_bytes: usize,
    /// Records up to this size are bounded by the channel's capacity alone:
    /// `capacity × small_max ≤ max_bytes / 2`, so they need no shared counter.
    small_max: usize,
    /// What larger records may take: the other half of `max_bytes`.
    large_budget: usize,
    overflow: Overflow,
    /// Callers waiting for byte room, and where they wait.
    space_waiters: AtomicUsize,
    space_lock: Mutex<()>,
    space: Condvar,
    writer: OnceLock<Thread>,
    /// Set by the writer before a long sleep; a caller that sees it wakes the writer.
    pub(crate) sleeping: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) health: Health,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("capacity", &self.tx.capacity())
            .field("len", &self.tx.len())
            .field("bytes", &self.bytes.load(Ordering::Relaxed))
            .field("max_bytes", &self.max_bytes)
            .field("overflow", &self.overflow)
            .finish()
    }
}

impl Queue {
    pub(crate) fn new(
        capacity: usize,
        max_bytes: usize,
        overflow: Overflow,
        stall_after: Duration,
    ) -> (Queue, Receiver<Msg>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        (
            Queue {
                tx,
                bytes: AtomicUsize::new(0),
                max_bytes,
                small_max: max_bytes / (2 * capacity.max(1)),
                large_budget: (max_bytes / 2).max(1),
                overflow,
                space_waiters: AtomicUsize::new(0),
                space_lock: Mutex::new(()),
                space: Condvar::new(),
                writer: OnceLock::new(),
                sleeping: AtomicBool::new(false),
                counters: Counters::default(),
                health: Health::new(stall_after),
            },
            rx,
        )
    }

    pub(crate) fn set_writer(&self, t: Thread) {
        let _ = self.writer.set(t);
    }

    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The bytes a record of `len` bytes counts against the shared byte budget. Typical
    /// records count nothing: their number is bounded by the channel, so their bytes are too,
    /// and a caller skips a contended atomic add. Writer and callers use the same rule.
    #[inline]
    pub(crate) fn accounted(&self, len: usize) -> usize {
        if len <= self.small_max {
            0
        } else {
            len
        }
    }

    fn dropped(&self) {
        self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event the blocking paths gave up on.
    #[cold]
    fn gave_up(&self, why: GaveUp) {
        match why {
            GaveUp::Shed => self.counters.events_shed.fetch_add(1, Ordering::Relaxed),
            GaveUp::Gone | GaveUp::Deadline => {
                self.counters.events_dropped.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// Enqueues one record according to the overflow policy. Never panics, never fails:
    /// an event that cannot be queued is counted as dropped.
    #[inline]
    pub(crate) fn push(&self, record: Vec<u8>, urgent: bool) {
        if self.health.is_gone() {
            self.dropped();
            return;
        }
        let len = self.accounted(record.len());
        if len > 0 {
            if let Err(why) = self.reserve(len) {
                self.gave_up(why);
                return;
            }
        }
        // Fast path for every policy: room in the channel, no clock read, no waiting.
        let sent = match self.tx.try_send(Msg::Record(record, urgent)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(GaveUp::Gone),
            Err(TrySendError::Full(msg)) => match self.overflow {
                Overflow::Drop => Err(GaveUp::Deadline),
                _ => self.send_blocking(msg),
            },
        };
        if let Err(why) = sent {
            self.release(len);
            self.gave_up(why);
            return;
        }
        self.wake_if_sleeping();
    }

    /// Takes `len` bytes of the byte budget. An event always fits into an empty queue, so a
    /// record larger than the budget still goes through.
    #[inline]
    fn reserve(&self, len: usize) -> Result<(), GaveUp> {
        if self.try_reserve(len, Ordering::Relaxed) {
            return Ok(());
        }
        match self.overflow {
            Overflow::Drop => Err(GaveUp::Deadline),
            _ => self.wait_for_room(len),
        }
    }

    #[inline]
    fn try_reserve(&self, len: usize, order: Ordering) -> bool {
        let prev = self.bytes.fetch_add(len, order);
        if prev == 0 || prev.saturating_add(len) <= self.large_budget {
            return true;
        }
        self.bytes.fetch_sub(len, order);
        false
    }

    /// The caller's deadline under its overflow policy (`None`: no deadline).
    fn caller_deadline(&self, started: Instant) -> Option<Instant> {
        match self.overflow {
            Overflow::BlockFor(d) => Some(deadline_after(started, d)),
            _ => None,
        }
    }

    /// Adds a caller's waiting time to [`Stats::blocked_nanos`](crate::Stats::blocked_nanos).
    fn blocked_since(&self, started: Instant) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters
            .blocked_nanos
            .fetch_add(nanos, Ordering::Relaxed);
    }

    #[cold]
    fn wait_for_room(&self, len: usize) -> Result<(), GaveUp> {
        let started = Instant::now();
        self.space_waiters.fetch_add(1, Ordering::SeqCst);
        let res = self.wait_sliced(self.caller_deadline(started), Patience::Caller, |slice| {
            let guard = self.space_lock.lock().unwrap_or_else(|p| p.into_inner());
            if self.try_reserve(len, Ordering::SeqCst) {
                return Some(Ok(()));
            }
            drop(
                self.space
                    .wait_timeout(guard, slice)
                    .unwrap_or_else(|p| p.into_inner()),
            );
            self.try_reserve(len, Ordering::SeqCst).then_some(Ok(()))
        });
        self.space_waiters.fetch_sub(1, Ordering::SeqCst);
        self.blocked_since(started);
        res
    }

    /// Blocking send of a caller's record, under its overflow policy.
    #[cold]
    fn send_blocking(&self, msg: Msg) -> Result<(), GaveUp> {
        let started = Instant::now();
        let res = self
            .send_sliced(msg, self.caller_deadline(started), Patience::Caller)
            .map_err(|(_, why)| why);
        self.blocked_since(started);
        res
    }

    /// Sends a control message, waiting at most until `deadline` for room.
    /// With `patient` false, a full queue in front of a writer that cannot write (full disk)
    /// returns the writer's error after [`BLOCK_SLICE`] instead of waiting for `deadline`.
    pub(crate) fn send_control(
        &self,
        c: Control,
        deadline: Instant,
        patient: bool,
    ) -> Result<(), Error> {
        let patience = if patient {
            Patience::Deadline
        } else {
            Patience::Control
        };
        let res = self.send_sliced(Msg::Control(c), Some(deadline), patience);
        // The writer may be in its deep sleep: a control message must not wait for a caller.
        self.wake();
        match res {
            Ok(()) => Ok(()),
            Err((_, GaveUp::Gone)) => Err(Error::shut_down()),
            Err((_, GaveUp::Shed)) => Err(self.unhealthy_error()),
            Err((_, GaveUp::Deadline)) => Err(Error::timed_out("waiting for room in the queue")),
        }
    }

    /// What a control call reports about a writer that is not healthy.
    pub(crate) fn unhealthy_error(&self) -> Error {
        match self.health.state() {
            State::Gone => Error::shut_down(),
            State::Stalled => Error::timed_out("the writer is stuck in a system call"),
            _ => self
                .counters
                .peek_error()
                .unwrap_or_else(|| Error::timed_out("waiting for room in the queue")),
        }
    }

    fn send_sliced(
        &self,
        msg: Msg,
        deadline: Option<Instant>,
        patience: Patience,
    ) -> Result<(), (Option<Msg>, GaveUp)> {
        let mut slot = Some(msg);
        let res = self.wait_sliced(deadline, patience, |slice| {
            let m = slot.take()?;
            match self.tx.send_timeout(m, slice) {
                Ok(()) => Some(Ok(())),
                Err(SendTimeoutError::Disconnected(m)) => {
                    slot = Some(m);
                    Some(Err(GaveUp::Gone))
                }
                Err(SendTimeoutError::Timeout(m)) => {
                    slot = Some(m);
                    None
                }
            }
        });
        res.map_err(|why| (slot, why))
    }

    /// The one waiting rule, for room in the channel and room in the byte budget alike.
    /// `attempt(slice)` tries for at most `slice` and returns `Some` when done. In front of a
    /// healthy writer the wait goes on (until `deadline`, if any), waking the writer between
    /// slices; in front of a failing or stalled writer it lasts at most one slice, once per
    /// outage for callers; a gone writer ends it at once.
    fn wait_sliced(
        &self,
        deadline: Option<Instant>,
        patience: Patience,
        mut attempt: impl FnMut(Duration) -> Option<Result<(), GaveUp>>,
    ) -> Result<(), GaveUp> {
        // When this waiter first saw the writer unhealthy, and in which outage.
        let mut unhealthy: Option<(Instant, u64)> = None;
        loop {
            let now = Instant::now();
            let mut slice = match deadline {
                Some(d) if d <= now => return Err(GaveUp::Deadline),
                Some(d) => (d - now).min(BLOCK_SLICE),
                None => BLOCK_SLICE,
            };
            match self.health.state() {
                State::Gone => return Err(GaveUp::Gone),
                State::Healthy => unhealthy = None,
                State::Failing | State::Stalled if patience != Patience::Deadline => {
                    let outage = self.health.outage();
                    if patience == Patience::Caller && self.health.shedding(outage) {
                        return Err(GaveUp::Shed);
                    }
                    let (since, seen) = *unhealthy.get_or_insert((now, outage));
                    let waited = now.saturating_duration_since(since);
                    if seen == outage && waited >= BLOCK_SLICE {
                        if patience == Patience::Caller {
                            self.health.start_shedding(outage);
                        }
                        return Err(GaveUp::Shed);
                    }
                    if seen != outage {
                        unhealthy = Some((now, outage));
                    }
                    slice = slice.min(BLOCK_SLICE.saturating_sub(waited));
                }
                State::Failing | State::Stalled => {}
            }
            if let Some(res) = attempt(slice) {
                return res;
            }
            self.wake();
        }
    }

    /// Called by the writer after taking `len` bytes of records out of the channel.
    pub(crate) fn release(&self, len: usize) {
        if len == 0 {
            return;
        }
        self.bytes.fetch_sub(len, Ordering::SeqCst);
        if self.space_waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.space_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.space.notify_all();
        }
    }

    /// Wakes every caller waiting for byte room (the writer is gone: they must see it now).
    pub(crate) fn wake_waiters(&self) {
        let _g = self.space_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.space.notify_all();
    }

    /// The caller's half of the sleep protocol: the SeqCst fence orders our enqueue before
    /// the load of `sleeping`, pairing with the writer's fence between storing `sleeping`
    /// and re-checking the channel. One of the two always sees the other.
    #[inline]
    fn wake_if_sleeping(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.wake_sleeper();
        }
    }

    #[cold]
    fn wake_sleeper(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.counters.caller_wakeups.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = self.writer.get() {
                t.unpark();
            }
        }
    }

    /// Wakes the writer unconditionally (flush, shutdown, a blocked caller).
    pub(crate) fn wake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }
}
