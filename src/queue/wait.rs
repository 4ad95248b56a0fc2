//! Waiting for room: the one rule every blocked caller and control call follows.
//!
//! In front of a healthy writer a `Block` caller waits as long as it takes (back-pressure
//! from a writer that is making progress); in front of a failing, stalled or gone writer the
//! wait is cut short (see [`Overflow::Block`](crate::Overflow::Block)).

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::SendTimeoutError;

use super::chunk::{Ack, Control, Msg, Open, Slot};
use super::{Overflow, Queue};
use crate::error::Error;
use crate::health::State;

/// Why a blocking send gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GaveUp {
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

impl Queue {
    /// Waits, under the caller's overflow policy, until the slot's chunk has room again
    /// (handed over, or collected by the writer). Returns the slot locked.
    #[cold]
    pub(super) fn wait_for_slot<'a>(
        &self,
        slot: &'a Arc<Slot>,
    ) -> Result<MutexGuard<'a, Open>, GaveUp> {
        let started = Instant::now();
        self.space_waiters.fetch_add(1, Ordering::SeqCst);
        let mut locked = None;
        let res = self.wait_sliced(self.caller_deadline(started), Patience::Caller, |slice| {
            // Not under `space_lock`: a failed hand-over releases its byte reservation, which
            // takes that lock.
            let mut open = slot.lock();
            if open.closed || !self.is_full(&open.chunk) {
                locked = Some(open);
                return Some(Ok(()));
            }
            match self.hand_over(&mut open) {
                Ok(()) => {
                    locked = Some(open);
                    return Some(Ok(()));
                }
                Err(GaveUp::Gone) => return Some(Err(GaveUp::Gone)),
                Err(_) => {}
            }
            drop(open);
            let guard = self.space_lock.lock().unwrap_or_else(|p| p.into_inner());
            // The writer takes chunks before it notifies under `space_lock`: a chunk taken
            // since the check above is seen here, a later one wakes the wait.
            if !self.is_full(&slot.lock().chunk) {
                return None;
            }
            drop(
                self.space
                    .wait_timeout(guard, slice)
                    .unwrap_or_else(|p| p.into_inner()),
            );
            None
        });
        self.space_waiters.fetch_sub(1, Ordering::SeqCst);
        self.blocked_since(started);
        res.and_then(|()| locked.ok_or(GaveUp::Gone))
    }

    #[inline]
    pub(super) fn try_reserve(&self, len: usize, order: Ordering) -> bool {
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
        // The writer may be asleep: a control message must not wait for a caller to wake it.
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
            State::Stalled => {
                Error::timed_out("the writer or the finisher is stuck in a system call")
            }
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
}

impl Queue {
    /// Flush (and with `sync`, fsync) through the queue, waiting at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration, sync: bool) -> Result<(), Error> {
        self.call(timeout, |ack| Control::Flush { sync, ack })
    }

    /// Sends a control message and waits for its answer, never longer than `timeout`.
    pub(crate) fn call(
        &self,
        timeout: Duration,
        make: impl FnOnce(Ack) -> Control,
    ) -> Result<(), Error> {
        let queue = self;
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
