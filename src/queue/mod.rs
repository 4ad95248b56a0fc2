//! The bounded queue between the callers and the writer thread.
//!
//! A caller appends its formatted record to its own open chunk (its [`Slot`], one per thread
//! and sink): one uncontended lock, a clock reading and a copy, no allocation, no shared cache
//! line. The clock reading, taken under the lock, is the record's stamp: it orders the file
//! (the writer merges the threads' records by it, `writer/order.rs`) and gives the printed
//! time. A chunk that is full travels to the writer whole, through one bounded crossbeam
//! channel that also carries the control messages (flush, rotate, shutdown); the writer also
//! collects open chunks by itself, so an event never waits for its chunk to fill.
//!
//! Bounded twice: in chunks (the channel's capacity; with a number of records per chunk, the
//! queue's capacity in events) and in bytes (an atomic count of the bytes of large chunks),
//! so a burst of huge events cannot exhaust memory. On top of that, every logging thread
//! holds at most one open chunk.
//!
//! Waking the writer: a writer with nothing to do sleeps with `sleeping` set, and the first
//! caller to append while it is set wakes it (one futex call per wake-up, not per event).
//! A writer that is busy, or lingering between events that come faster than it sleeps and
//! wakes, keeps `sleeping` clear, so those callers pay no system call.

mod chunk;
mod wait;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use chunk::Open;
pub(crate) use chunk::{Ack, Chunk, Control, Msg, Slot};
pub(crate) use wait::deadline_after;
use wait::GaveUp;

use crate::format::{Formatter, SinkId, Timed};
use crate::health::Health;
use crate::settings::Overflow;
use crate::stats::{level_index, Counters};

/// How one record goes in: whether its level asks for an fsync of its batch, its level for
/// the per-level drop counts, and whether it may wait for room.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Put {
    pub(crate) urgent: bool,
    /// [`level_index`], or `None` for a record without a level (`build_writer`).
    pub(crate) level: Option<u8>,
    /// False for an event level-aware shedding may shed: it never waits.
    pub(crate) may_wait: bool,
}

impl Put {
    /// A record of `level` that waits as the overflow policy says.
    #[inline]
    pub(crate) fn event(level: tracing::Level, urgent: bool) -> Put {
        Put {
            urgent,
            level: Some(level_index(level) as u8),
            may_wait: true,
        }
    }

    /// A record without a level (a line from `build_writer`'s writer).
    pub(crate) fn line() -> Put {
        Put {
            urgent: false,
            level: None,
            may_wait: true,
        }
    }
}

/// Most bytes of one chunk: large enough that a handover per chunk costs nothing per event,
/// small enough to stay in the cache.
pub(crate) const CHUNK_BYTES: usize = 64 * 1024;

pub(crate) struct Queue {
    tx: Sender<Msg>,
    /// Tells apart the sinks of one process in a thread's list of slots.
    pub(crate) id: SinkId,
    /// Stamps records and writes their time in.
    fmt: Formatter,
    /// A chunk is full at this many bytes or `chunk_records` records.
    chunk_bytes: usize,
    chunk_records: u64,
    /// Every slot of a live thread (and of a dead one until the writer has emptied it).
    slots: Mutex<Vec<Arc<Slot>>>,
    /// The slot of threads whose thread-locals are gone (a record logged from a thread-local
    /// destructor): shared, and ordered like any other.
    orphans: Arc<Slot>,
    /// Set when a slot was added: the writer refreshes its copy of `slots`.
    pub(crate) slots_changed: AtomicBool,
    /// Emptied chunks, for callers whose chunk leaves with the channel.
    free_tx: Sender<Chunk>,
    free_rx: Receiver<Chunk>,
    /// Bytes of *large* records in the channel (see [`Queue::accounted`]).
    bytes: AtomicUsize,
    max_bytes: usize,
    /// Records up to this size are bounded by the channel's capacity alone:
    /// `capacity × small_max ≤ max_bytes / 2`, so they need no shared counter.
    small_max: usize,
    /// What larger records may take: the other half of `max_bytes`.
    large_budget: usize,
    /// The channel's capacity in chunks.
    chunks: usize,
    overflow: Overflow,
    /// Callers waiting for byte room, and where they wait.
    space_waiters: AtomicUsize,
    space_lock: Mutex<()>,
    space: Condvar,
    writer: OnceLock<Thread>,
    /// Set by the writer before it sleeps; the first caller that sees it wakes the writer.
    pub(crate) sleeping: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) health: Health,
    /// The rate limits per callsite, when on: checked by callers, swept by the writer.
    pub(crate) limits: Option<crate::limit::RateLimits>,
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

thread_local! {
    /// This thread's slot in each sink it has logged to (several sinks in one subscriber are
    /// normal), looked up by the sink's queue id. Not borrowed while formatting, so an event
    /// logged from inside a `Debug` impl still goes to the thread's slot.
    static SLOTS: RefCell<Vec<(SinkId, Arc<Slot>)>> = const { RefCell::new(Vec::new()) };
}

/// This thread's slot for `queue`, registered on first use.
#[inline]
fn slot_for<'a>(slots: &'a mut Vec<(SinkId, Arc<Slot>)>, queue: &Queue) -> &'a Arc<Slot> {
    let i = match slots.iter().position(|(id, _)| *id == queue.id) {
        Some(i) => i,
        None => register(slots, queue),
    };
    &slots[i].1
}

#[cold]
fn register(slots: &mut Vec<(SinkId, Arc<Slot>)>, queue: &Queue) -> usize {
    // Slots of sinks that have shut down are of no use any more.
    slots.retain(|(_, s)| !s.is_closed());
    slots.push((queue.id, queue.new_slot()));
    slots.len() - 1
}

impl Queue {
    /// Appends a formatted record to this thread's slot of this sink (a thread whose
    /// thread-locals are being destroyed uses the shared orphan slot).
    #[inline]
    pub(crate) fn log(&self, record: Timed<'_>, put: Put) {
        let done = SLOTS
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut slots) => {
                    let slot = slot_for(&mut slots, self);
                    self.push(slot, record, put);
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        if !done {
            self.push(&self.orphans, record, put);
        }
    }

    /// True when more than `percent` of the channel's chunks are full ones waiting for the
    /// writer (two loads of the channel's positions: read only by level-aware shedding).
    #[inline]
    pub(crate) fn fuller_than(&self, percent: u8) -> bool {
        self.tx.len() * 100 > self.chunks * usize::from(percent)
    }

    /// Counts an event level-aware shedding dropped, for the stats and the in-band report.
    #[cold]
    pub(crate) fn shed_below_level(&self, level: tracing::Level) {
        self.counters
            .shed_below_level
            .fetch_add(1, Ordering::Relaxed);
        self.count_level(Some(level_index(level) as u8));
        self.counters.events_dropped.fetch_add(1, Ordering::Release);
    }

    /// Counts a dropped event at its level. Before the total: the writer reads the total
    /// first, so the levels it reads next cover at least that many.
    fn count_level(&self, level: Option<u8>) {
        if let Some(i) = level {
            self.counters.dropped_levels[usize::from(i)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `fmt`: the sink's formatter; its id tells this sink's slots apart from other sinks'.
    pub(crate) fn new(
        fmt: Formatter,
        capacity: usize,
        max_bytes: usize,
        overflow: Overflow,
        (stall_after, fsync_stall_after): (Duration, Duration),
    ) -> (Queue, Receiver<Msg>) {
        // Half the byte budget in full chunks, as many chunks as events at most; the event
        // capacity spread over them gives the records per chunk.
        let chunk_bytes = CHUNK_BYTES.min((max_bytes / 8).max(1));
        let chunks = (max_bytes / (2 * chunk_bytes)).clamp(1, capacity.max(1));
        let chunk_records = (capacity / chunks).max(1) as u64;
        let (tx, rx) = crossbeam_channel::bounded(chunks);
        // Room for every buffer that can be in flight (the channel's chunks, and some open
        // chunks being handed over), so that a burst never frees buffers the next burst
        // allocates again: the queue keeps the buffers of its busiest moment.
        let (free_tx, free_rx) = crossbeam_channel::bounded(chunks + 64);
        let orphans = Arc::new(Slot::default());
        (
            Queue {
                tx,
                id: fmt.sink,
                fmt,
                chunk_bytes,
                chunk_records,
                slots: Mutex::new(vec![orphans.clone()]),
                orphans,
                slots_changed: AtomicBool::new(true),
                free_tx,
                free_rx,
                bytes: AtomicUsize::new(0),
                max_bytes,
                small_max: max_bytes / (2 * chunks),
                large_budget: (max_bytes / 2).max(1),
                chunks,
                overflow,
                space_waiters: AtomicUsize::new(0),
                space_lock: Mutex::new(()),
                space: Condvar::new(),
                writer: OnceLock::new(),
                sleeping: AtomicBool::new(false),
                counters: Counters::default(),
                health: Health::new(stall_after, fsync_stall_after),
                limits: None,
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

    fn dropped(&self, put: Put) {
        self.count_level(put.level);
        self.counters.events_dropped.fetch_add(1, Ordering::Release);
    }

    /// Counts an event the blocking paths gave up on.
    #[cold]
    fn gave_up(&self, why: GaveUp, put: Put) {
        self.count_level(put.level);
        match why {
            GaveUp::Shed => self.counters.events_shed.fetch_add(1, Ordering::Relaxed),
            GaveUp::Gone | GaveUp::Deadline => {
                self.counters.events_dropped.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// Appends one record to the calling thread's open chunk, according to the overflow
    /// policy. Never panics, never fails: an event that cannot be queued is counted as
    /// dropped. No allocation once the chunk's buffers have grown.
    #[inline]
    pub(crate) fn push(&self, slot: &Arc<Slot>, record: Timed<'_>, put: Put) {
        if self.health.is_gone() {
            self.dropped(put);
            return;
        }
        let mut open = slot.lock();
        if open.closed {
            drop(open);
            self.dropped(put);
            return;
        }
        if self.is_full(&open.chunk) {
            // The writer has not collected it and the channel had no room last time.
            if let Err(why) = self.hand_over(&mut open) {
                drop(open);
                self.push_slow(slot, record, put, why);
                return;
            }
        }
        self.append(&mut open, record, put.urgent);
        if self.is_full(&open.chunk) {
            // No room now: the chunk stays where the writer collects it.
            let _ = self.hand_over(&mut open);
        }
        self.unlock_and_wake(open);
    }

    /// Stamps the record and appends it, its time written in. Under the slot's lock: the
    /// writer, which reads the clock before it takes each slot's lock, then knows that
    /// whatever it did not find there is stamped after its reading.
    #[inline]
    fn append(&self, open: &mut Open, record: Timed<'_>, urgent: bool) {
        let stamp = self.fmt.clock.stamp(open.last_key);
        open.last_key = stamp.key;
        record.write(&self.fmt, &mut open.chunk.data, stamp.wall);
        open.chunk.mark(stamp.key, urgent);
    }

    /// A full chunk that could not be handed over: the overflow policy decides.
    #[cold]
    fn push_slow(&self, slot: &Arc<Slot>, record: Timed<'_>, put: Put, why: GaveUp) {
        let res = match (why, self.overflow) {
            (GaveUp::Gone, _) => Err(GaveUp::Gone),
            (_, Overflow::Drop) => Err(GaveUp::Deadline),
            _ if !put.may_wait => {
                self.counters
                    .shed_below_level
                    .fetch_add(1, Ordering::Relaxed);
                Err(GaveUp::Deadline)
            }
            _ => self.wait_for_slot(slot),
        };
        match res {
            Ok(mut open) if !open.closed => {
                self.append(&mut open, record, put.urgent);
                self.unlock_and_wake(open);
            }
            Ok(_) => self.dropped(put),
            Err(why) => self.gave_up(why, put),
        }
    }

    #[inline]
    fn is_full(&self, chunk: &Chunk) -> bool {
        chunk.data.len() >= self.chunk_bytes || chunk.records() >= self.chunk_records
    }

    /// Sends the slot's chunk to the writer if the channel (and the byte budget, for a large
    /// chunk) has room, leaving an empty chunk in its place; never waits. Done under the
    /// slot's lock, so a chunk the writer did not find in the slot is in the channel before
    /// the writer looks there.
    fn hand_over(&self, open: &mut Open) -> Result<(), GaveUp> {
        // A closed slot's chunk was counted by the writer as it exited; nothing may follow it
        // into a channel nobody drains.
        if open.closed {
            return Err(GaveUp::Gone);
        }
        let len = self.accounted(open.chunk.data.len());
        if len > 0 && !self.try_reserve(len, Ordering::Relaxed) {
            return Err(GaveUp::Deadline);
        }
        // Counted in the channel before it can be taken out, so the count never goes below 0.
        let (records, bytes) = (open.chunk.records(), open.chunk.data.len() as u64);
        self.counters.in_channel(records, bytes);
        let chunk = std::mem::replace(&mut open.chunk, self.spare());
        match self.tx.try_send(Msg::Chunk(chunk)) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.counters.out_of_channel(records, bytes);
                let why = match e {
                    TrySendError::Full(_) => GaveUp::Deadline,
                    TrySendError::Disconnected(_) => GaveUp::Gone,
                };
                if let Msg::Chunk(chunk) = e.into_inner() {
                    let spare = std::mem::replace(&mut open.chunk, chunk);
                    self.recycle(spare);
                }
                self.release(len);
                Err(why)
            }
        }
    }

    /// A new slot for the calling thread, known to the writer from now on.
    #[cold]
    pub(crate) fn new_slot(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // The writer marks the sink gone before it lists the slots to close them (under this
        // lock): a slot registered after that listing is born closed, so no event can wait
        // in a slot nobody collects or counts. Nor is it listed: nobody reads the list any
        // more, and threads that keep starting after a shutdown must not grow it.
        if self.health.is_gone() {
            slot.lock().closed = true;
            return slot;
        }
        slots.push(slot.clone());
        drop(slots);
        self.slots_changed.store(true, Ordering::SeqCst);
        slot
    }

    /// The writer's copy of the list of slots, into `copy` (its allocation reused); slots of
    /// exited threads that the writer has emptied (`gone`) leave the list.
    pub(crate) fn slots(&self, gone: &[Arc<Slot>], copy: &mut Vec<Arc<Slot>>) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if !gone.is_empty() {
            slots.retain(|s| !gone.iter().any(|g| Arc::ptr_eq(s, g)));
        }
        copy.clear();
        copy.extend_from_slice(&slots);
    }

    /// A snapshot of the counters, with what the threads' open chunks hold now.
    pub(crate) fn stats(&self) -> crate::stats::Stats {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (mut open_records, mut open_bytes) = (0, 0);
        for slot in &slots {
            let open = slot.lock();
            open_records += open.chunk.records();
            open_bytes += open.chunk.data.len() as u64;
        }
        self.counters.snapshot(crate::stats::Live {
            open_records,
            open_bytes,
            state: self.health.state(),
        })
    }

    /// True for the orphan slot, which outlives every thread.
    pub(crate) fn is_orphans(&self, slot: &Arc<Slot>) -> bool {
        Arc::ptr_eq(slot, &self.orphans)
    }

    /// An empty chunk whose buffer holds a full chunk without growing: a recycled one, or a
    /// new one when none is free.
    pub(crate) fn spare(&self) -> Chunk {
        self.free_rx.try_recv().unwrap_or_else(|_| Chunk {
            data: Vec::with_capacity(self.chunk_bytes + 1024),
            marks: Vec::with_capacity(self.chunk_records.min(4096) as usize),
            internal: false,
        })
    }

    /// Frees spare chunks beyond `keep` (the writer, once a backlog is written).
    pub(crate) fn trim_spares(&self, keep: usize) {
        while self.free_rx.len() > keep {
            if self.free_rx.try_recv().is_err() {
                break;
            }
        }
    }

    /// Gives an emptied chunk back for reuse (a huge one is freed instead).
    pub(crate) fn recycle(&self, mut chunk: Chunk) {
        let cap = chunk.data.capacity();
        if cap == 0 || cap > 4 * self.chunk_bytes.max(4096) {
            return;
        }
        chunk.clear();
        let _ = self.free_tx.try_send(chunk);
    }

    /// The formatter records are stamped with (the writer stamps its own notes alike).
    pub(crate) fn formatter(&self) -> &Formatter {
        &self.fmt
    }

    /// Tells callers waiting for room (their chunk to be taken, or byte room) that the writer
    /// made some.
    pub(crate) fn notify_space(&self) {
        if self.space_waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.space_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.space.notify_all();
        }
    }

    /// Called by the writer after taking `len` bytes of records out of the channel.
    pub(crate) fn release(&self, len: usize) {
        if len == 0 {
            return;
        }
        self.bytes.fetch_sub(len, Ordering::SeqCst);
        self.notify_space();
    }

    /// Wakes every caller waiting for byte room (the writer is gone: they must see it now).
    pub(crate) fn wake_waiters(&self) {
        let _g = self.space_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.space.notify_all();
    }

    /// Releases a slot a record was just appended to, waking the writer if it is asleep.
    ///
    /// `sleeping` is read while the slot's lock is held: the writer, after storing
    /// `sleeping`, takes the list of slots' lock and every slot's lock before it re-checks the
    /// slots and the channel. Whichever takes a slot's lock second sees what the other did
    /// before: the writer sees the record (or the chunk it completed, in the channel), or the
    /// caller sees `sleeping`. A slot registered after the writer read the list was
    /// registered under the list's lock, after the writer's store.
    #[inline]
    fn unlock_and_wake(&self, open: MutexGuard<'_, Open>) {
        let sleeping = self.sleeping.load(Ordering::Relaxed);
        drop(open);
        if sleeping {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::timestamp::{TimeFormat, TimeZone, Timestamper};

    fn queue() -> Queue {
        let fmt = Formatter {
            format: crate::Format::Json,
            timestamper: Timestamper::new(TimeZone::Utc, &TimeFormat::rfc3339_micros()),
            clock: crate::clock::Clock::System,
            sink: SinkId::next(),
            options: Default::default(),
        };
        Queue::new(
            fmt,
            1024,
            1 << 20,
            Overflow::Block,
            (Duration::from_secs(2), Duration::from_secs(30)),
        )
        .0
    }

    #[test]
    fn threads_logging_after_the_writer_is_gone_add_no_slot() {
        let q = Arc::new(queue());
        q.health.set_gone();
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || q.log(Timed::new(b"x\n", None), Put::line()))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut copy = Vec::new();
        q.slots(&[], &mut copy);
        assert_eq!(copy.len(), 1, "only the orphan slot");
        assert_eq!(q.counters.events_dropped.load(Ordering::Relaxed), 200);
    }

    #[test]
    fn each_logging_thread_gets_one_slot_while_the_writer_lives() {
        let q = Arc::new(queue());
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    q.log(Timed::new(b"x\n", None), Put::line());
                    q.log(Timed::new(b"y\n", None), Put::line());
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut copy = Vec::new();
        q.slots(&[], &mut copy);
        assert_eq!(copy.len(), 21, "the orphan slot and one per thread");
        let records: u64 = copy.iter().map(|s| s.lock().chunk.records()).sum();
        assert_eq!(records, 40);
    }
}
