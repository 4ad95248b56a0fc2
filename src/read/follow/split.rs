//! Cutting what is read into lines: a line is returned only once its newline is there.

use std::collections::VecDeque;

use crate::read::Line;

/// Carries the bytes of a line not yet complete between reads.
#[derive(Debug, Default)]
pub(super) struct Splitter {
    pub(super) carry: Vec<u8>,
    /// Offset in the file (decompressed) of `carry[0]`.
    pub(super) offset: u64,
}

impl Splitter {
    /// Takes `data` (read right after the carried bytes) and queues every complete line.
    pub(super) fn push(&mut self, data: &[u8], seq: Option<u64>, out: &mut VecDeque<Line>) {
        let mut rest = data;
        while let Some(i) = memchr(b'\n', rest) {
            let mut bytes = std::mem::take(&mut self.carry);
            bytes.extend_from_slice(&rest[..i]);
            let len = bytes.len() as u64 + 1;
            out.push_back(Line {
                bytes,
                seq,
                offset: self.offset,
                complete: true,
            });
            self.offset += len;
            rest = &rest[i + 1..];
        }
        self.carry.extend_from_slice(rest);
    }

    /// Where the next read starts.
    pub(super) fn read_pos(&self) -> u64 {
        self.offset + self.carry.len() as u64
    }

    /// The end of a finished file: an incomplete last line is a torn line, returned as such.
    pub(super) fn finish(&mut self, seq: Option<u64>, out: &mut VecDeque<Line>) {
        if !self.carry.is_empty() {
            let bytes = std::mem::take(&mut self.carry);
            let len = bytes.len() as u64;
            out.push_back(Line {
                bytes,
                seq,
                offset: self.offset,
                complete: false,
            });
            self.offset += len;
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}
