//! What travels from the callers to the writer: chunks of stamped records, and control
//! messages.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::error::Error;

/// Messages to the writer thread.
pub(crate) enum Msg {
    /// Records of one thread (or of the writer's own notes), in stamp order.
    Chunk(Chunk),
    Control(Control),
}

/// Where one record ends in its chunk, and its stamp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    /// The record's stamp key (`clock::Stamp::key`): the file is ordered by it.
    pub(crate) key: u64,
    /// The end of the record in `Chunk::data`.
    pub(crate) end: usize,
    /// The record's level asks for an fsync of its batch.
    pub(crate) urgent: bool,
}

/// Formatted records (whole lines, newline included) of one thread, in the order it logged
/// them: their stamps rise strictly.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub(crate) data: Vec<u8>,
    pub(crate) marks: Vec<Mark>,
    /// Records of the sink's own (counted apart in the stats).
    pub(crate) internal: bool,
}

impl Chunk {
    pub(crate) fn records(&self) -> u64 {
        self.marks.len() as u64
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// Ends the record just appended to `data`.
    #[inline]
    pub(crate) fn mark(&mut self, key: u64, urgent: bool) {
        self.marks.push(Mark {
            key,
            end: self.data.len(),
            urgent,
        });
    }

    /// Appends all of `other`'s records (the writer copying a small open chunk out).
    pub(crate) fn append(&mut self, other: &Chunk) {
        let base = self.data.len();
        self.data.extend_from_slice(&other.data);
        self.marks.extend(other.marks.iter().map(|m| Mark {
            end: base + m.end,
            ..*m
        }));
    }

    /// Empty again, its buffers kept.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.marks.clear();
        self.internal = false;
    }
}

/// The open chunk of one thread for one sink. Only its thread appends to it, stamping each
/// record under the lock; the writer takes what it holds when it collects. Both hold the lock
/// only for a short copy or a swap, never while formatting or waiting.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
pub(crate) struct Open {
    pub(crate) chunk: Chunk,
    /// The stamp of this slot's latest record: the next one is stamped strictly after it.
    pub(crate) last_key: u64,
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
    /// Write everything logged before this marker; with `sync`, fsync it too.
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
