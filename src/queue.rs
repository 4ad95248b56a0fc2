//! The bounded queue between the callers and the writer thread.
//!
//! A caller appends its formatted record to its own open chunk (its [`Slot`], one per thread
//! and sink): one uncontended lock and a copy, no allocation, no shared cache line. A chunk
//! that is full travels to the writer whole, through one bounded crossbeam channel that also
//! carries the control messages (flush, rotate, shutdown); the writer also collects open
//! chunks by itself, so an event never waits for its chunk to fill.
//!
//! Bounded twice: in chunks (the channel's capacity; with a number of records per chunk, the
//! queue's capacity in events) and in bytes (an atomic count of the bytes of large chunks),
//! so a burst of huge events cannot exhaust memory. On top of that, every logging thread
//! holds at most one open chunk. The writer thread is woken only when it has gone to sleep
//! after a long idle spell, so a caller logging now and then never pays a futex call (see
//! `writer.rs` for the other half of that protocol).

use std::cell::RefCell;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

use crate::error::Error;
use crate::format::SinkId;
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

/// Messages to the writer thread, in one FIFO so a flush marker follows every chunk sent
/// before it.
pub(crate) enum Msg {
    /// Whole records of one thread, in its order, and the slot they came from (`None` for a
    /// record sent on its own, by a thread whose thread-locals are gone).
    Chunk(Chunk, Option<Arc<Slot>>),
    Control(Control),
}

/// Formatted records (whole lines, newline included), in the order they were logged.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub(crate) data: Vec<u8>,
    pub(crate) records: u64,
    /// A record's level asks for an fsync.
    pub(crate) urgent: bool,
}

impl Chunk {
    fn push(&mut self, record: &[u8], urgent: bool) {
        self.data.extend_from_slice(record);
        self.records += 1;
        self.urgent |= urgent;
    }

    /// Empty again, its buffer kept.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.records = 0;
        self.urgent = false;
    }
}

/// The open chunk of one thread for one sink. Only its thread appends to it; the writer takes
/// it (swapping in an empty buffer) when it collects. Both hold the lock only for a copy or a
/// swap, never while formatting or waiting, so it is uncontended in practice and the writer
/// can take it with a plain `lock()`.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    open: Mutex<Open>,
    /// Chunks of this slot the writer has taken out of the channel. Written by the writer only.
    pub(crate) received: AtomicU64,
    /// Times the writer found this slot with no chunk of it in the channel. Writer only.
    pub(crate) synced: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct Open {
    pub(crate) chunk: Chunk,
    /// Chunks of this slot sent through the channel.
    pub(crate) sent: u64,
    /// The writer has exited: nothing appended now would ever be written.
    pub(crate) closed: bool,
}

impl Slot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True once the writer has exited (its thread-locals may drop the slot).
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
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
        self.answer(Err(Error::shut_down()));
    }

    pub(crate) fn answer(self, res: Result<(), Error>) {
        let (Control::Flush { ack, .. }
        | Control::Rotate(ack)
        | Control::Reopen(ack)
        | Control::Shutdown { ack, .. }) = self;
        let _ = ack.send(res);
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

/// Most bytes of one chunk: large enough that a handover per chunk costs nothing per event,
/// small enough to stay in the cache.
pub(crate) const CHUNK_BYTES: usize = 64 * 1024;

pub(crate) struct Queue {
    tx: Sender<Msg>,
    /// Tells apart the sinks of one process in a thread's list of slots.
    pub(crate) id: SinkId,
    /// A chunk is full at this many bytes or `chunk_records` records.
    chunk_bytes: usize,
    chunk_records: u64,
    /// Every slot of a live thread (and of a dead one until the writer has emptied it).
    slots: Mutex<Vec<Arc<Slot>>>,
    /// Set when a slot was added: the writer refreshes its copy of `slots`.
    pub(crate) slots_changed: AtomicBool,
    /// Emptied chunk buffers, for callers whose chunk leaves with the channel.
    free_tx: Sender<Vec<u8>>,
    free_rx: Receiver<Vec<u8>>,
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

thread_local! {
    /// This thread's slot in each sink it has logged to (several sinks in one subscriber are
    /// normal), looked up by the sink's queue id. Not borrowed while formatting, so an event
    /// logged from inside a `Debug` impl still goes to the thread's slot, in order.
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
    /// Appends a formatted record to this thread's slot of this sink; a thread whose thread-locals are
    /// being destroyed sends it on its own.
    #[inline]
    pub(crate) fn log(&self, record: &[u8], urgent: bool) {
        let done = SLOTS
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut slots) => {
                    let slot = slot_for(&mut slots, self);
                    self.push(slot, record, urgent);
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        if !done {
            self.push_alone(record.to_vec(), urgent);
        }
    }

    /// `id`: the sink's own (its formatter's), which tells its slots apart from other sinks'.
    pub(crate) fn new(
        id: SinkId,
        capacity: usize,
        max_bytes: usize,
        overflow: Overflow,
        stall_after: Duration,
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
        (
            Queue {
                tx,
                id,
                chunk_bytes,
                chunk_records,
                slots: Mutex::new(Vec::new()),
                slots_changed: AtomicBool::new(false),
                free_tx,
                free_rx,
                bytes: AtomicUsize::new(0),
                max_bytes,
                small_max: max_bytes / (2 * chunks),
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

    /// Appends one record to the calling thread's open chunk, according to the overflow
    /// policy. Never panics, never fails: an event that cannot be queued is counted as
    /// dropped. No allocation once the chunk's buffer has grown.
    #[inline]
    pub(crate) fn push(&self, slot: &Arc<Slot>, record: &[u8], urgent: bool) {
        if self.health.is_gone() {
            self.dropped();
            return;
        }
        let mut open = slot.lock();
        if open.closed {
            drop(open);
            self.dropped();
            return;
        }
        if self.is_full(&open.chunk) {
            // The writer has not collected it and the channel had no room last time.
            if let Err(why) = self.hand_over(slot, &mut open) {
                drop(open);
                self.push_slow(slot, record, urgent, why);
                return;
            }
        }
        open.chunk.push(record, urgent);
        if self.is_full(&open.chunk) {
            // No room now: the chunk stays where the writer collects it.
            let _ = self.hand_over(slot, &mut open);
        }
        self.unlock_and_wake(open);
    }

    /// A full chunk that could not be handed over: the overflow policy decides.
    #[cold]
    fn push_slow(&self, slot: &Arc<Slot>, record: &[u8], urgent: bool, why: GaveUp) {
        let res = match (why, self.overflow) {
            (GaveUp::Gone, _) => Err(GaveUp::Gone),
            (_, Overflow::Drop) => Err(GaveUp::Deadline),
            _ => self.wait_for_slot(slot),
        };
        match res {
            Ok(mut open) if !open.closed => {
                open.chunk.push(record, urgent);
                self.unlock_and_wake(open);
            }
            Ok(_) => self.dropped(),
            Err(why) => self.gave_up(why),
        }
    }

    #[inline]
    fn is_full(&self, chunk: &Chunk) -> bool {
        chunk.data.len() >= self.chunk_bytes || chunk.records >= self.chunk_records
    }

    /// Sends the slot's chunk to the writer if the channel (and the byte budget, for a large
    /// chunk) has room, leaving an empty buffer in its place; never waits. Done under the
    /// slot's lock, so the writer, which takes a slot's chunk only when none of its chunks is
    /// in the channel, keeps each thread's records in order.
    fn hand_over(&self, slot: &Arc<Slot>, open: &mut Open) -> Result<(), GaveUp> {
        // A closed slot's chunk was counted by the writer as it exited; nothing may follow it
        // into a channel nobody drains.
        if open.closed {
            return Err(GaveUp::Gone);
        }
        let len = self.accounted(open.chunk.data.len());
        if len > 0 && !self.try_reserve(len, Ordering::Relaxed) {
            return Err(GaveUp::Deadline);
        }
        let chunk = std::mem::replace(&mut open.chunk, self.spare());
        match self.tx.try_send(Msg::Chunk(chunk, Some(slot.clone()))) {
            Ok(()) => {
                open.sent += 1;
                Ok(())
            }
            Err(e) => {
                let why = match e {
                    TrySendError::Full(_) => GaveUp::Deadline,
                    TrySendError::Disconnected(_) => GaveUp::Gone,
                };
                if let Msg::Chunk(chunk, _) = e.into_inner() {
                    let spare = std::mem::replace(&mut open.chunk, chunk);
                    self.recycle(spare.data);
                }
                self.release(len);
                Err(why)
            }
        }
    }

    /// Waits, under the caller's overflow policy, until the slot's chunk has room again
    /// (handed over, or collected by the writer). Returns the slot locked.
    #[cold]
    fn wait_for_slot<'a>(&self, slot: &'a Arc<Slot>) -> Result<MutexGuard<'a, Open>, GaveUp> {
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
            match self.hand_over(slot, &mut open) {
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

    /// Sends one record on its own (a thread whose thread-locals are already destroyed).
    pub(crate) fn push_alone(&self, record: Vec<u8>, urgent: bool) {
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
        let chunk = Chunk {
            data: record,
            records: 1,
            urgent,
        };
        let sent = match self.tx.try_send(Msg::Chunk(chunk, None)) {
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

    /// A new slot for the calling thread, known to the writer from now on.
    #[cold]
    pub(crate) fn new_slot(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // The writer marks the sink gone before it lists the slots to close them (under this
        // lock): a slot registered after that listing is born closed, so no event can wait
        // in a slot nobody collects or counts.
        if self.health.is_gone() {
            slot.lock().closed = true;
        }
        slots.push(slot.clone());
        drop(slots);
        self.slots_changed.store(true, Ordering::SeqCst);
        slot
    }

    /// The writer's copy of the list of slots; slots of exited threads that the writer has
    /// emptied (`gone`) leave the list.
    pub(crate) fn slots(&self, gone: &[Arc<Slot>]) -> Vec<Arc<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if !gone.is_empty() {
            slots.retain(|s| !gone.iter().any(|g| Arc::ptr_eq(s, g)));
        }
        slots.clone()
    }

    /// An empty chunk whose buffer holds a full chunk without growing: a recycled one, or a
    /// new one when none is free.
    pub(crate) fn spare(&self) -> Chunk {
        Chunk {
            data: self
                .free_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(self.chunk_bytes + 1024)),
            ..Chunk::default()
        }
    }

    /// Gives an emptied chunk buffer back for reuse (a huge one is freed instead).
    pub(crate) fn recycle(&self, mut data: Vec<u8>) {
        if data.capacity() == 0 || data.capacity() > 4 * self.chunk_bytes.max(4096) {
            return;
        }
        data.clear();
        let _ = self.free_tx.try_send(data);
    }

    /// Tells callers waiting for room (their chunk to be taken, or byte room) that the writer
    /// made some.
    pub(crate) fn notify_space(&self) {
        if self.space_waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.space_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.space.notify_all();
        }
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
        self.notify_space();
    }

    /// Wakes every caller waiting for byte room (the writer is gone: they must see it now).
    pub(crate) fn wake_waiters(&self) {
        let _g = self.space_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.space.notify_all();
    }

    /// The caller's half of the sleep protocol for a record sent on its own: the SeqCst fence
    /// orders our enqueue before the load of `sleeping`, pairing with the writer's fence
    /// between storing `sleeping` and re-checking the channel. One of the two always sees the
    /// other.
    ///
    /// A record appended to a slot needs no fence: the caller loads `sleeping` while it holds
    /// the slot's lock, and the writer, after storing `sleeping`, takes the list of slots'
    /// lock and every slot's lock before it re-checks the slots and the channel. Whichever
    /// takes a slot's lock second sees what the other did before: the writer sees the record
    /// (or the chunk it completed, in the channel), or the caller sees `sleeping`. A slot
    /// registered after the writer read the list was registered under the list's lock, after
    /// the writer's store.
    #[inline]
    fn wake_if_sleeping(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.wake_sleeper();
        }
    }

    /// Releases a slot a record was just appended to, waking the writer if it announced a
    /// deep sleep: `sleeping` is read while the slot's lock is held (see `wake_if_sleeping`).
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
