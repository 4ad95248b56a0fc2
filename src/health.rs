//! The writer's health: the one state every wait of a caller or a control call consults.
//!
//! - **Healthy**: the writer is writing; a full queue is back-pressure and a `Block` caller
//!   waits for room.
//! - **Failing**: the writer holds data it cannot write or cannot open its file (a full disk,
//!   an I/O error, a symlink planted at the active path); it retries with a jittered backoff.
//! - **Stalled**: one system call of the writer (write, open, rename, close) has been
//!   outstanding longer than the stall timeout (a hung network file system, a paused FUSE
//!   daemon), or an fsync of the writer or of the finisher longer than the fsync stall
//!   timeout (an fsync on slow storage legitimately takes seconds; a write does not).
//! - **Gone**: the writer thread has exited or panicked.
//!
//! The writer publishes only two things: its state (healthy, failing, gone) and when its
//! current system call started (and whether it is an fsync); the finisher publishes the
//! second too. Waiters derive "stalled" from them, so a thread stuck in the kernel needs no
//! help to be recognized as stuck. A finisher stuck in an fsync counts: the writer waits for
//! it once the finisher's work in flight is at its bound, and every flush after a rotation
//! waits for it.
//!
//! Outages are numbered by the writer's progress: `progress` counts completed writes, so a
//! caller can tell "the same outage I already waited for" from "a new one" without a lock.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

thread_local! {
    static SINK_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as one of a sink's own (writer, finisher, maintenance): a
/// control call made from it (the `flush_on_panic` hook of a panic on that thread) would
/// wait for a reply from itself, so it returns at once instead.
pub(crate) fn mark_sink_thread() {
    SINK_THREAD.with(|c| c.set(true));
}

pub(crate) fn on_sink_thread() -> bool {
    SINK_THREAD.with(Cell::get)
}

/// The state of a sink's writer thread, in [`Stats::state`](crate::Stats::state): what a
/// logging call that finds the queue full sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum WriterState {
    /// Writing: a full queue is back-pressure, and a blocking caller waits for room.
    #[default]
    Healthy,
    /// The writer holds data it cannot write, or cannot open its file (a full disk, an I/O
    /// error, a symlink planted at the active path); it retries with a backoff.
    Failing,
    /// A system call of the writer (write, open, rename, close) has been outstanding longer
    /// than the stall timeout (a hung network file system), or an fsync of the writer or of
    /// the finisher longer than the fsync stall timeout.
    Stalled,
    /// The writer thread has exited (shut down) or panicked.
    Gone,
}

impl WriterState {
    /// `"healthy"`, `"failing"`, `"stalled"` or `"gone"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WriterState::Healthy => "healthy",
            WriterState::Failing => "failing",
            WriterState::Stalled => "stalled",
            WriterState::Gone => "gone",
        }
    }
}

impl std::fmt::Display for WriterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a waiter sees.
pub(crate) type State = WriterState;

const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const GONE: u8 = 2;

/// What kind of system call a thread is in: an fsync has its own stall threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Other = 0,
    Fsync = 1,
}

/// The sink's threads whose system calls are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    Writer = 0,
    Finisher = 1,
}

#[derive(Debug)]
pub(crate) struct Health {
    state: AtomicU8,
    /// Per thread (`Who`): nanoseconds since `epoch` (plus one) when its current system call
    /// started, shifted left by one, the low bit set for an fsync; zero when none is
    /// outstanding.
    call_started: [AtomicU64; 2],
    /// Completed writes: changes whenever the writer makes progress.
    progress: AtomicU64,
    /// `progress + 1` of the outage whose one waiting slice has been spent: callers finding
    /// no room during that outage drop at once.
    shedding: AtomicU64,
    epoch: Instant,
    stall_after: Duration,
    fsync_stall_after: Duration,
}

impl Health {
    pub(crate) fn new(stall_after: Duration, fsync_stall_after: Duration) -> Health {
        Health {
            state: AtomicU8::new(HEALTHY),
            call_started: [AtomicU64::new(0), AtomicU64::new(0)],
            progress: AtomicU64::new(0),
            shedding: AtomicU64::new(0),
            epoch: Instant::now(),
            stall_after,
            fsync_stall_after,
        }
    }

    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The state as a waiter sees it now.
    pub(crate) fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            GONE => State::Gone,
            FAILING => State::Failing,
            _ if self.stalled() => State::Stalled,
            _ => State::Healthy,
        }
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.state.load(Ordering::Acquire) == GONE
    }

    fn stalled(&self) -> bool {
        let now = self.nanos(Instant::now());
        self.call_started.iter().any(|c| {
            let v = c.load(Ordering::Acquire);
            if v == 0 {
                return false;
            }
            let limit = if v & 1 == 1 {
                self.fsync_stall_after
            } else {
                self.stall_after
            };
            now.saturating_sub((v >> 1) - 1) >= u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX)
        })
    }

    /// The writer is about to make a system call that may block (not an fsync).
    #[inline]
    pub(crate) fn call_begins(&self) -> Instant {
        self.begins(Who::Writer, Call::Other)
    }

    /// `who` is about to make a system call of kind `call` that may block.
    #[inline]
    pub(crate) fn begins(&self, who: Who, call: Call) -> Instant {
        let now = Instant::now();
        let v = (self.nanos(now).saturating_add(1).min(u64::MAX >> 1) << 1) | call as u64;
        self.call_started[who as usize].store(v, Ordering::Release);
        now
    }

    /// True when a call that started at `started` took long enough to count as a stall.
    pub(crate) fn was_stall(&self, started: Instant) -> bool {
        started.elapsed() >= self.stall_after
    }

    /// The writer's system call returned.
    #[inline]
    pub(crate) fn call_ends(&self) {
        self.ends(Who::Writer);
    }

    /// `who`'s system call returned.
    #[inline]
    pub(crate) fn ends(&self, who: Who) {
        self.call_started[who as usize].store(0, Ordering::Release);
    }

    /// The writer wrote something: callers may wait for room again.
    #[inline]
    pub(crate) fn progressed(&self) {
        self.progress.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn set_healthy(&self) {
        let _ = self
            .state
            .compare_exchange(FAILING, HEALTHY, Ordering::AcqRel, Ordering::Acquire);
    }

    pub(crate) fn set_failing(&self) {
        // Never resurrect a gone writer.
        let _ = self
            .state
            .compare_exchange(HEALTHY, FAILING, Ordering::AcqRel, Ordering::Acquire);
    }

    pub(crate) fn set_gone(&self) {
        self.state.store(GONE, Ordering::Release);
        self.call_started[Who::Writer as usize].store(0, Ordering::Release);
    }

    /// The outage a caller is looking at: the writer's progress so far.
    pub(crate) fn outage(&self) -> u64 {
        self.progress.load(Ordering::Acquire)
    }

    /// True when the waiting slice of `outage` has been spent: drop at once.
    pub(crate) fn shedding(&self, outage: u64) -> bool {
        self.shedding.load(Ordering::Acquire) == outage.wrapping_add(1)
    }

    /// A caller waited one slice in front of a writer that stayed unhealthy through `outage`:
    /// every caller finding no room drops at once until the writer makes progress.
    pub(crate) fn start_shedding(&self, outage: u64) {
        self.shedding
            .store(outage.wrapping_add(1), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_outstanding_past_the_threshold_is_a_stall() {
        let h = Health::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(h.state(), State::Healthy);
        h.call_begins();
        assert_eq!(h.state(), State::Stalled);
        h.call_ends();
        assert_eq!(h.state(), State::Healthy);
        let patient = Health::new(Duration::from_secs(3600), Duration::from_secs(3600));
        patient.call_begins();
        assert_eq!(patient.state(), State::Healthy);
    }

    #[test]
    fn an_fsync_has_its_own_threshold_and_the_finisher_counts() {
        // Writes stall at once, fsyncs only after an hour.
        let h = Health::new(Duration::ZERO, Duration::from_secs(3600));
        h.begins(Who::Writer, Call::Fsync);
        assert_eq!(h.state(), State::Healthy, "a slow fsync is not a stall");
        h.call_ends();
        h.begins(Who::Finisher, Call::Other);
        assert_eq!(h.state(), State::Stalled, "a stuck finisher is a stall");
        h.ends(Who::Finisher);
        assert_eq!(h.state(), State::Healthy);
        let quick = Health::new(Duration::from_secs(3600), Duration::ZERO);
        quick.begins(Who::Finisher, Call::Fsync);
        assert_eq!(quick.state(), State::Stalled);
    }

    #[test]
    fn gone_is_final_and_shedding_ends_with_progress() {
        let h = Health::new(Duration::MAX, Duration::MAX);
        h.set_failing();
        assert_eq!(h.state(), State::Failing);
        let outage = h.outage();
        assert!(!h.shedding(outage));
        h.start_shedding(outage);
        assert!(h.shedding(h.outage()));
        h.progressed();
        assert!(!h.shedding(h.outage()), "progress starts a new outage");
        h.set_gone();
        h.set_failing();
        assert_eq!(h.state(), State::Gone);
    }
}
