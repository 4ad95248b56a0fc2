//! Reading one segment file line by line, with offsets, for `verify` and `stats`.

use std::io::{self, BufRead, BufReader};

use tracing_filesink::read::SegmentFile;

/// Calls `on_line(offset, line, complete)` for every line of `file` (without its newline;
/// `complete` is false for a last line without one). Returns the read error that ended it
/// early (a damaged `.gz`) with the decompressed offset it came at.
pub(crate) fn scan(
    file: &SegmentFile,
    mut on_line: impl FnMut(u64, &[u8], bool),
) -> io::Result<Option<(u64, io::Error)>> {
    let mut r = BufReader::with_capacity(64 * 1024, file.open()?);
    let mut offset = 0u64;
    let mut line = Vec::with_capacity(512);
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(None),
            Ok(n) => {
                let complete = line.last() == Some(&b'\n');
                let body = if complete { &line[..n - 1] } else { &line[..] };
                on_line(offset, body, complete);
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Ok(Some((offset + line.len() as u64, e))),
        }
    }
}
