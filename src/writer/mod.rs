//! The writer thread, one pass after another:
//!
//! 1. **collect** (`collect.rs`): read the clock, take every thread's open chunk, receive
//!    every full chunk and control message waiting in the channel;
//! 2. **order** (`order.rs`): merge what is in hand by stamp and move everything stamped
//!    before the pass's clock reading into the batch;
//! 3. **write** (`output.rs`): hand the batch to the kernel in as few `write(2)` calls as
//!    possible, splitting it between records where size rotation falls; on an error keep it,
//!    back off and retry;
//! 4. **rotate** (`files.rs`): seal the active file for the finisher thread, open the next,
//!    follow the file when it is moved away or deleted;
//! 5. **answer** (`control.rs`): flush, sync, rotate, reopen and shutdown, each once the pass
//!    after its marker has written everything logged before it;
//! 6. **rest** (`rest.rs`): go on at once while there is work, linger a moment while events
//!    come every few milliseconds, else sleep until a caller, a deadline or a control call
//!    wakes it.
//!
//! The writer's health (`health.rs`) moves between three states, all set here: **healthy**
//! (data reached the kernel: `recovered`), **failing** (a write, open or rename failed:
//! `fail`, retried with backoff) and **gone** (`exit`, `after_panic`). A fourth, **stalled**,
//! is what callers see when one system call has been outstanding too long; the writer does
//! not need to be running to be found in it.

mod collect;
mod control;
mod files;
mod order;
mod output;
mod rest;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;
use tracing::Level;

use crate::config::Config;
use crate::health::Health;
use crate::queue::{Control, Msg, Queue, Slot};
use crate::segment::finish::Finisher;
use crate::segment::Active;
use crate::stats::Counters;

use order::Runs;
use output::Failure;

/// Past this many buffered bytes the writer writes before ordering more.
pub(crate) const BATCH_BYTES: usize = 256 * 1024;
/// The batch buffer's usual capacity: a batch plus a chunk's worth of overshoot.
const BUF_CAPACITY: usize = BATCH_BYTES + 64 * 1024;
/// A batch buffer grown past this (while the disk took nothing) is given back once empty.
const BUF_GROWN: usize = 4 * BUF_CAPACITY;
/// Free chunks the queue keeps once a backlog is written: none. A few kept ones, scattered
/// through the heap, would pin the pages around them (measured: 16 kept, 1 MiB, held 10 MiB
/// resident instead of 4); the next burst allocates its chunks again.
const SPARES_AFTER_OUTAGE: usize = 0;
const IDENTITY_CHECK_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Writer {
    cfg: Arc<Config>,
    queue: Arc<Queue>,
    rx: Receiver<Msg>,

    // collect
    /// The writer's copy of the queue's slots.
    slots: Vec<Arc<Slot>>,
    /// Control messages received, with the pass that received them: each is carried out
    /// after the next pass, whose clock reading comes after the call that sent it.
    controls: VecDeque<(Control, u64)>,
    /// Passes so far.
    pass: u64,
    /// The last pass's clock reading: a control carried out after it covers every record
    /// stamped before it.
    last_below: u64,
    /// Every sender is gone: the layer and the guard were dropped.
    disconnected: bool,

    // order
    /// Records in hand, not yet in the batch.
    runs: Runs,
    /// The stamp of the writer's latest note (its own records are stamped like a thread's).
    notes_key: u64,

    // write
    active: Option<Active>,
    next_seq: u64,
    /// Records in order, not yet handed to the kernel.
    buf: Vec<u8>,
    buf_records: u64,
    buf_internal: u64,
    buf_urgent: bool,
    failure: Option<Failure>,
    /// When the current outage (failing writes or opens) began.
    outage_since: Option<Instant>,
    /// A write failed since memory was last given back: the next time nothing is held, the
    /// backlog of that outage is written and its memory goes back.
    outage_memory: bool,
    /// Data written since the last fsync.
    dirty: bool,
    dir_dirty: bool,
    last_write: Option<Instant>,

    // report
    /// Drops (not counting shed events) already reported in the log.
    drops_reported: u64,
    /// Shed events already reported in the log.
    shed_reported: u64,
    /// Unsynced segments already reported in the log.
    unsynced_reported: u64,
    /// Dropped and shed events per level already reported in the log.
    levels_reported: [u64; 5],

    // rotate
    next_boundary: Option<SystemTime>,
    next_identity_check: Instant,
    /// Finishes sealed segments (fsync, final rename) off this thread.
    finisher: Finisher,
    /// The advisory lock on `<stem>.log.lock`: held exactly as long as this thread may write,
    /// so another sink can take over once it has exited, and never before.
    _lock: Arc<std::fs::File>,
    /// The lock taken again in a directory that was deleted and recreated.
    relock: Option<std::fs::File>,
    /// Data went into the active file since its identity was last checked.
    unverified: bool,
    /// The active file was found deleted after writes into it: the next flush says so.
    lost: Option<crate::error::Error>,

    // rest
    /// The stamp of the newest event a pass found.
    last_event: Option<u64>,
    /// Events come every few milliseconds: wait for the next one without being woken.
    lingering: bool,
}

/// What `build()` hands the writer thread.
pub(crate) struct Start {
    pub(crate) active: Active,
    pub(crate) next_seq: u64,
    pub(crate) finisher: Finisher,
    /// Records of the sink's own to write first (recovery reports).
    pub(crate) notes: Vec<(String, Vec<(&'static str, u64)>)>,
    pub(crate) lock: Arc<std::fs::File>,
}

impl Writer {
    pub(crate) fn new(
        cfg: Arc<Config>,
        queue: Arc<Queue>,
        rx: Receiver<Msg>,
        start: Start,
    ) -> Writer {
        let Start {
            active,
            next_seq,
            finisher,
            notes,
            lock,
        } = start;
        let next_boundary = cfg.rotation.next_boundary(active.opened, cfg.time_zone);
        let adopted = active.size > 0;
        let mut w = Writer {
            cfg,
            queue,
            rx,
            slots: Vec::new(),
            controls: VecDeque::new(),
            pass: 0,
            last_below: 0,
            disconnected: false,
            runs: Runs::default(),
            notes_key: 0,
            active: Some(active),
            next_seq,
            buf: Vec::with_capacity(BUF_CAPACITY),
            buf_records: 0,
            buf_internal: 0,
            buf_urgent: false,
            failure: None,
            outage_since: None,
            outage_memory: false,
            // An adopted active file's data may never have been synced (the previous run may
            // have crashed): finishing it must fsync it.
            dirty: adopted,
            // The active file may have just been created: its directory entry is not durable
            // until the directory is fsynced, so the first sync() must do that too.
            dir_dirty: true,
            last_write: None,
            drops_reported: 0,
            shed_reported: 0,
            unsynced_reported: 0,
            levels_reported: [0; 5],
            next_boundary,
            next_identity_check: Instant::now() + IDENTITY_CHECK_EVERY,
            finisher,
            _lock: lock,
            relock: None,
            unverified: false,
            lost: None,
            last_event: None,
            lingering: false,
        };
        for (msg, fields) in notes {
            w.note(Level::WARN, &msg, &fields);
        }
        w
    }

    fn counters(&self) -> &Counters {
        &self.queue.counters
    }

    fn health(&self) -> &Health {
        &self.queue.health
    }

    fn now(&self) -> SystemTime {
        self.cfg.formatter.now()
    }

    /// The most the writer buffers while it cannot write; past it, the queue fills and the
    /// overflow policy applies.
    fn buf_limit(&self) -> usize {
        self.queue.max_bytes().max(BATCH_BYTES)
    }

    pub(crate) fn run(&mut self) {
        self.queue.set_writer(std::thread::current());
        self.publish_held();
        // A rotation asked for at startup, or owed since before it (a period that ended while
        // the sink was down). Rotating an empty file only moves the time anchor.
        if self.cfg.rotate_on_startup || self.boundary_passed() {
            let _ = self.rotate();
        }
        loop {
            let pass = if self.buf.len() < self.buf_limit() {
                self.pass()
            } else {
                // Full of what the disk does not take: only retry writing.
                collect::Pass::default()
            };
            if self.disconnected {
                let deadline =
                    crate::queue::deadline_after(Instant::now(), self.cfg.shutdown_timeout);
                let _ = self.wind_down(deadline);
                self.exit();
                return;
            }
            if self.carry_out_controls() {
                self.exit();
                return;
            }
            self.report_drops();
            self.write_out();
            self.give_back_memory();
            self.publish_held();
            self.timers();
            self.rest(pass);
        }
    }

    /// Tells `stats()` what the writer holds in memory and the size of the active file.
    fn publish_held(&self) {
        let c = self.counters();
        c.writer_records
            .store(self.runs.records() + self.buf_records, Ordering::Relaxed);
        c.writer_bytes.store(
            (self.runs.bytes() + self.buf.len()) as u64,
            Ordering::Relaxed,
        );
        c.active_bytes.store(
            self.active.as_ref().map_or(0, |a| a.size),
            Ordering::Relaxed,
        );
    }

    /// While the disk took nothing, the batch buffer grew up to the writer's limit and the
    /// queue's free list filled with the chunks of the backlog (about 100 MiB with the default
    /// `queue_bytes`). Once the backlog is written (nothing buffered, in hand or in the
    /// channel), that memory goes back: a service that lived through one outage does not keep
    /// it for the rest of its life. Only after an outage: a writer that merely fell behind a
    /// burst keeps its buffers for the next one (and callers keep logging without
    /// allocating).
    pub(super) fn give_back_memory(&mut self) {
        if !self.outage_memory
            || self.buf.capacity() <= BUF_GROWN
            || !self.buf.is_empty()
            || self.failure.is_some()
            || !self.runs.is_empty()
            || !self.rx.is_empty()
        {
            return;
        }
        self.outage_memory = false;
        self.buf = Vec::with_capacity(BUF_CAPACITY);
        self.runs.shrink();
        self.queue.trim_spares(SPARES_AFTER_OUTAGE);
    }

    /// Writes a record of the sink's own: stamped like a caller's record and ordered with
    /// them, so it lands in the next pass.
    fn note(&mut self, level: Level, message: &str, fields: &[(&str, u64)]) {
        let fmt = self.queue.formatter();
        let mut body = Vec::with_capacity(160);
        let time_at = fmt.internal_body(&mut body, level, message, fields);
        let stamp = fmt.clock.stamp(self.notes_key);
        self.notes_key = stamp.key;
        let mut chunk = crate::queue::Chunk {
            internal: true,
            ..Default::default()
        };
        crate::format::Timed::new(&body, time_at).write(fmt, &mut chunk.data, stamp.wall);
        // The layer's rule for events: at or above the fsync level.
        let urgent = self.cfg.urgent_level().is_some_and(|l| level <= l);
        chunk.mark(stamp.key, urgent);
        self.runs.push(chunk);
    }

    fn report_drops(&mut self) {
        let dropped = self.counters().events_dropped.load(Ordering::Acquire);
        if dropped > self.drops_reported && self.buf.len() < self.buf_limit() {
            let n = dropped - self.drops_reported;
            self.drops_reported = dropped;
            let mut fields = vec![("dropped", n)];
            self.level_fields(&mut fields, n);
            self.note(Level::WARN, "events dropped", &fields);
        }
        let unsynced = self.counters().segments_unsynced.load(Ordering::Relaxed);
        if unsynced > self.unsynced_reported && self.buf.len() < self.buf_limit() {
            let n = unsynced - self.unsynced_reported;
            self.unsynced_reported = unsynced;
            self.note(
                Level::ERROR,
                "fsync failed: segments kept under an .unsynced name, not known to be durable",
                &[("segments", n)],
            );
        }
        // Shed events: one record per outage, once writing has resumed.
        let shed = self.counters().events_shed.load(Ordering::Relaxed);
        if shed > self.shed_reported && self.failure.is_none() && self.active.is_some() {
            let n = shed - self.shed_reported;
            self.shed_reported = shed;
            let outage_ms = self.outage_since.take().map_or(0, |t| {
                u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
            });
            let mut fields = vec![("dropped", n), ("outage_ms", outage_ms)];
            self.level_fields(&mut fields, n);
            self.note(
                Level::WARN,
                "events shed while the writer could not write",
                &fields,
            );
        }
    }

    /// Adds the dropped and shed events per level not reported yet (`"error"` to `"trace"`,
    /// the levels with any) to a report of `n` events, most severe first and never more than
    /// `n` in all. A caller counts an event's level just before the total, so the levels read
    /// after the total may include events the next report's total covers: those wait for it,
    /// and each report's levels add up to at most its own count (less only by events without
    /// a level, such as those the writer gave up). Over all reports the counts are exact.
    fn level_fields(&mut self, fields: &mut Vec<(&'static str, u64)>, n: u64) {
        let now = self.counters().dropped_levels();
        const NAMES: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
        let mut left = n;
        for (i, name) in NAMES.iter().enumerate() {
            let take = (now[i] - self.levels_reported[i]).min(left);
            if take > 0 {
                fields.push((name, take));
                self.levels_reported[i] += take;
                left -= take;
            }
        }
    }

    /// Reports the events the rate limit suppressed that no later event of their callsite
    /// has reported yet (at a flush and at shutdown, so the counts in the log are complete).
    fn report_suppressed(&mut self) {
        let Some(limits) = &self.queue.limits else {
            return;
        };
        let interval_ms = u64::try_from(limits.interval().as_millis()).unwrap_or(u64::MAX);
        let mut found = Vec::new();
        limits.sweep(|meta, n| found.push((crate::limit::message(meta), n)));
        for (message, n) in found {
            self.note(
                Level::WARN,
                &message,
                &[("suppressed", n), ("interval_ms", interval_ms)],
            );
        }
    }
}
