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
use crate::stats::{Counters, EXITED, HEALTHY};

/// What a caller does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Wait for room (the default): no event is lost while the writer can write. A caller never
    /// waits on a writer that cannot write: when the writer is failing (a full disk, an I/O
    /// error) or gone, a caller that found the queue full drops its event after at most
    /// 100 ms, and the drop is counted and reported in the log.
    #[default]
    Block,
    /// Never wait: drop the event, count it, and report the count in the log.
    Drop,
    /// Wait at most this long for room, then drop, count and report.
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

/// Why a blocking send gave up.
enum GaveUp {
    /// The writer thread has exited.
    Gone,
    /// The writer cannot write (full disk, I/O errors).
    Failing,
    Deadline,
}

/// How long a blocked caller waits between checks of the writer's health.
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

    fn writer_state(&self) -> u8 {
        self.counters.writer_state.load(Ordering::Acquire)
    }

    fn dropped(&self) {
        self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Enqueues one record according to the overflow policy. Never panics, never fails:
    /// an event that cannot be queued is counted as dropped.
    #[inline]
    pub(crate) fn push(&self, record: Vec<u8>, urgent: bool) {
        if self.writer_state() == EXITED {
            self.dropped();
            return;
        }
        let len = self.accounted(record.len());
        if len > 0 && !self.reserve(len) {
            self.dropped();
            return;
        }
        // Fast path for every policy: room in the channel, no clock read, no waiting.
        let sent = match self.tx.try_send(Msg::Record(record, urgent)) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(_)) => false,
            Err(TrySendError::Full(msg)) => match self.overflow {
                Overflow::Drop => false,
                Overflow::Block => self.send_blocking(msg, None).is_ok(),
                Overflow::BlockFor(d) => self.send_blocking(msg, Some(Instant::now() + d)).is_ok(),
            },
        };
        if !sent {
            self.release(len);
            self.dropped();
            return;
        }
        self.wake_if_sleeping();
    }

    /// Takes `len` bytes of the byte budget. An event always fits into an empty queue, so a
    /// record larger than the budget still goes through.
    #[inline]
    fn reserve(&self, len: usize) -> bool {
        let prev = self.bytes.fetch_add(len, Ordering::Relaxed);
        if prev == 0 || prev + len <= self.large_budget {
            return true;
        }
        self.bytes.fetch_sub(len, Ordering::Relaxed);
        match self.overflow {
            Overflow::Drop => false,
            Overflow::Block => self.wait_for_room(len, None),
            Overflow::BlockFor(d) => self.wait_for_room(len, Some(Instant::now() + d)),
        }
    }

    #[cold]
    fn wait_for_room(&self, len: usize, deadline: Option<Instant>) -> bool {
        self.space_waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.space_lock.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let ok = loop {
            let prev = self.bytes.fetch_add(len, Ordering::SeqCst);
            if prev == 0 || prev + len <= self.large_budget {
                break true;
            }
            self.bytes.fetch_sub(len, Ordering::SeqCst);
            let state = self.writer_state();
            if state == EXITED || (state != HEALTHY && started.elapsed() >= BLOCK_SLICE) {
                break false;
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(d) if d <= now => break false,
                Some(d) => (d - now).min(BLOCK_SLICE),
                None => BLOCK_SLICE,
            };
            self.wake();
            guard = self
                .space
                .wait_timeout(guard, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        drop(guard);
        self.space_waiters.fetch_sub(1, Ordering::SeqCst);
        ok
    }

    /// Blocking send in slices, so a caller notices a writer that cannot write.
    fn send_blocking(&self, msg: Msg, deadline: Option<Instant>) -> Result<(), Msg> {
        self.send_sliced(msg, deadline, true)
            .map_err(|(msg, _)| msg)
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
        let res = self.send_sliced(Msg::Control(c), Some(deadline), !patient);
        // The writer may be in its deep sleep: a control message must not wait for a caller.
        self.wake();
        match res {
            Ok(()) => Ok(()),
            Err((_, GaveUp::Gone)) => Err(Error::shut_down()),
            Err((_, GaveUp::Failing)) => Err(self
                .counters
                .peek_error()
                .unwrap_or_else(|| Error::timed_out("waiting for room in the queue"))),
            Err((_, GaveUp::Deadline)) => Err(Error::timed_out("waiting for room in the queue")),
        }
    }

    /// The one blocking send: waits for room in slices of [`BLOCK_SLICE`], waking the writer
    /// between them; gives up at `deadline`, when the writer is gone, or (with
    /// `give_up_when_failing`) after one slice in front of a writer that cannot write.
    fn send_sliced(
        &self,
        mut msg: Msg,
        deadline: Option<Instant>,
        give_up_when_failing: bool,
    ) -> Result<(), (Msg, GaveUp)> {
        let started = Instant::now();
        loop {
            let now = Instant::now();
            let slice = match deadline {
                Some(d) if d <= now => return Err((msg, GaveUp::Deadline)),
                Some(d) => (d - now).min(BLOCK_SLICE),
                None => BLOCK_SLICE,
            };
            match self.tx.send_timeout(msg, slice) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Disconnected(m)) => return Err((m, GaveUp::Gone)),
                Err(SendTimeoutError::Timeout(m)) => {
                    msg = m;
                    match self.writer_state() {
                        EXITED => return Err((msg, GaveUp::Gone)),
                        HEALTHY => {}
                        _ if give_up_when_failing && started.elapsed() >= BLOCK_SLICE => {
                            return Err((msg, GaveUp::Failing))
                        }
                        _ => {}
                    }
                    self.wake();
                }
            }
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
