//! Seeking by time inside a plain file: the times of a file's lines never decrease (the
//! writer orders the file by stamp, and prints times derived from the stamps), so the first
//! line at or after a time is found by bisection over byte offsets, reading a few KiB per
//! step instead of the whole file.
//!
//! A line without a time (a fragment left by a crash) is stepped over when probing. If the
//! system clock stepped back while the file was written, its times go back once there: the
//! bisection then lands on one of the places where the time is crossed, and the caller's
//! filter still checks every line it prints, so nothing outside the range is printed, but
//! lines before the step may be skipped. The reader only bisects when asked for a start time.

use std::io::{self, Read, Seek, SeekFrom};
use std::time::SystemTime;

/// Below this span the bisection stops and the caller scans.
const SCAN_BELOW: u64 = 64 * 1024;
/// How much is read at a probe to find the next whole line.
const PROBE: usize = 8 * 1024;

/// The offset of a line start at or before the first line whose time (`time_of`) is at or
/// after `since`, in a file of `len` bytes. Every line before the offset is earlier than
/// `since`; the caller reads on from there, filtering.
pub(crate) fn offset_at_or_before<F>(
    file: &mut F,
    len: u64,
    since: SystemTime,
    time_of: impl Fn(&[u8]) -> Option<SystemTime>,
) -> io::Result<u64>
where
    F: Read + Seek,
{
    // Invariant: the line starting at `lo` (a line start) is earlier than `since`, or `lo`
    // is 0; every line starting at or after `hi` is at or after `since`.
    let (mut lo, mut hi) = (0u64, len);
    let mut buf = vec![0u8; PROBE];
    while hi - lo > SCAN_BELOW {
        let mid = lo + (hi - lo) / 2;
        match timed_line_after(file, mid, hi, &mut buf, &time_of)? {
            Some((start, t)) if t < since => lo = start,
            Some((start, _)) => hi = start,
            // No timed line starts between `mid` and `hi`: the answer is before `mid`.
            None => hi = mid,
        }
    }
    Ok(lo)
}

/// The first line that starts after `from` (strictly inside the file) and before `end`,
/// with a time: its start and its time.
fn timed_line_after<F: Read + Seek>(
    file: &mut F,
    from: u64,
    end: u64,
    buf: &mut [u8],
    time_of: &impl Fn(&[u8]) -> Option<SystemTime>,
) -> io::Result<Option<(u64, SystemTime)>> {
    let mut pos = from;
    // Skip the rest of the line `from` falls in.
    let mut in_line = true;
    let mut line: Vec<u8> = Vec::new();
    let mut line_start = 0;
    file.seek(SeekFrom::Start(pos))?;
    while pos < end {
        let n = file.read(buf)?;
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = pos + i as u64;
            if in_line {
                if b == b'\n' {
                    in_line = false;
                    line.clear();
                    line_start = at + 1;
                    if line_start >= end {
                        return Ok(None);
                    }
                }
                continue;
            }
            if b == b'\n' {
                if let Some(t) = time_of(&line) {
                    return Ok(Some((line_start, t)));
                }
                line.clear();
                line_start = at + 1;
                if line_start >= end {
                    return Ok(None);
                }
            } else {
                line.push(b);
            }
        }
        pos += n as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::time::{Duration, UNIX_EPOCH};

    /// Lines `"<secs> <padding>"`; a line that does not start with a number has no time.
    fn time_of(line: &[u8]) -> Option<SystemTime> {
        let s = std::str::from_utf8(line).ok()?;
        let secs: u64 = s.split(' ').next()?.parse().ok()?;
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn file(times: &[u64], pad: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, t) in times.iter().enumerate() {
            if i % 97 == 13 {
                out.extend_from_slice(b"a fragment without a time\n");
            }
            out.extend_from_slice(format!("{t} {}\n", "x".repeat(pad)).as_bytes());
        }
        out
    }

    /// The offset of the first line at or after `since`, by scanning (the oracle).
    fn scan(bytes: &[u8], since: u64) -> u64 {
        let mut start = 0u64;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if time_of(&line[..line.len() - 1])
                .is_some_and(|t| t >= UNIX_EPOCH + Duration::from_secs(since))
            {
                return start;
            }
            start += line.len() as u64;
        }
        start
    }

    #[test]
    fn lands_before_the_first_line_at_or_after_the_time_and_close_to_it() {
        let times: Vec<u64> = (0..20_000).map(|i| 1_000 + i / 3).collect();
        let bytes = file(&times, 150);
        for since in [0, 1_000, 1_001, 3_000, 5_000, 7_665, 7_666, 9_999] {
            let mut c = Cursor::new(&bytes);
            let at = offset_at_or_before(
                &mut c,
                bytes.len() as u64,
                UNIX_EPOCH + Duration::from_secs(since),
                time_of,
            )
            .unwrap();
            let first = scan(&bytes, since);
            assert!(
                at <= first,
                "since {since}: {at} after the first match {first}"
            );
            assert!(
                first - at <= SCAN_BELOW + 512,
                "since {since}: {at} is {} bytes before the first match",
                first - at
            );
            assert!(at == 0 || bytes[at as usize - 1] == b'\n', "a line start");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_skips_a_line_at_or_after_the_time(
            steps in proptest::collection::vec(0u64..3, 1..3000),
            since in 0u64..4000,
            pad in 0usize..300,
        ) {
            let mut t = 0;
            let times: Vec<u64> = steps.iter().map(|s| { t += s; t }).collect();
            let bytes = file(&times, pad);
            let mut c = Cursor::new(&bytes);
            let at = offset_at_or_before(
                &mut c,
                bytes.len() as u64,
                UNIX_EPOCH + Duration::from_secs(since),
                time_of,
            ).unwrap();
            proptest::prop_assert!(at <= scan(&bytes, since));
        }
    }
}
