//! Answer: flush, sync, rotate, reopen and shutdown, and the writer's exit.
//!
//! A control message applies to every event logged before the call that sent it. The pass
//! that received the marker read its clock before the marker arrived, so the writer carries
//! the message out after the *next* pass: that pass's clock reading comes after the call, so
//! every record logged before the call is stamped before it and is in the batch, and the
//! batch has been written out.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::Level;

use super::Writer;
use crate::error::Error;
use crate::queue::{Ack, Control, Msg};
use crate::segment::finish::Job;

impl Writer {
    /// Carries out, in order, the control messages received before the last pass. Returns
    /// true when the writer must exit.
    pub(super) fn carry_out_controls(&mut self) -> bool {
        while let Some((_, pass)) = self.controls.front() {
            if *pass >= self.pass {
                // Received by the pass just made: the next pass covers it.
                break;
            }
            let Some((c, _)) = self.controls.pop_front() else {
                break;
            };
            if let Control::Shutdown { deadline, ack } = c {
                let res = self.wind_down(deadline);
                let _ = ack.send(res);
                return true;
            }
            self.carry_out(c);
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
        self.report_suppressed();
        // The last pass may have left records stamped before its reading in hand, when the
        // disk stopped taking the batch at the writer's limit: they are the flush's too.
        self.order_below(self.last_below);
        let mut written = self.write_out() && !self.runs.holds_below(self.last_below);
        if written {
            // Never acknowledge events written into a file that is no longer there.
            self.check_identity();
            if !self.runs.is_empty() {
                // The check's note (the file was deleted) goes out with this flush.
                let _ = self.pass();
            }
            written = self.write_out();
        }
        if written && self.boundary_passed() {
            let _ = self.rotate();
        }
        self.publish_held();
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
        // A flush answered after a backlog finds its memory given back.
        self.give_back_memory();
        let _ = ack.send(res);
    }

    /// Writes everything logged before now, syncs, and lets the finisher finish what was
    /// sealed, giving up on a sick disk at `deadline`. Control messages received meanwhile
    /// are refused at exit.
    pub(super) fn wind_down(&mut self, deadline: Instant) -> Result<(), Error> {
        self.report_suppressed();
        loop {
            // Drops counted so far are reported by the pass that follows.
            self.report_drops();
            let pass = self.pass();
            let written = self.write_out();
            if written && !self.runs.holds_below(pass.below) {
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            if !written {
                std::thread::park_timeout(Duration::from_millis(10));
            }
        }
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

    fn finish_sync(&mut self) -> Result<(), Error> {
        if self.active.is_some() {
            self.sync_active()
        } else {
            Ok(())
        }
    }

    /// Records still buffered or in hand at exit (the disk kept failing until the deadline,
    /// or they were logged after the shutdown began) are lost: count them as dropped, so
    /// every event is either written or counted.
    fn count_unwritten(&mut self) {
        let queue = &self.queue;
        let (held, held_internal) = self.runs.discard(|c| queue.recycle(c));
        let lost = self.buf_records.saturating_sub(self.buf_internal) + held - held_internal;
        self.counters()
            .events_dropped
            .fetch_add(lost, Ordering::Relaxed);
        self.buf.clear();
        self.buf_records = 0;
        self.buf_internal = 0;
    }

    pub(super) fn exit(&mut self) {
        // What the disk would not take before the deadline stays lost; what is written
        // already stays written.
        let failed = !self.buf.is_empty() || self.failure.is_some() || self.active.is_none();
        self.count_unwritten();
        self.health().set_gone();
        // Callers blocked on a full channel see the state change on their next slice; anything
        // they still managed to enqueue is dropped: count it, and say so in the log while the
        // file can still be written.
        self.refuse_queued();
        if !failed {
            self.report_drops();
            self.order_below(u64::MAX);
            if !self.buf.is_empty() && self.write_out() {
                let _ = self.sync_active();
            }
            self.count_unwritten();
        }
        self.publish_held();
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
        self.queue.slots(&[], &mut self.slots);
        for slot in &self.slots {
            let mut open = slot.lock();
            open.closed = true;
            let chunk = std::mem::take(&mut open.chunk);
            drop(open);
            self.queue
                .counters
                .events_dropped
                .fetch_add(chunk.records(), Ordering::Relaxed);
        }
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Chunk(chunk) => {
                    self.counters()
                        .out_of_channel(chunk.records(), chunk.data.len() as u64);
                    self.queue.release(self.queue.accounted(chunk.data.len()));
                    self.counters()
                        .events_dropped
                        .fetch_add(chunk.records(), Ordering::Relaxed);
                }
                Msg::Control(c) => c.refuse(),
            }
        }
        for (c, _) in std::mem::take(&mut self.controls) {
            c.refuse();
        }
        self.queue.notify_space();
    }

    /// After a panic on this thread: mark the sink gone, release every waiter, count what was
    /// not written, and say so in the log if the file still takes a write.
    pub(crate) fn after_panic(&mut self) {
        self.health().set_gone();
        self.counters().error(Error::panicked("writer"));
        self.count_unwritten();
        self.refuse_queued();
        self.publish_held();
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
