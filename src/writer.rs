//! The writer thread: drain the queue, write batches into the active file, rotate,
//! acknowledge flushes, survive I/O errors.
//!
//! Batching: every full chunk in the channel and every thread's open chunk is copied into one
//! buffer and handed to the kernel with one `write(2)` (more only past [`BATCH_BYTES`]), so
//! under load each write carries tens or hundreds of KiB. When nothing is waiting, whatever is
//! buffered is written at once.
//!
//! Order: a thread's chunks reach the writer in the order it filled them, through the channel
//! or collected from its slot. The writer collects a slot only while none of its chunks is in
//! the channel (`sent == received`, read under the slot's lock, and a caller sends only under
//! that lock), so an open chunk is never written before a full chunk filled earlier.
//!
//! Sleeping: after the queue goes empty the writer naps [`NAP`] at a time without asking to be
//! woken, so callers logging every millisecond or so never pay a futex wake-up. Only after
//! [`DEEP_SLEEP_AFTER`] of idleness does it set `sleeping` and park until a caller, a timer
//! (time rotation, periodic fsync) or a control message wakes it.

use std::io::{self, Write as _};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, TryRecvError};
use tracing::Level;

use crate::config::Config;
use crate::error::Error;
use crate::health::Health;
use crate::queue::{Ack, Chunk, Control, Msg, Queue, Slot};
use crate::segment::finish::{Finisher, Job};
use crate::segment::{self, Active};
use crate::stats::Counters;

/// When the writer fsyncs the active file. Finalization (rotation) always fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fsync {
    /// Leave it to the kernel (the default); `guard.sync()` fsyncs on demand.
    #[default]
    Never,
    /// At most this long after a write.
    Every(Duration),
    /// After every batch holding a record at this level or more severe (`Level::ERROR` syncs
    /// batches with errors).
    OnLevel(Level),
    /// After every batch.
    Always,
}

impl Fsync {
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Fsync::Every(d) if d.is_zero() => Err("Fsync::Every needs a non-zero interval".into()),
            _ => Ok(()),
        }
    }
}

/// Past this many buffered bytes the writer writes before draining more.
pub(crate) const BATCH_BYTES: usize = 256 * 1024;
/// An open chunk this large is taken whole (its buffer swapped for an empty one) rather than
/// copied out under its lock: a busy thread's lock is held for a swap, not a long copy.
const SWAP_AT: usize = 8 * 1024;
const NAP: Duration = Duration::from_millis(1);
const DEEP_SLEEP_AFTER: u32 = 50;
const DEEP_SLEEP_MAX: Duration = Duration::from_secs(1);
const IDENTITY_CHECK_EVERY: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

pub(crate) struct Writer {
    cfg: Arc<Config>,
    queue: Arc<Queue>,
    rx: Receiver<Msg>,
    active: Option<Active>,
    next_seq: u64,
    /// Records not yet handed to the kernel.
    buf: Vec<u8>,
    buf_records: u64,
    buf_internal: u64,
    buf_urgent: bool,
    /// Drops (not counting shed events) already reported in the log.
    drops_reported: u64,
    /// Shed events already reported in the log.
    shed_reported: u64,
    /// Unsynced segments already reported in the log.
    unsynced_reported: u64,
    /// When the current outage (failing writes or opens) began.
    outage_since: Option<Instant>,
    /// Data written since the last fsync.
    dirty: bool,
    dir_dirty: bool,
    last_write: Option<Instant>,
    next_boundary: Option<SystemTime>,
    next_identity_check: Instant,
    failure: Option<Failure>,
    /// Finishes sealed segments (fsync, final rename) off this thread.
    finisher: Finisher,
    idle_naps: u32,
    /// The advisory lock on `<stem>.log.lock`: held exactly as long as this thread may write,
    /// so another sink can take over once it has exited, and never before.
    _lock: Arc<std::fs::File>,
    /// The lock taken again in a directory that was deleted and recreated.
    relock: Option<std::fs::File>,
    /// Data went into the active file since its identity was last checked.
    unverified: bool,
    /// The active file was found deleted after writes into it: the next flush says so.
    lost: Option<Error>,
    /// Messages for the log that could not be written yet (recovery reports).
    pending_notes: Vec<(String, Vec<(&'static str, u64)>)>,
    /// The writer's copy of the queue's slots.
    slots: Vec<Arc<Slot>>,
    /// Flushes, rotations and reopens waiting for chunks that were still in the channel
    /// behind their marker.
    pending: Vec<Pending>,
}

/// A flush (or rotation, or reopen: each applies to every event logged before it) whose
/// marker was dequeued while some slots had chunks in the channel behind it: events logged
/// before the call may be in those chunks, or still in the slot. Each such slot is done once
/// the writer has received one more chunk of it than was sent at the marker (that chunk began
/// with the slot's contents at the marker), or has found it with no chunk in the channel and
/// collected it.
struct Pending {
    control: Control,
    /// (slot, chunks it had sent at the marker, its `synced` count at the marker).
    waiting: Vec<(Arc<Slot>, u64, u64)>,
}

struct Failure {
    backoff: Duration,
    retry_at: Instant,
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
        Writer {
            cfg,
            queue,
            rx,
            active: Some(active),
            next_seq,
            buf: Vec::with_capacity(BATCH_BYTES + 64 * 1024),
            buf_records: 0,
            buf_internal: 0,
            buf_urgent: false,
            drops_reported: 0,
            shed_reported: 0,
            unsynced_reported: 0,
            outage_since: None,
            // An adopted active file's data may never have been synced (the previous run may
            // have crashed): finishing it must fsync it.
            dirty: adopted,
            // The active file may have just been created: its directory entry is not durable
            // until the directory is fsynced, so the first sync() must do that too.
            dir_dirty: true,
            last_write: None,
            next_boundary,
            next_identity_check: Instant::now() + IDENTITY_CHECK_EVERY,
            failure: None,
            finisher,
            idle_naps: 0,
            pending_notes: notes,
            _lock: lock,
            relock: None,
            unverified: false,
            lost: None,
            slots: Vec::new(),
            pending: Vec::new(),
        }
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
        // A rotation asked for at startup, or owed since before it (a period that ended while
        // the sink was down). Rotating an empty file only moves the time anchor.
        if self.cfg.rotate_on_startup || self.boundary_passed() {
            let _ = self.rotate();
        }
        for (msg, fields) in std::mem::take(&mut self.pending_notes) {
            self.note(Level::WARN, &msg, &fields);
        }
        loop {
            let mut progressed = false;
            let mut freed = 0usize;
            let mut drained = 0u64;
            let mut records = 0u64;
            // The high-water marks count what was waiting when the pass began, and again
            // after each batch the pass writes: callers refill the channel while a batch is
            // written, and what the whole pass drains can be far more than the queue ever held
            // at once (on a slow disk one pass can drain a whole burst).
            let mut waiting = self.rx.len();
            while self.buf.len() < self.buf_limit() {
                match self.rx.try_recv() {
                    Ok(Msg::Chunk(chunk, slot)) => {
                        freed += self.queue.accounted(chunk.data.len());
                        if waiting > 0 {
                            waiting -= 1;
                            drained += chunk.data.len() as u64;
                            records += chunk.records;
                        }
                        let wrote = self.received(chunk, slot.as_deref());
                        progressed = true;
                        if wrote {
                            self.raise_high_water(records, drained);
                            (records, drained) = (0, 0);
                            waiting = self.rx.len();
                        }
                    }
                    Ok(Msg::Control(c)) => {
                        waiting = waiting.saturating_sub(1);
                        self.queue.release(std::mem::take(&mut freed));
                        progressed = true;
                        if self.control(c) {
                            self.exit();
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        // Every sender is gone: the layer and the guard were dropped.
                        self.queue.release(freed);
                        let _ = self.wind_down(crate::queue::deadline_after(
                            Instant::now(),
                            self.cfg.shutdown_timeout,
                        ));
                        self.exit();
                        return;
                    }
                }
            }
            self.queue.release(freed);
            let (bytes, taken, _) = self.collect_slots(false, None);
            if taken > 0 {
                progressed = true;
            }
            if progressed {
                self.queue.notify_space();
            }
            self.check_pending();
            self.raise_high_water(records + taken, drained + bytes);
            self.report_drops();
            self.write_out();
            self.timers();
            if progressed {
                self.idle_naps = 0;
            } else {
                self.idle();
            }
        }
    }

    /// A chunk out of the channel. True when the batch was written out meanwhile.
    fn received(&mut self, chunk: Chunk, slot: Option<&Slot>) -> bool {
        if let Some(slot) = slot {
            slot.received.fetch_add(1, Ordering::Relaxed);
        }
        self.append_chunk(chunk)
    }

    /// `records` events of `bytes` bytes were waiting at once.
    fn raise_high_water(&self, records: u64, bytes: u64) {
        Counters::raise(&self.counters().queue_high_water, records);
        Counters::raise(&self.counters().queue_bytes_high_water, bytes);
    }

    /// Adds whole records to the batch. A batch that crosses the size limit is split at a
    /// record boundary when it is written (`fitting_prefix`). True when the batch reached
    /// its size and was written out.
    fn append_chunk(&mut self, chunk: Chunk) -> bool {
        self.buf.extend_from_slice(&chunk.data);
        self.buf_records += chunk.records;
        self.buf_urgent |= chunk.urgent;
        self.queue.recycle(chunk.data);
        if self.buf.len() < BATCH_BYTES {
            return false;
        }
        self.write_out();
        true
    }

    /// Takes the open chunk of every slot that has none in the channel (stopping at the
    /// buffer limit unless `all`). With `waiting`, lists the slots that do have chunks in the
    /// channel and some data. Returns the bytes and records taken, and whether any slot was
    /// left with data.
    fn collect_slots(
        &mut self,
        all: bool,
        mut waiting: Option<&mut Vec<(Arc<Slot>, u64, u64)>>,
    ) -> (u64, u64, bool) {
        if self.queue.slots_changed.swap(false, Ordering::SeqCst) {
            self.slots = self.queue.slots(&[]);
        }
        let (mut bytes, mut records, mut left) = (0u64, 0u64, false);
        let mut gone = Vec::new();
        for i in 0..self.slots.len() {
            if !all && self.buf.len() >= self.buf_limit() {
                left = true;
                break;
            }
            let chunk = {
                let slot = &self.slots[i];
                let mut open = slot.lock();
                let synced = slot.synced.load(Ordering::Relaxed);
                if open.sent != slot.received.load(Ordering::Relaxed) {
                    if let Some(w) = waiting.as_deref_mut() {
                        w.push((slot.clone(), open.sent, synced));
                    }
                    left = true;
                    continue;
                }
                slot.synced.store(synced + 1, Ordering::Relaxed);
                if open.chunk.records == 0 {
                    // Only this list and the queue's hold it: its thread has exited.
                    if Arc::strong_count(slot) == 2 {
                        gone.push(slot.clone());
                    }
                    continue;
                }
                bytes += open.chunk.data.len() as u64;
                records += open.chunk.records;
                if open.chunk.data.len() < SWAP_AT {
                    // Copied out, so the slot keeps its own buffer, no larger than its thread
                    // needs between two passes.
                    self.buf.extend_from_slice(&open.chunk.data);
                    self.buf_records += open.chunk.records;
                    self.buf_urgent |= open.chunk.urgent;
                    open.chunk.clear();
                    None
                } else {
                    Some(std::mem::replace(&mut open.chunk, self.queue.spare()))
                }
            };
            match chunk {
                Some(chunk) => {
                    self.append_chunk(chunk);
                }
                None if self.buf.len() >= BATCH_BYTES => {
                    self.write_out();
                }
                None => {}
            }
        }
        if !gone.is_empty() {
            self.slots = self.queue.slots(&gone);
        }
        (bytes, records, left)
    }

    /// Carries out the waiting controls whose slots are all done, in order (all of them if the
    /// writer cannot write: they report its error).
    fn check_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let failing = self.failure.is_some();
        for p in &mut self.pending {
            p.waiting.retain(|(slot, sent, synced)| {
                slot.received.load(Ordering::Relaxed) <= *sent
                    && slot.synced.load(Ordering::Relaxed) == *synced
            });
        }
        while let Some(p) = self.pending.first() {
            if !p.waiting.is_empty() && !failing {
                break;
            }
            let p = self.pending.remove(0);
            self.carry_out(p.control);
        }
    }

    /// Adds one record to the batch, rotating first if it would overflow the size limit.
    fn append(&mut self, rec: &[u8], urgent: bool, internal: bool) {
        let size = self.active.as_ref().map_or(0, |a| a.size);
        if self.failure.is_none()
            && self
                .cfg
                .rotation
                .size_exceeded(size + self.buf.len() as u64, rec.len() as u64)
            && self.write_out()
        {
            let _ = self.rotate();
        }
        self.buf.extend_from_slice(rec);
        self.buf_records += 1;
        if internal {
            self.buf_internal += 1;
        }
        self.buf_urgent |= urgent;
        if self.buf.len() >= BATCH_BYTES {
            self.write_out();
        }
    }

    /// Writes a record of the sink's own into the batch.
    fn note(&mut self, level: Level, message: &str, fields: &[(&str, u64)]) {
        let mut rec = Vec::with_capacity(160);
        self.cfg
            .formatter
            .internal_record(&mut rec, level, message, fields);
        self.append(
            &rec,
            // The layer's rule for events: at or above the fsync level.
            self.cfg.urgent_level().is_some_and(|l| level <= l),
            true,
        );
    }

    fn report_drops(&mut self) {
        let dropped = self.counters().events_dropped.load(Ordering::Relaxed);
        if dropped > self.drops_reported && self.buf.len() < self.buf_limit() {
            let n = dropped - self.drops_reported;
            self.drops_reported = dropped;
            self.note(Level::WARN, "events dropped", &[("dropped", n)]);
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
            self.note(
                Level::WARN,
                "events shed while the writer could not write",
                &[("dropped", n), ("outage_ms", outage_ms)],
            );
        }
    }

    /// Hands the batch to the kernel. Returns true when nothing is left buffered.
    ///
    /// A batch that would cross the size limit (chunks arrive whole; after an outage it may
    /// hold several segments' worth) is split at record boundaries and rotated between the
    /// parts.
    fn write_out(&mut self) -> bool {
        let mut split = true;
        loop {
            if !self.ready() {
                return false;
            }
            let end = if split {
                self.fitting_prefix()
            } else {
                self.buf.len()
            };
            if end > 0 && !self.write_prefix(end) {
                return false;
            }
            if self.buf.is_empty() {
                return true;
            }
            // The rest belongs to the next segment.
            let sealed = self.finish_segment(true);
            if self.active.is_none() {
                return false;
            }
            if sealed.is_err() {
                // Could not seal: keep everything in the current file rather than lose it.
                split = false;
            }
        }
    }

    /// How much of the batch fits into the active file before size rotation is due: all of
    /// it while it fits, else its records up to the last newline that does (chunks reach
    /// the batch whole, so this is where events' size rotation happens; `append` rotates
    /// before the sink's own records).
    fn fitting_prefix(&self) -> usize {
        let (Some(limit), Some(active)) = (self.cfg.rotation.size, self.active.as_ref()) else {
            return self.buf.len();
        };
        if active.size.saturating_add(self.buf.len() as u64) <= limit {
            return self.buf.len();
        }
        let room = usize::try_from(limit.saturating_sub(active.size)).unwrap_or(usize::MAX);
        let room = room.min(self.buf.len());
        match self.buf[..room].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            // An oversized first record gets a segment of its own.
            None if active.size == 0 => self
                .buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.buf.len(), |i| i + 1),
            None => 0,
        }
    }

    /// True when the writer may write now: not waiting out a backoff, and with an open file
    /// (reopened here after a failure).
    fn ready(&mut self) -> bool {
        if let Some(f) = &self.failure {
            if Instant::now() < f.retry_at {
                return false;
            }
        }
        self.active.is_some() || self.open_fresh().is_ok()
    }

    /// Writes `buf[..end]` (whole records). Returns true when all of it was written.
    fn write_prefix(&mut self, end: usize) -> bool {
        let Some(active) = self.active.as_mut() else {
            return false;
        };
        let health = &self.queue.health;
        let mut written = 0;
        let result = loop {
            if written == end {
                break Ok(());
            }
            let started = health.call_begins();
            let res = active.file.write(&self.buf[written..end]);
            health.call_ends();
            if health.was_stall(started) {
                // A stalled write is an outage too: the shed report says how long it lasted.
                self.outage_since.get_or_insert(started);
            }
            match res {
                Ok(0) => break Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => {
                    written += n;
                    active.size += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if written > 0 {
            self.dirty = true;
            self.unverified = true;
            self.last_write = Some(Instant::now());
            self.counters()
                .bytes_written
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        match result {
            Ok(()) if end == self.buf.len() => {
                self.counters()
                    .records_written
                    .fetch_add(self.buf_records, Ordering::Relaxed);
                self.counters()
                    .internal_records
                    .fetch_add(self.buf_internal, Ordering::Relaxed);
                self.buf.clear();
                self.buf_records = 0;
                self.buf_internal = 0;
                self.recovered();
                let urgent = std::mem::take(&mut self.buf_urgent);
                if urgent || self.cfg.fsync == Fsync::Always {
                    let _ = self.sync_active();
                }
                true
            }
            Ok(()) => {
                // Part of a batch split for size rotation; its internal records are counted
                // with the last part.
                let lines = self.buf[..end].iter().filter(|&&b| b == b'\n').count() as u64;
                self.counters()
                    .records_written
                    .fetch_add(lines, Ordering::Relaxed);
                self.buf_records = self.buf_records.saturating_sub(lines);
                self.buf.drain(..end);
                self.recovered();
                true
            }
            Err(e) => {
                // A partly written record is cut back off the file (never leave a torn last
                // line while the disk is full) and kept whole for the retry.
                let complete = self.buf[..written]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                if complete < written {
                    if let Some(a) = self.active.as_mut() {
                        let cut = (written - complete) as u64;
                        health.call_begins();
                        let res = a.file.set_len(a.size - cut);
                        health.call_ends();
                        if res.is_ok() {
                            a.size -= cut;
                            written = complete;
                        }
                    }
                }
                // Keep the unwritten rest: the retry writes it.
                let done = &self.buf[..written];
                let lines = done.iter().filter(|&&b| b == b'\n').count() as u64;
                self.counters()
                    .records_written
                    .fetch_add(lines, Ordering::Relaxed);
                self.buf_records = self.buf_records.saturating_sub(lines);
                self.buf.drain(..written);
                if written > 0 {
                    self.health().progressed();
                }
                let path = self.cfg.active_path.clone();
                self.fail(Error::io("write", &path, e));
                false
            }
        }
    }

    /// Data reached the kernel: the outage, if any, is over.
    fn recovered(&mut self) {
        self.health().progressed();
        if self.failure.take().is_some() {
            self.health().set_healthy();
        }
    }

    fn fail(&mut self, err: Error) {
        self.counters().write_errors.fetch_add(1, Ordering::Relaxed);
        self.counters().error(err);
        let backoff = match &self.failure {
            Some(f) => (f.backoff * 2).min(BACKOFF_MAX),
            None => BACKOFF_MIN,
        };
        // Jitter of up to a quarter, so sinks on one sick disk do not retry in lockstep.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0) as u64;
        let jitter = Duration::from_nanos(nanos % (backoff.as_nanos() as u64 / 4 + 1));
        let now = Instant::now();
        self.outage_since.get_or_insert(now);
        self.failure = Some(Failure {
            backoff,
            retry_at: now + backoff + jitter,
        });
        self.health().set_failing();
    }

    /// fsync of the active file, and of the directory when its entries changed. A failed
    /// fsync is never retried as if the data were then safe: the segment is finished as it is
    /// and a new one started.
    fn sync_active(&mut self) -> Result<(), Error> {
        let Some(active) = self.active.as_mut() else {
            return Err(self
                .counters()
                .peek_error()
                .unwrap_or_else(Error::shut_down));
        };
        if self.dirty {
            self.queue.health.call_begins();
            let res = active.file.sync();
            self.queue.health.call_ends();
            // Counted once made: a count read after it never runs ahead of the system call.
            self.queue.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = res {
                let err = Error::io("fsync", &self.cfg.active_path, e);
                self.counters().write_errors.fetch_add(1, Ordering::Relaxed);
                self.counters().error(err.clone());
                self.dirty = false;
                let _ = self.finish_segment(false);
                return Err(err);
            }
            self.dirty = false;
        }
        if self.dir_dirty {
            self.health().call_begins();
            let res = self.cfg.fs.sync_dir(&self.cfg.dir);
            self.health().call_ends();
            self.queue.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            res.map_err(|e| Error::io("fsync directory", &self.cfg.dir, e))?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    fn boundary_passed(&self) -> bool {
        self.next_boundary.is_some_and(|b| self.now() >= b)
    }

    /// Rotation: only between records, with the batch written out first.
    fn rotate(&mut self) -> Result<(), Error> {
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
    fn finish_segment(&mut self, sync_first: bool) -> Result<(), Error> {
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
    fn reopen(&mut self) -> Result<(), Error> {
        if !self.write_out() {
            return Err(self
                .counters()
                .peek_error()
                .unwrap_or_else(|| Error::timed_out("writing before reopen")));
        }
        if let Some(mut old) = self.active.take() {
            if self.dirty {
                let _ = old.file.sync();
                self.dirty = false;
            }
        }
        self.open_fresh()
    }

    /// Opens `<stem>.log`, creating the directory if it is gone. A failure (a symlink planted
    /// at the path, a full disk, EMFILE, a directory that cannot be recreated) is a failure of
    /// the writer like a failed write: same backoff, same state, retried by the next write.
    fn open_fresh(&mut self) -> Result<(), Error> {
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
        let opened = opened.and_then(|a| match cfg.fs.identity(&lock_path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.relock = Some(crate::guard::take_lock(&cfg)?);
                Ok(a)
            }
            _ => Ok(a),
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
    fn timers(&mut self) {
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
    fn check_identity(&mut self) {
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
                self.active = None;
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

    fn idle(&mut self) {
        if let Some(f) = &self.failure {
            let wait = f
                .retry_at
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50));
            std::thread::park_timeout(wait.max(NAP));
            return;
        }
        if self.idle_naps < DEEP_SLEEP_AFTER {
            self.idle_naps += 1;
            std::thread::park_timeout(NAP);
            return;
        }
        // Deep sleep: announce it, then re-check the slots and the queue, in that order (see
        // `Queue::wake_if_sleeping` for why no caller is missed).
        self.queue.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.slots_hold_data() || !self.rx.is_empty() {
            self.queue.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        let mut wait = DEEP_SLEEP_MAX;
        if let Some(b) = self.next_boundary {
            let until = b.duration_since(self.now()).unwrap_or(Duration::ZERO);
            wait = wait.min(until);
        }
        if self.cfg.formatter.clock.is_manual() {
            wait = wait.min(Duration::from_millis(5));
        }
        if let (Fsync::Every(d), Some(t)) = (self.cfg.fsync, self.last_write) {
            if self.dirty {
                wait = wait.min(d.saturating_sub(t.elapsed()));
            }
        }
        std::thread::park_timeout(wait);
        self.queue.sleeping.store(false, Ordering::SeqCst);
    }

    /// True when a slot holds records (the deep-sleep re-check). Reads the list of slots
    /// under its lock and takes every slot's lock: that is what orders the check after any
    /// caller's append that did not see `sleeping`.
    fn slots_hold_data(&mut self) -> bool {
        self.queue.slots_changed.store(false, Ordering::SeqCst);
        self.slots = self.queue.slots(&[]);
        self.slots.iter().any(|s| s.lock().chunk.records > 0)
    }

    /// Handles a control message; returns true when the writer must exit.
    fn control(&mut self, c: Control) -> bool {
        if let Control::Shutdown { deadline, ack } = c {
            let res = self.wind_down(deadline);
            // Everything queued has been written (or given up on): so has what the controls
            // still waiting were waiting for.
            for p in std::mem::take(&mut self.pending) {
                p.control.answer(res.clone());
            }
            let _ = ack.send(res);
            return true;
        }
        // Every chunk sent before the marker is in the batch; now the open ones.
        let mut waiting = Vec::new();
        self.collect_slots(true, Some(&mut waiting));
        if waiting.is_empty() && self.pending.is_empty() {
            self.carry_out(c);
        } else {
            self.pending.push(Pending {
                control: c,
                waiting,
            });
            self.check_pending();
        }
        false
    }

    /// A flush, rotation or reopen, once everything logged before it is in the batch.
    fn carry_out(&mut self, c: Control) {
        match c {
            Control::Flush { sync, ack } => self.finish_flush(sync, ack),
            Control::Rotate(ack) => {
                // Answered once the segment is finished (durable, under its final name).
                match self.rotate() {
                    Ok(()) => self.finisher.send(Job::Barrier(ack)),
                    Err(e) => {
                        let _ = ack.send(Err(e));
                    }
                }
            }
            Control::Reopen(ack) => {
                let res = self.reopen();
                let _ = ack.send(res);
            }
            shutdown @ Control::Shutdown { .. } => shutdown.refuse(),
        }
    }

    /// Answers a flush once everything logged before it is in the batch.
    fn finish_flush(&mut self, sync: bool, ack: Ack) {
        // Drops counted before this flush are reported before it returns.
        self.report_drops();
        let mut written = self.write_out();
        if written {
            // Never acknowledge events written into a file that is no longer there.
            self.check_identity();
            written = self.write_out();
        }
        if written && self.boundary_passed() {
            let _ = self.rotate();
        }
        let res = if let Some(lost) = self.lost.take() {
            Err(lost)
        } else if !written {
            Err(self
                .counters()
                .peek_error()
                .unwrap_or_else(|| Error::timed_out("flush")))
        } else {
            match if sync { self.sync_active() } else { Ok(()) } {
                // Segments sealed before this point must be finished too (durable,
                // under their final names): the finisher answers once they are.
                Ok(()) if self.finisher.busy() => {
                    self.finisher.send(Job::Barrier(ack));
                    return;
                }
                Ok(()) => self.take_error(),
                Err(e) => Err(e),
            }
        };
        let _ = ack.send(res);
    }

    /// Writes everything still queued, syncs, and lets the finisher finish what was sealed,
    /// giving up on a sick disk at `deadline`.
    fn wind_down(&mut self, deadline: Instant) -> Result<(), Error> {
        self.drain_out(deadline);
        if !self.buf.is_empty() {
            self.finisher.stop(deadline);
            return Err(self
                .counters()
                .peek_error()
                .unwrap_or_else(|| Error::timed_out("shutdown")));
        }
        let synced = self.finish_sync();
        if !self.finisher.stop(deadline) {
            self.counters()
                .error(Error::timed_out("finishing sealed segments"));
        }
        synced.and_then(|()| self.take_error())
    }

    fn take_error(&self) -> Result<(), Error> {
        match self.counters().take_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Takes everything still queued and writes it, retrying a sick disk until `deadline`.
    fn drain_out(&mut self, deadline: Instant) {
        loop {
            let mut freed = 0;
            while self.buf.len() < self.buf_limit() {
                match self.rx.try_recv() {
                    Ok(Msg::Chunk(chunk, slot)) => {
                        freed += self.queue.accounted(chunk.data.len());
                        self.received(chunk, slot.as_deref());
                    }
                    Ok(Msg::Control(c)) => c.refuse(),
                    Err(_) => break,
                }
            }
            self.queue.release(freed);
            let (_, _, left) = self.collect_slots(false, None);
            self.queue.notify_space();
            self.report_drops();
            let done = self.write_out();
            if done && !left && self.rx.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                return;
            }
            if !done {
                std::thread::park_timeout(Duration::from_millis(10));
            }
        }
    }

    fn finish_sync(&mut self) -> Result<(), Error> {
        if self.active.is_some() {
            self.sync_active()
        } else {
            Ok(())
        }
    }

    /// Records still buffered at exit (the disk kept failing until the deadline) are lost:
    /// count them as dropped, so every event is either written or counted.
    fn count_unwritten(&mut self) {
        let lost = self.buf_records.saturating_sub(self.buf_internal);
        self.counters()
            .events_dropped
            .fetch_add(lost, Ordering::Relaxed);
        self.buf_records = 0;
        self.buf_internal = 0;
    }

    fn exit(&mut self) {
        self.count_unwritten();
        self.health().set_gone();
        // Callers blocked on a full channel see the state change on their next slice; anything
        // they still managed to enqueue is dropped: count it, and say so in the log while the
        // file can still be written.
        self.refuse_queued();
        if self.buf.is_empty() && self.failure.is_none() && self.active.is_some() {
            self.report_drops();
            if !self.buf.is_empty() && self.write_out() {
                let _ = self.sync_active();
            }
            self.count_unwritten();
        }
        self.queue.wake_waiters();
    }

    /// Takes everything left in the channel and the slots without writing it: records count
    /// as dropped, control messages are answered with an error, and the slots are closed (a
    /// caller finds its slot closed and counts its event as dropped).
    fn refuse_queued(&mut self) {
        // Slots first: a caller hands a chunk over only under its slot's lock and only while
        // the slot is open, so once every slot is closed nothing more enters the channel from
        // a slot, and draining it afterwards finds every chunk. (The sink is already marked
        // gone, so a slot registered after this listing is born closed.)
        self.slots = self.queue.slots(&[]);
        for slot in &self.slots {
            let mut open = slot.lock();
            open.closed = true;
            let chunk = std::mem::take(&mut open.chunk);
            drop(open);
            self.queue
                .counters
                .events_dropped
                .fetch_add(chunk.records, Ordering::Relaxed);
        }
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Chunk(chunk, _) => {
                    self.queue.release(self.queue.accounted(chunk.data.len()));
                    self.counters()
                        .events_dropped
                        .fetch_add(chunk.records, Ordering::Relaxed);
                }
                Msg::Control(c) => c.refuse(),
            }
        }
        for p in std::mem::take(&mut self.pending) {
            p.control.refuse();
        }
        self.queue.notify_space();
    }

    /// After a panic on this thread: mark the sink gone, release every waiter, count what was
    /// not written, and say so in the log if the file still takes a write.
    pub(crate) fn after_panic(&mut self) {
        self.health().set_gone();
        self.counters().error(Error::panicked("writer"));
        let lost = self.buf_records.saturating_sub(self.buf_internal);
        self.buf.clear();
        self.buf_records = 0;
        self.buf_internal = 0;
        self.counters()
            .events_dropped
            .fetch_add(lost, Ordering::Relaxed);
        self.refuse_queued();
        self.queue.wake_waiters();
        // One attempt, straight to the file: the writer's own state may be what panicked.
        let dropped = self.counters().events_dropped.load(Ordering::Relaxed)
            + self.counters().events_shed.load(Ordering::Relaxed);
        let n = dropped.saturating_sub(self.drops_reported + self.shed_reported);
        let mut rec = Vec::with_capacity(160);
        self.cfg.formatter.internal_record(
            &mut rec,
            Level::ERROR,
            "the writer thread panicked; events dropped",
            &[("dropped", n)],
        );
        if let Some(a) = self.active.as_mut() {
            if a.file.write_all(&rec).is_ok() {
                self.drops_reported += n;
                self.counters()
                    .records_written
                    .fetch_add(1, Ordering::Relaxed);
                self.counters()
                    .internal_records
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
