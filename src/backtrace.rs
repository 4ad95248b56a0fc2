//! A backtrace on error ([`Backtrace`](crate::Backtrace)): each thread's last records that
//! the sink's filter rejected, written before its next ERROR.
//!
//! A per-layer filter decides which events reach a layer, so the sink sees the events its
//! filter rejects only when it holds the filter itself: [`BacktraceFilter`] wraps it, lets
//! the rejected events of the backtrace's levels through as well, and tells the layer which
//! ones its filter rejected (a thread-local note, set just before the layer's `on_event` on
//! the same thread). The layer formats those into the thread's ring instead of the queue.

use std::cell::RefCell;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{span, Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter};

use crate::format::{Format, Formatter, SinkId, Timed};
use crate::queue::{Put, Queue};

/// A record longer than this is not kept in a backtrace.
const MAX_RECORD: usize = 16 * 1024;

/// What the sink's filter said about the event being dispatched on this thread.
#[derive(Debug, Clone, Copy)]
struct Note {
    sink: SinkId,
    /// The event's `Metadata` address: a note about another event is stale.
    meta: usize,
    accepted: bool,
}

thread_local! {
    /// Set by `Filter::enabled` (called for callsites whose interest is "sometimes").
    static ENABLED: RefCell<Vec<Note>> = const { RefCell::new(Vec::new()) };
    /// Set by `Filter::event_enabled` (called for every event that may reach the layer).
    static DECIDED: RefCell<Vec<Note>> = const { RefCell::new(Vec::new()) };
    /// This thread's backtraces, one per sink with a backtrace.
    static RINGS: RefCell<Vec<Ring>> = const { RefCell::new(Vec::new()) };
}

fn meta_key(meta: &Metadata<'_>) -> usize {
    meta as *const Metadata<'_> as usize
}

fn put_note(list: &'static std::thread::LocalKey<RefCell<Vec<Note>>>, note: Note) {
    let _ = list.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            match l.iter_mut().find(|n| n.sink == note.sink) {
                Some(n) => *n = note,
                None => l.push(note),
            }
        }
    });
}

/// The note about `meta`'s event for `sink`, taken (so it cannot be read again).
fn take_note(
    list: &'static std::thread::LocalKey<RefCell<Vec<Note>>>,
    sink: SinkId,
    meta: usize,
) -> Option<bool> {
    list.try_with(|l| {
        let mut l = l.try_borrow_mut().ok()?;
        let n = l.iter_mut().find(|n| n.sink == sink && n.meta == meta)?;
        n.meta = 0;
        Some(n.accepted)
    })
    .ok()
    .flatten()
}

/// True when the sink's filter rejected the event being handed to the layer: it goes to the
/// thread's backtrace instead of the file.
pub(crate) fn rejected(sink: SinkId, meta: &Metadata<'_>) -> bool {
    take_note(&DECIDED, sink, meta_key(meta)) == Some(false)
}

/// Wraps a sink's per-layer filter so that, with a [`Backtrace`](crate::Backtrace) on, the
/// sink also sees the events the filter rejects at the backtrace's levels and keeps them for
/// its next ERROR. Made by [`FileSinkLayer::backtrace_filter`](crate::FileSinkLayer::backtrace_filter);
/// with the backtrace off it is the filter itself.
#[derive(Debug, Clone)]
pub struct BacktraceFilter<F> {
    inner: F,
    sink: SinkId,
    /// The lowest level kept, when the backtrace is on.
    from: Option<Level>,
}

impl<F> BacktraceFilter<F> {
    pub(crate) fn new(inner: F, sink: SinkId, from: Option<Level>) -> BacktraceFilter<F> {
        BacktraceFilter { inner, sink, from }
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event() && self.from.is_some_and(|l| *meta.level() <= l)
    }
}

impl<S: Subscriber, F: Filter<S>> Filter<S> for BacktraceFilter<F> {
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        let accepted = self.inner.enabled(meta, cx);
        if !self.wants(meta) {
            return accepted;
        }
        put_note(
            &ENABLED,
            Note {
                sink: self.sink,
                meta: meta_key(meta),
                accepted,
            },
        );
        true
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        let interest = self.inner.callsite_enabled(meta);
        if !interest.is_always() && self.wants(meta) {
            // Asked event by event, so that `enabled` learns what the filter says.
            Interest::sometimes()
        } else {
            interest
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        let meta = event.metadata();
        if !self.wants(meta) {
            return self.inner.event_enabled(event, cx);
        }
        // No note from `enabled`: the callsite is always enabled by the filter.
        let accepted = take_note(&ENABLED, self.sink, meta_key(meta)).unwrap_or(true)
            && self.inner.event_enabled(event, cx);
        put_note(
            &DECIDED,
            Note {
                sink: self.sink,
                meta: meta_key(meta),
                accepted,
            },
        );
        true
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let inner = self.inner.max_level_hint()?;
        Some(match self.from {
            Some(l) => inner.max(LevelFilter::from_level(l)),
            None => inner,
        })
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, cx)
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        self.inner.on_record(id, values, cx)
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        self.inner.on_enter(id, cx)
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        self.inner.on_exit(id, cx)
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        self.inner.on_close(id, cx)
    }
}

/// One thread's last rejected records for one sink, oldest first from `head`.
struct Ring {
    sink: SinkId,
    /// For the memory count; a ring outliving its sink counts nothing.
    queue: Weak<Queue>,
    records: Vec<(Vec<u8>, Level)>,
    /// The next record to overwrite once the ring is full.
    head: usize,
    /// Records held (at most `records.len()`).
    len: usize,
    /// The capacity of the buffers, as counted in the sink's stats.
    bytes: u64,
}

impl Ring {
    /// Counts a change of the buffers' capacity from `before` to `after` bytes.
    fn account(&mut self, before: u64, after: u64) {
        if before == after {
            return;
        }
        if let Some(q) = self.queue.upgrade() {
            let c = &q.counters.backtrace_bytes;
            if after > before {
                c.fetch_add(after - before, Relaxed);
            } else {
                c.fetch_sub(before - after, Relaxed);
            }
        }
        self.bytes = self.bytes + after - before;
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.account(self.bytes, 0);
    }
}

/// Appends the backtrace marker to a complete record.
fn mark(format: Format, rec: &mut Vec<u8>) {
    match format {
        Format::Json => {
            if rec.first() == Some(&b'{') {
                rec.splice(1..1, b"\"backtrace\":true,".iter().copied());
            }
        }
        Format::Text | Format::Compact | Format::Logfmt => {
            let nl = rec.last() == Some(&b'\n');
            if nl {
                rec.pop();
            }
            rec.extend_from_slice(b" backtrace=true");
            if nl {
                rec.push(b'\n');
            }
        }
    }
}

/// Keeps a formatted, rejected record (time left out at `time_at`) in this thread's ring
/// for `queue`'s sink, with the time it was logged at and the marker.
pub(crate) fn keep(
    queue: &Arc<Queue>,
    fmt: &Formatter,
    keep: usize,
    body: &[u8],
    time_at: Option<usize>,
    level: Level,
) {
    if body.len() > MAX_RECORD {
        return;
    }
    let _ = RINGS.try_with(|rings| {
        let Ok(mut rings) = rings.try_borrow_mut() else {
            return;
        };
        let i = match rings.iter().position(|r| r.sink == queue.id) {
            Some(i) => i,
            None => {
                // Rings of sinks that are gone count nothing and hold memory.
                rings.retain(|r| r.queue.strong_count() > 0);
                rings.push(Ring {
                    sink: queue.id,
                    queue: Arc::downgrade(queue),
                    records: Vec::with_capacity(keep),
                    head: 0,
                    len: 0,
                    bytes: 0,
                });
                rings.len() - 1
            }
        };
        let ring = &mut rings[i];
        let slot = if ring.records.len() < keep {
            ring.records.push((Vec::new(), level));
            ring.records.len() - 1
        } else {
            let at = ring.head;
            ring.head = (ring.head + 1) % keep;
            at
        };
        ring.len = (ring.len + 1).min(keep);
        let (rec, lvl) = &mut ring.records[slot];
        let before = rec.capacity() as u64;
        rec.clear();
        *lvl = level;
        Timed::new(body, time_at).write(fmt, rec, fmt.clock.stamp(0).wall);
        mark(fmt.format, rec);
        let after = rec.capacity() as u64;
        ring.account(before, after);
    });
}

/// Writes this thread's backtrace for `queue`'s sink, oldest first, and empties it. Called
/// just before the thread's ERROR goes in.
pub(crate) fn write_before_error(queue: &Arc<Queue>) {
    let _ = RINGS.try_with(|rings| {
        let Ok(mut rings) = rings.try_borrow_mut() else {
            return;
        };
        let Some(ring) = rings.iter_mut().find(|r| r.sink == queue.id) else {
            return;
        };
        let n = ring.records.len();
        // Full: the oldest is at `head`; not yet full: at 0 (and `head` is 0).
        let start = if ring.len == n { ring.head } else { 0 };
        for k in 0..ring.len {
            let (rec, level) = &ring.records[(start + k) % n];
            queue.log(Timed::new(rec, None), Put::event(*level, false));
        }
        queue
            .counters
            .backtrace_records
            .fetch_add(ring.len as u64, Relaxed);
        ring.len = 0;
        ring.head = 0;
        ring.records.iter_mut().for_each(|(r, _)| r.clear());
    });
}
