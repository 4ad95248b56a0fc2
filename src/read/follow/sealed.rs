//! Which number the sealed active file got, so the follower goes on with the segments after
//! it and repeats nothing: the lowest segment above the floor is that file itself when it is
//! the same inode (through a name, or the file the shelf holds for it) or, for a `.gz`, the
//! same content.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use super::{ActiveReader, Follower, CHUNK};
use crate::error::Error;
use crate::read::shelf::Held;
use crate::read::{SegmentFile, SegmentKind};

impl Follower {
    /// The number the sealed active file got: the lowest above `floor` if that segment is
    /// this file (compared through the file the shelf holds for it when its names are gone);
    /// if no segment has the next number, the file got it and is gone (read through this
    /// handle); otherwise (renamed by another program) `floor`, so every segment above it is
    /// read.
    pub(super) fn sealed_seq(&self, a: &ActiveReader) -> Result<Option<u64>, Error> {
        // A candidate renamed (pending → final) or removed (plain → gz) between the listing and
        // the comparison proves nothing: the others are compared, and if none is the held file,
        // the directory is listed again (three listings at most: a pending name can stay
        // while the finisher's fsync runs).
        let mut next_exists = false;
        for _ in 0..3 {
            let segs = self.logs.list(false)?;
            let held = self.shared.held_above(a.floor);
            let Some(lowest) = segs
                .iter()
                .filter(|s| s.kind != SegmentKind::Active && s.seq > a.floor)
                .filter_map(|s| s.seq)
                .chain(held.iter().map(|&(seq, _)| seq))
                .min()
            else {
                continue;
            };
            next_exists |= a.floor.map(|f| f + 1) == Some(lowest);
            let mut unsure = false;
            let on_shelf = self.shared.with(lowest, |h| (h.kind, self.is_held(a, h)));
            match on_shelf {
                Some((_, Some(true))) => return Ok(Some(lowest)),
                Some((kind, Some(false))) if kind != SegmentKind::Pending => {}
                Some(_) => unsure = true,
                None => {}
            }
            for s in segs.iter().filter(|s| s.seq == Some(lowest)) {
                match self.is_same_file(a, s)? {
                    Some(true) => return Ok(Some(lowest)),
                    // A pending name is renamed to its final name at any moment, and an
                    // identity read while that happens can be wrong (Wine then reports the
                    // file's index with a volume serial of 0): only the final name can say no.
                    Some(false) if s.kind == SegmentKind::Pending => unsure = true,
                    Some(false) => {}
                    None => unsure = true,
                }
            }
            if !unsure {
                return Ok(a.floor);
            }
        }
        Ok(match a.floor {
            Some(f) if !next_exists => Some(f + 1),
            floor => floor,
        })
    }

    /// Whether the shelf's file `h` is the held active file; `None` if it cannot tell.
    fn is_held(&self, a: &ActiveReader, h: &Held) -> Option<bool> {
        if h.kind != SegmentKind::Compressed {
            return crate::sys::file_identity(&h.file).ok().map(|id| id == a.id);
        }
        let mut f = &h.file;
        f.seek(SeekFrom::Start(0)).ok()?;
        let gz = flate2::read::MultiGzDecoder::new(io::BufReader::new(f));
        Some(same_content(&a.file, gz))
    }

    /// Whether `s` is the held file; `None` if `s` is gone or cannot tell.
    fn is_same_file(&self, a: &ActiveReader, s: &SegmentFile) -> Result<Option<bool>, Error> {
        if s.kind != SegmentKind::Compressed {
            return match crate::sys::path_identity(&s.path) {
                Ok(id) => Ok(Some(id == a.id)),
                // Windows refuses even this open while a removal is pending, which lasts as
                // long as a handle is open: the follower's own, on a segment compressed while
                // it was the active file. Its `.gz`, listed beside it, answers instead.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    Ok(None)
                }
                Err(e) => Err(Error::io("stat", &s.path, e)),
            };
        }
        // A compressed copy: same content (the length the held file has now is final).
        let f = match File::open(&s.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", &s.path, e)),
        };
        let gz = flate2::read::MultiGzDecoder::new(io::BufReader::new(f));
        Ok(Some(same_content(&a.file, gz)))
    }
}

/// Whether `held` (from its start) and `other` have the same bytes.
fn same_content(mut held: &File, mut other: impl Read) -> bool {
    if held.seek(SeekFrom::Start(0)).is_err() {
        return false;
    }
    let (mut x, mut y) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let (Ok(n), Ok(m)) = (read_full(&mut held, &mut x), read_full(&mut other, &mut y)) else {
            return false;
        };
        if x[..n] != y[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
