//! Rest: what the writer does between passes.
//!
//! Wake-ups follow the work, never a timer of the writer's own:
//! - records came through the channel (callers fill chunks faster than the writer passes),
//!   something is held for the next pass, or a control message waits: the next pass starts
//!   at once, so batches grow with the load;
//! - events come every few milliseconds: the writer lingers [`LINGER`] without asking to be
//!   woken, so those callers never pay a futex call and their events are visible within about
//!   a millisecond;
//! - otherwise it sleeps until the first caller to append wakes it (one wake-up per event
//!   when events are further apart than [`LINGER_WHILE`]), or the next deadline: time
//!   rotation, `Fsync::Every`, or the retry after a failed write. An idle sink has no timer.
//!   On waking it checks that `<stem>.log` is still its file before it writes (at most once
//!   a second, as while it writes).

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use super::collect::Pass;
use super::Writer;
use crate::clock::mono_now;
use crate::settings::Fsync;

/// How long the writer waits, unasked, for more events while they come often.
const LINGER: Duration = Duration::from_millis(1);
/// Events closer together than this keep the writer lingering.
const LINGER_WHILE: Duration = Duration::from_millis(5);
/// How often a manual clock (tests) is looked at while asleep.
const MANUAL_CLOCK_POLL: Duration = Duration::from_millis(5);

impl Writer {
    pub(super) fn rest(&mut self, pass: Pass) {
        if let Some(f) = &self.failure {
            // Failing: wait for the retry, while still looking at the queue now and then.
            let wait = f
                .retry_at
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50));
            self.park(Some(wait.max(LINGER)));
            return;
        }
        // Are events coming every few milliseconds? Judged by their stamps, not by when
        // the writer got to them, so a writer kept off the CPU for a while does not take a
        // busy stretch for a quiet one.
        if pass.records > 0 {
            let close = match (pass.newest, self.last_event) {
                (Some(n), Some(p)) => n.saturating_sub(p) < LINGER_WHILE.as_nanos() as u64,
                _ => false,
            };
            self.lingering = pass.records > 1 || close;
        } else if self.lingering {
            let since = self
                .last_event
                .map_or(u64::MAX, |p| mono_now().saturating_sub(p));
            self.lingering = since < LINGER_WHILE.as_nanos() as u64;
        }
        if let Some(n) = pass.newest {
            self.last_event = Some(n);
        }
        if pass.busy || !self.controls.is_empty() || !self.runs.is_empty() {
            return;
        }
        if self.lingering {
            self.park(Some(LINGER));
            return;
        }
        self.sleep();
    }

    /// Sleeps until a caller appends, a control message arrives, or the next deadline.
    /// Announces it first, then re-checks the slots and the channel, in that order (see
    /// `Queue::unlock_and_wake` for why no caller is missed).
    fn sleep(&mut self) {
        self.queue.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.slots_hold_data() || !self.rx.is_empty() {
            self.queue.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        self.park(self.next_deadline());
        self.queue.sleeping.store(false, Ordering::SeqCst);
        // While it slept the file may have been moved away (logrotate) or deleted: look
        // before the first write (at most once a second), instead of waking now and then to
        // look.
        let now = Instant::now();
        if now >= self.next_identity_check {
            self.next_identity_check = now + super::IDENTITY_CHECK_EVERY;
            self.check_identity();
        }
    }

    fn park(&self, timeout: Option<Duration>) {
        match timeout {
            Some(t) => std::thread::park_timeout(t),
            None => std::thread::park(),
        }
        self.counters()
            .writer_wakeups
            .fetch_add(1, Ordering::Relaxed);
    }

    /// How long the writer may sleep: until time rotation or a due periodic fsync; `None`
    /// when nothing is due.
    fn next_deadline(&self) -> Option<Duration> {
        let mut wait: Option<Duration> = None;
        let mut at_most = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        if let Some(b) = self.next_boundary {
            at_most(b.duration_since(self.now()).unwrap_or(Duration::ZERO));
        }
        if self.cfg.formatter.clock.is_manual() {
            at_most(MANUAL_CLOCK_POLL);
        }
        if let (Fsync::Every(d), Some(t)) = (self.cfg.fsync, self.last_write) {
            if self.dirty {
                at_most(d.saturating_sub(t.elapsed()));
            }
        }
        wait
    }
}
