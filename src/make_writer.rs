//! `build_writer()`: a `MakeWriter` for users who keep `tracing_subscriber::fmt::layer()`.

use std::io;
use std::sync::Arc;

use tracing_subscriber::fmt::MakeWriter;

use crate::format::escape::controls_escape_into;
use crate::format::Timed;
use crate::guard::Users;
use crate::queue::Queue;

/// A [`MakeWriter`] feeding the sink: each event `fmt::layer()` writes becomes one record.
/// Control characters inside a record (the raw CR/LF that fmt's text format lets through) are
/// escaped JSON-style (`\n`, `\u001b`), so a record stays one line and a JSON record stays
/// valid JSON.
#[derive(Debug, Clone)]
pub struct FileSinkWriter {
    queue: Arc<Queue>,
    /// Keeps the sink running while a writer lives, even if the guard is dropped.
    _users: Arc<Users>,
}

/// The writer for one event; the record is queued when it is dropped.
#[derive(Debug)]
pub struct RecordWriter<'a> {
    queue: &'a Queue,
    buf: Vec<u8>,
}

impl FileSinkWriter {
    pub(crate) fn new(queue: Arc<Queue>, users: Arc<Users>) -> FileSinkWriter {
        FileSinkWriter {
            queue,
            _users: users,
        }
    }
}

impl<'a> MakeWriter<'a> for FileSinkWriter {
    type Writer = RecordWriter<'a>;

    fn make_writer(&'a self) -> RecordWriter<'a> {
        RecordWriter {
            queue: &self.queue,
            buf: Vec::with_capacity(256),
        }
    }
}

impl io::Write for RecordWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RecordWriter<'_> {
    fn drop(&mut self) {
        let mut rec = std::mem::take(&mut self.buf);
        if rec.is_empty() {
            return;
        }
        while rec.last() == Some(&b'\n') || rec.last() == Some(&b'\r') {
            rec.pop();
        }
        let clean = rec
            .iter()
            .all(|&b| b >= 0x20 && b != 0x7f && b != 0xC2 && b != 0xE2);
        let mut rec = if clean {
            rec
        } else {
            let s = String::from_utf8_lossy(&rec);
            let mut out = Vec::with_capacity(rec.len() + 16);
            // JSON-style escapes: still valid JSON for fmt's JSON format, readable in text.
            controls_escape_into(&mut out, &s);
            out
        };
        rec.push(b'\n');
        self.queue
            .log(Timed::new(&rec, None), crate::queue::Put::line());
    }
}
