//! Collect: one pass over the slots and the channel, then everything stamped before the
//! pass's clock reading goes into the batch, in order.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::TryRecvError;

use super::{Writer, BATCH_BYTES};
use crate::clock::mono_now;
use crate::queue::{Chunk, Msg};
use crate::stats::Counters;

/// An open chunk this large is taken whole (its buffer swapped for an empty one) rather than
/// copied out under its lock: a busy thread's lock is held for a swap, not a long copy, and a
/// quiet thread keeps a buffer no larger than it needs.
const SWAP_AT: usize = 8 * 1024;

/// What one pass found.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Pass {
    /// Records taken out of slots and the channel.
    pub(super) records: u64,
    /// Full chunks came through the channel: callers are filling chunks faster than the
    /// writer passes, so the next pass starts at once.
    pub(super) busy: bool,
    /// The pass's clock reading: everything stamped before it is in the batch.
    pub(super) below: u64,
    /// The newest stamp the pass found.
    pub(super) newest: Option<u64>,
}

impl Writer {
    /// One pass: read the clock, take every slot's open chunk, receive what the channel
    /// holds, and move every record stamped before the reading into the batch, writing it
    /// out as it fills.
    ///
    /// Why the reading comes first: a record is stamped under its slot's lock, and a full
    /// chunk is sent under that lock too. A record stamped before the reading was therefore
    /// appended before the writer took its slot's lock below: it is either in the open chunk
    /// taken then, or in a chunk that was in the channel before the channel is read.
    pub(super) fn pass(&mut self) -> Pass {
        self.pass += 1;
        let below = mono_now();
        self.last_below = below;
        let newest_before = self.runs.newest_added();
        let (collected, bytes) = self.collect_slots();
        let (received, drained) = self.receive();
        let newest = Some(self.runs.newest_added()).filter(|&n| n != newest_before);
        if collected + received > 0 {
            self.queue.notify_space();
        }
        Counters::raise(&self.counters().queue_high_water, collected + received);
        Counters::raise(&self.counters().queue_bytes_high_water, bytes + drained);
        self.order_below(below);
        self.publish_held();
        Pass {
            records: collected + received,
            busy: received > 0,
            below,
            newest,
        }
    }

    /// Takes the records of every slot. Returns the records and bytes taken.
    fn collect_slots(&mut self) -> (u64, u64) {
        if self.queue.slots_changed.swap(false, Ordering::SeqCst) {
            self.queue.slots(&[], &mut self.slots);
        }
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut gone = Vec::new();
        for slot in &self.slots {
            let mut open = slot.lock();
            if open.chunk.is_empty() {
                // Only this list and the queue's hold it: its thread has exited.
                if Arc::strong_count(slot) == 2 && !self.queue.is_orphans(slot) {
                    gone.push(slot.clone());
                }
                continue;
            }
            records += open.chunk.records();
            bytes += open.chunk.data.len() as u64;
            let chunk = if open.chunk.data.len() < SWAP_AT {
                let mut copy = self.queue.spare();
                copy.append(&open.chunk);
                open.chunk.clear();
                copy
            } else {
                std::mem::replace(&mut open.chunk, self.queue.spare())
            };
            drop(open);
            self.runs.push(chunk);
        }
        if !gone.is_empty() {
            self.queue.slots(&gone, &mut self.slots);
        }
        (records, bytes)
    }

    /// Receives what the channel held when it was looked at: every chunk sent before the
    /// slots were collected is among it. Control messages wait for the next pass.
    fn receive(&mut self) -> (u64, u64) {
        let (mut records, mut bytes, mut freed) = (0u64, 0u64, 0usize);
        for _ in 0..self.rx.len().max(1) {
            match self.rx.try_recv() {
                Ok(Msg::Chunk(chunk)) => {
                    self.counters()
                        .out_of_channel(chunk.records(), chunk.data.len() as u64);
                    freed += self.queue.accounted(chunk.data.len());
                    records += chunk.records();
                    bytes += chunk.data.len() as u64;
                    self.keep(chunk);
                }
                Ok(Msg::Control(c)) => self.controls.push_back((c, self.pass)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.disconnected = true;
                    break;
                }
            }
        }
        self.queue.release(freed);
        (records, bytes)
    }

    fn keep(&mut self, chunk: Chunk) {
        if chunk.is_empty() {
            self.queue.recycle(chunk);
        } else {
            self.runs.push(chunk);
        }
    }

    /// Moves every record in hand stamped before `below` into the batch, in stamp order,
    /// writing a batch out each time it reaches [`BATCH_BYTES`]. While the disk does not take
    /// the batch it grows up to the writer's limit, and what is left waits in hand.
    pub(super) fn order_below(&mut self, below: u64) {
        loop {
            let cap = if self.failure.is_some() {
                self.buf_limit()
            } else {
                BATCH_BYTES
            };
            let queue = &self.queue;
            let e = self
                .runs
                .emit(below, &mut self.buf, cap, |c| queue.recycle(c));
            self.buf_records += e.records;
            self.buf_internal += e.internal;
            self.buf_urgent |= e.urgent;
            if self.buf.len() < cap {
                // Not cut short: everything stamped before `below` is in the batch.
                return;
            }
            if !self.write_out() && self.buf.len() >= self.buf_limit() {
                return;
            }
        }
    }

    /// True when a slot holds records (the re-check before sleeping). Reads the list of
    /// slots under its lock and takes every slot's lock: that is what orders the check after
    /// any caller's append that did not see `sleeping`.
    pub(super) fn slots_hold_data(&mut self) -> bool {
        self.queue.slots_changed.store(false, Ordering::SeqCst);
        self.queue.slots(&[], &mut self.slots);
        self.slots.iter().any(|s| !s.lock().chunk.is_empty())
    }
}
