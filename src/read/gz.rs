//! Reading a `.gz` segment so that no byte of a damaged member is ever returned.
//!
//! A gzip member's CRC32 and length are at its end, so a streaming decoder hands out a
//! damaged member's bytes before it can know they are wrong (`cat` printed thousands of
//! lines that were never logged before it reported the CRC error). Here every member is
//! checked first, in a pass that decompresses to nowhere; the second pass returns the bytes
//! of the members that passed, then the error. Twice the decompression, no buffering.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

/// The decompressed bytes of `f`'s good members, then the error of the first bad one.
pub(super) fn checked(mut f: File) -> io::Result<Box<dyn Read + Send>> {
    let (good, damage) = check(&mut f)?;
    f.seek(SeekFrom::Start(0))?;
    let inner = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(64 * 1024, f));
    Ok(Box::new(Checked {
        inner: inner.take(good),
        damage,
    }))
}

/// Decompressed bytes in the members before the first bad one, and that member's error.
fn check(f: &mut File) -> io::Result<(u64, Option<io::Error>)> {
    f.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::with_capacity(64 * 1024, &*f);
    let mut good = 0u64;
    let mut members = 0u64;
    loop {
        if r.fill_buf()?.is_empty() {
            if members == 0 {
                // An empty file: not a gzip stream at all.
                return Ok((0, Some(damaged(0, io::ErrorKind::UnexpectedEof.into()))));
            }
            return Ok((good, None));
        }
        let mut member = flate2::bufread::GzDecoder::new(&mut r);
        match io::copy(&mut member, &mut io::sink()) {
            Ok(n) => {
                good += n;
                members += 1;
            }
            Err(e) => return Ok((good, Some(damaged(good, e)))),
        }
    }
}

fn damaged(offset: u64, e: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "gzip data damaged in the member starting at decompressed offset {offset} ({e}); \
             none of that member is returned"
        ),
    )
}

struct Checked<R> {
    inner: io::Take<R>,
    damage: Option<io::Error>,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf)? {
            0 => match self.damage.take() {
                Some(e) => Err(e),
                None => Ok(0),
            },
            n => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn member(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read(bytes: &[u8]) -> (Vec<u8>, Option<String>) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let mut r = checked(f).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn a_damaged_member_yields_nothing_and_the_good_ones_everything() {
        let (a, b, c) = (member(b"one\ntwo\n"), member(b"three\n"), member(b"four\n"));
        let whole = [a.clone(), b.clone(), c.clone()].concat();
        assert_eq!(read(&whole), (b"one\ntwo\nthree\nfour\n".to_vec(), None));
        // The CRC of the second member: its data inflates fine, the check fails.
        let mut bad = b.clone();
        let crc = bad.len() - 8;
        bad[crc] ^= 0xff;
        let (out, err) = read(&[a.clone(), bad, c].concat());
        assert_eq!(out, b"one\ntwo\n");
        let err = err.expect("an error");
        assert!(err.contains("decompressed offset 8"), "{err}");
        // Truncated: the last member never ends.
        let (out, err) = read(&whole[..whole.len() - 3]);
        assert_eq!(out, b"one\ntwo\nthree\n");
        assert!(err.is_some());
        assert!(read(b"").1.is_some());
    }
}
