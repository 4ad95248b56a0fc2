//! Order: the records in hand, merged by stamp.
//!
//! Every chunk the writer holds is a run of one thread's records with rising stamps. A pass
//! reads the clock (`below`), then collects every slot and the channel: a record stamped
//! before that reading was appended under its slot's lock before the writer took that lock,
//! so it is in hand by the end of the pass. Everything in hand stamped before `below` is then
//! written out in stamp order, and the rest waits for the next pass. Since the stamp is a
//! monotonic clock reading taken when the record is queued, a record that happens-before
//! another has the smaller stamp: the file is in happens-before order, and, the printed time
//! being derived from the same reading, in time order.
//!
//! Pure: no clock, no lock, no I/O; tested against a naive oracle (a stable sort).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::queue::Chunk;

/// One chunk and how far it has been written out.
#[derive(Debug)]
struct Run {
    chunk: Chunk,
    /// Its next record to write.
    next: usize,
}

impl Run {
    fn head_key(&self) -> Option<u64> {
        self.chunk.marks.get(self.next).map(|m| m.key)
    }

    fn start(&self) -> usize {
        match self.next {
            0 => 0,
            n => self.chunk.marks[n - 1].end,
        }
    }

    fn is_done(&self) -> bool {
        self.next >= self.chunk.marks.len()
    }
}

/// What one call of [`Runs::emit`] wrote into the batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Emitted {
    pub(crate) records: u64,
    /// Of them, records of the sink's own.
    pub(crate) internal: u64,
    /// One of them asks for an fsync.
    pub(crate) urgent: bool,
}

/// The records in hand, not yet in the batch.
#[derive(Debug, Default)]
pub(crate) struct Runs {
    runs: Vec<Run>,
    /// (head stamp, run index): rebuilt by every `emit`, kept to reuse its allocation.
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    /// The newest stamp ever added.
    newest: u64,
    /// Records and bytes held.
    records: u64,
    bytes: usize,
}

impl Runs {
    /// Adds a chunk (its stamps must rise).
    pub(crate) fn push(&mut self, chunk: Chunk) {
        debug_assert!(chunk.marks.windows(2).all(|w| w[0].key < w[1].key));
        self.records += chunk.records();
        self.bytes += chunk.data.len();
        if let Some(m) = chunk.marks.last() {
            self.newest = self.newest.max(m.key);
        }
        self.runs.push(Run { chunk, next: 0 });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Frees the lists grown to hold a backlog (call when empty).
    pub(crate) fn shrink(&mut self) {
        self.runs.shrink_to(64);
        self.heap.shrink_to(64);
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The newest stamp ever added (0 before the first).
    pub(crate) fn newest_added(&self) -> u64 {
        self.newest
    }

    /// True when a record stamped before `below` is held.
    pub(crate) fn holds_below(&self, below: u64) -> bool {
        self.runs
            .iter()
            .any(|r| r.head_key().is_some_and(|k| k < below))
    }

    /// Appends to `out`, in stamp order, the records stamped before `below`, stopping once
    /// `out` holds `cap` bytes or more (call again for the rest). Records of different threads
    /// with equal stamps (within one tick of a coarse clock) come in no particular order.
    /// Chunks written out completely are handed to `done` for reuse.
    pub(crate) fn emit(
        &mut self,
        below: u64,
        out: &mut Vec<u8>,
        cap: usize,
        mut done: impl FnMut(Chunk),
    ) -> Emitted {
        let mut e = Emitted::default();
        self.heap.clear();
        for (i, r) in self.runs.iter().enumerate() {
            if let Some(k) = r.head_key().filter(|&k| k < below) {
                self.heap.push(Reverse((k, i)));
            }
        }
        while let Some(Reverse((_, i))) = self.heap.pop() {
            if out.len() >= cap {
                break;
            }
            // This run goes on while its records come before every other run's head.
            let peer = self.heap.peek().map(|Reverse(p)| *p);
            let run = &mut self.runs[i];
            let start = run.start();
            let marks = &run.chunk.marks;
            let mut j = run.next;
            while let Some(m) = marks.get(j) {
                if m.key >= below || peer.is_some_and(|p| (m.key, i) > p) {
                    break;
                }
                e.urgent |= m.urgent;
                j += 1;
                if out.len() + (m.end - start) >= cap {
                    break;
                }
            }
            let end = match j {
                0 => 0,
                j => marks[j - 1].end,
            };
            out.extend_from_slice(&run.chunk.data[start..end]);
            let n = (j - run.next) as u64;
            e.records += n;
            if run.chunk.internal {
                e.internal += n;
            }
            self.records -= n;
            self.bytes -= end - start;
            run.next = j;
            if let Some(k) = run.head_key().filter(|&k| k < below) {
                self.heap.push(Reverse((k, i)));
            }
        }
        self.sweep(&mut done);
        e
    }

    /// Removes the runs written out completely.
    fn sweep(&mut self, done: &mut impl FnMut(Chunk)) {
        let mut i = 0;
        while i < self.runs.len() {
            if self.runs[i].is_done() {
                done(self.runs.swap_remove(i).chunk);
            } else {
                i += 1;
            }
        }
    }

    /// Gives up every record held (exit, panic): returns how many there were and how many of
    /// them were the sink's own.
    pub(crate) fn discard(&mut self, mut done: impl FnMut(Chunk)) -> (u64, u64) {
        let (mut records, mut internal) = (0, 0);
        for run in self.runs.drain(..) {
            let n = (run.chunk.marks.len() - run.next) as u64;
            records += n;
            if run.chunk.internal {
                internal += n;
            }
            done(run.chunk);
        }
        self.records = 0;
        self.bytes = 0;
        (records, internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A chunk of records `"<key>\n"` for rising keys.
    fn chunk(keys: &[u64]) -> Chunk {
        let mut c = Chunk::default();
        for &k in keys {
            c.data.extend_from_slice(format!("{k}\n").as_bytes());
            c.mark(k, false);
        }
        c
    }

    fn lines(out: &[u8]) -> Vec<u64> {
        std::str::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }

    #[test]
    fn merges_runs_and_holds_what_is_stamped_at_or_after_the_bound() {
        let mut runs = Runs::default();
        runs.push(chunk(&[1, 4, 9]));
        runs.push(chunk(&[2, 3, 10]));
        let mut out = Vec::new();
        let e = runs.emit(9, &mut out, usize::MAX, drop);
        assert_eq!(lines(&out), [1, 2, 3, 4]);
        assert_eq!(e.records, 4);
        assert_eq!(runs.records(), 2);
        assert!(!runs.holds_below(9));
        runs.push(chunk(&[5]));
        out.clear();
        runs.emit(u64::MAX, &mut out, usize::MAX, drop);
        assert_eq!(lines(&out), [5, 9, 10]);
        assert!(runs.is_empty());
        assert_eq!(runs.bytes(), 0);
    }

    #[test]
    fn stops_at_the_cap_between_records_and_goes_on() {
        let mut runs = Runs::default();
        runs.push(chunk(&[10, 30, 50]));
        runs.push(chunk(&[20, 40, 60]));
        let mut out = Vec::new();
        runs.emit(u64::MAX, &mut out, 5, drop);
        assert_eq!(lines(&out), [10, 20]);
        runs.emit(u64::MAX, &mut out, usize::MAX, drop);
        assert_eq!(lines(&out), [10, 20, 30, 40, 50, 60]);
    }

    #[test]
    fn counts_the_sinks_own_records_and_urgency() {
        let mut runs = Runs::default();
        let mut notes = chunk(&[2]);
        notes.internal = true;
        runs.push(notes);
        let mut c = Chunk::default();
        c.data.extend_from_slice(b"1\n");
        c.mark(1, true);
        runs.push(c);
        let mut out = Vec::new();
        let mut recycled = 0;
        let e = runs.emit(u64::MAX, &mut out, usize::MAX, |_| recycled += 1);
        assert_eq!(
            e,
            Emitted {
                records: 2,
                internal: 1,
                urgent: true
            }
        );
        assert_eq!(recycled, 2);
    }

    proptest! {
        /// Against the naive oracle: after each bound, exactly the records stamped before it,
        /// sorted by stamp, whatever the cap; nothing lost, nothing twice.
        #[test]
        fn emits_exactly_what_a_sort_would(
            runs in proptest::collection::vec(
                proptest::collection::btree_set(0u64..200, 0..20), 0..6),
            mut bounds in proptest::collection::vec(0u64..220, 1..5),
            cap in 1usize..64,
        ) {
            let mut held = Runs::default();
            let mut all: Vec<u64> = Vec::new();
            for keys in &runs {
                let keys: Vec<u64> = keys.iter().copied().collect();
                all.extend(&keys);
                held.push(chunk(&keys));
            }
            bounds.sort_unstable();
            bounds.push(u64::MAX);
            let mut out = Vec::new();
            for &b in &bounds {
                loop {
                    let before = out.len();
                    let limit = before + cap;
                    held.emit(b, &mut out, limit, drop);
                    if out.len() == before {
                        break;
                    }
                }
                let mut expected: Vec<u64> = all.iter().copied().filter(|&k| k < b).collect();
                expected.sort_unstable();
                prop_assert_eq!(lines(&out), expected);
            }
            prop_assert!(held.is_empty());
            prop_assert_eq!(held.bytes(), 0);
        }
    }
}
