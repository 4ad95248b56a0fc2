//! The follower: reads the segments in order, then the active file, and keeps reading across
//! rotations without losing or repeating a line.
//!
//! How it knows the active file is finished: the writer hands every byte meant for a file to
//! the kernel *before* it seals that file (rotation writes the batch out first and rotates only
//! if that succeeded), and it seals (renames `<stem>.log` away) *before* it creates the next
//! `<stem>.log`. So once `<stem>.log` is a different file from the one the follower holds
//! open, nothing more will be written to the held one: the follower reads it to its end once
//! more and moves on. It keeps the file open meanwhile, so the data stays readable whatever
//! happens to the name (renamed to pending, to final, compressed, deleted by retention), and
//! the inode cannot be reused while it is open.
//!
//! Which segments come next: when the follower starts on an active file it lists the
//! directory, and checks afterwards that `<stem>.log` is still the same file, so every
//! segment listed was sealed before that file and the file's own number, when it gets one,
//! is higher than any listed (`floor`). After the file is sealed, the lowest segment above
//! `floor` is that file itself (recognized by its inode, or for a `.gz` by its content) and
//! everything above it comes after.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use super::{decoder, Line, LogDir, SegmentFile, SegmentKind};
use crate::error::Error;

const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// From the oldest segment.
    Beginning,
    /// From the end of the active file.
    End,
}

/// Follows a sink's files as it writes and rotates them, like `tail -F` but loss-free: every
/// complete line once, in write order, across rotations, compression and retention.
///
/// As an [`Iterator`] it blocks (polling every [`Follower::poll_interval`]) and never ends;
/// [`Follower::poll`] returns at once.
///
/// ```no_run
/// use tracing_filesink::read::LogDir;
/// for line in LogDir::open("logs", "app")?.follow_new()? {
///     println!("{}", line?);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The promise holds for the sink's own rotations (and its re-creation of a deleted active
/// file). A file rotated by another program (logrotate in `create` mode) may still receive
/// lines after the new `<stem>.log` appears, until the sink is told to reopen; lines written
/// to it after the follower moved on are not read.
#[derive(Debug)]
pub struct Follower {
    logs: LogDir,
    state: State,
    /// Every segment numbered up to this has been read (or was gone).
    done: Option<u64>,
    /// Start at the end of the first active file opened.
    skip_first_active: bool,
    /// Return `None` at the end of the active file instead of waiting.
    stop_at_end: bool,
    queue: VecDeque<Line>,
    interval: Duration,
}

#[derive(Debug)]
enum State {
    /// Between files: find the next segment, or the active file.
    Seek,
    Segment(SegReader),
    Active(ActiveReader),
}

/// What one look at the active file found.
enum Step {
    /// Lines are queued.
    Lines,
    /// Nothing new for now.
    Idle,
    /// The file is sealed and read to its end: on to the next segment.
    Done,
}

/// A finished (or pending) segment, read front to back.
struct SegReader {
    seq: u64,
    path: std::path::PathBuf,
    reader: Box<dyn Read + Send>,
    split: Splitter,
}

impl std::fmt::Debug for SegReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegReader").field("seq", &self.seq).finish()
    }
}

/// The active file, held open.
#[derive(Debug)]
struct ActiveReader {
    file: File,
    id: FileId,
    /// Every segment listed when the file was found active is numbered at most this.
    floor: Option<u64>,
    split: Splitter,
    /// `<stem>.log` is another file now: read this one to its end, then move on.
    sealed: bool,
}

/// Carries the bytes of a line not yet complete between reads.
#[derive(Debug, Default)]
struct Splitter {
    carry: Vec<u8>,
    /// Offset in the file (decompressed) of `carry[0]`.
    offset: u64,
}

impl Splitter {
    /// Takes `data` (read right after the carried bytes) and queues every complete line.
    fn push(&mut self, data: &[u8], seq: Option<u64>, out: &mut VecDeque<Line>) {
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
    fn read_pos(&self) -> u64 {
        self.offset + self.carry.len() as u64
    }

    /// The end of a finished file: an incomplete last line is a torn line, returned as such.
    fn finish(&mut self, seq: Option<u64>, out: &mut VecDeque<Line>) {
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

type FileId = (u64, u64);

/// The identity of the file at `path` (device and inode; volume and file index on Windows);
/// `None` if there is none.
fn path_id(path: &Path) -> Result<Option<FileId>, Error> {
    match crate::sys::path_identity(path) {
        Ok(id) => Ok(Some(id)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

impl Follower {
    pub(super) fn new(logs: LogDir, start: Start, stop_at_end: bool) -> Result<Follower, Error> {
        let done = match start {
            Start::Beginning => None,
            Start::End => logs.list(false)?.iter().filter_map(|s| s.seq).max(),
        };
        Ok(Follower {
            logs,
            state: State::Seek,
            done,
            skip_first_active: start == Start::End,
            stop_at_end,
            queue: VecDeque::new(),
            interval: Duration::from_millis(100),
        })
    }

    /// How long the iterator waits between looks when there is nothing new. Default: 100 ms.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Follower {
        self.interval = interval;
        self
    }

    /// The next complete line if one is available now; `Ok(None)` when the follower has read
    /// everything written so far.
    pub fn poll(&mut self) -> Result<Option<Line>, Error> {
        loop {
            if let Some(line) = self.queue.pop_front() {
                return Ok(Some(line));
            }
            let state = std::mem::replace(&mut self.state, State::Seek);
            self.state = match state {
                State::Seek => match self.seek()? {
                    Some(s) => s,
                    None => return Ok(None),
                },
                State::Segment(r) => self.read_segment(r)?,
                State::Active(mut a) => match self.read_active(&mut a) {
                    Ok(Step::Lines) => State::Active(a),
                    Ok(Step::Idle) => {
                        self.state = State::Active(a);
                        return Ok(None);
                    }
                    Ok(Step::Done) => State::Seek,
                    // Kept, with its position: the next poll goes on from there, never from
                    // the start of the file again.
                    Err(e) => {
                        self.state = State::Active(a);
                        return Err(e);
                    }
                },
            };
        }
    }

    /// The next segment above `done`, or the active file once there is none; `None` when
    /// neither exists yet.
    fn seek(&mut self) -> Result<Option<State>, Error> {
        loop {
            let names = self.next_segment()?;
            if !names.is_empty() {
                // Plain first, then its `.gz` copy: the plain file may be compressed and
                // removed between the listing and the open.
                for seg in names {
                    match File::open(&seg.path) {
                        Ok(f) => {
                            return Ok(Some(State::Segment(SegReader {
                                seq: seg.seq.unwrap_or_default(),
                                path: seg.path,
                                reader: decoder(f, seg.kind),
                                split: Splitter::default(),
                            })))
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io("open", &seg.path, e)),
                    }
                }
                // Every name renamed (pending → final, plain → gz) or deleted since the
                // listing: list again.
                continue;
            }
            let path = self.logs.active_path();
            let file = match File::open(&path) {
                Ok(f) => f,
                // Between a rotation's rename and its creation of the next file, or no sink yet.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("open", &path, e)),
            };
            let id = crate::sys::file_identity(&file).map_err(|e| Error::io("stat", &path, e))?;
            // Listed after the open: a segment above `done` sealed meanwhile is read first
            // (it may be this very file, sealed before it was opened).
            if !self.next_segment()?.is_empty() {
                continue;
            }
            // Still the active file after the listing: it was not sealed before or during
            // it, so every segment sealed before it was listed and its own number will be
            // above them all.
            if path_id(&path)? != Some(id) {
                continue;
            }
            let mut file = file;
            let mut split = Splitter::default();
            if std::mem::take(&mut self.skip_first_active) {
                split.offset = line_start_of_end(&mut file, &path)?;
            }
            return Ok(Some(self.active(file, id, split)));
        }
    }

    fn active(&self, file: File, id: FileId, split: Splitter) -> State {
        State::Active(ActiveReader {
            file,
            id,
            floor: self.done,
            split,
            sealed: false,
        })
    }

    /// The names of the lowest segment numbered above `done`, in the order to try them
    /// (pending, plain, then the `.gz` copy); empty when there is none.
    /// Numbers are consecutive (retention removes only the oldest): when the lowest found is
    /// not the next number, the directory is listed twice more, the best of the three taken.
    fn next_segment(&self) -> Result<Vec<SegmentFile>, Error> {
        let mut best: Vec<SegmentFile> = Vec::new();
        for _ in 0..3 {
            let mut found: Vec<SegmentFile> = self
                .logs
                .list(false)?
                .into_iter()
                .filter(|s| s.kind != SegmentKind::Active && s.seq > self.done)
                .collect();
            let Some(lowest) = found.iter().map(|s| s.seq).min() else {
                continue;
            };
            if best.first().is_none_or(|b| lowest < b.seq) {
                found.retain(|s| s.seq == lowest);
                found.sort_by_key(|s| s.kind);
                best = found;
            }
            let expected = self.done.map(|d| d + 1);
            if best.first().is_some_and(|b| b.seq == expected) {
                break;
            }
        }
        Ok(best)
    }

    fn read_segment(&mut self, mut r: SegReader) -> Result<State, Error> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match r.reader.read(&mut buf) {
                Ok(0) => {
                    r.split.finish(Some(r.seq), &mut self.queue);
                    self.done = Some(r.seq);
                    return Ok(State::Seek);
                }
                Ok(n) => {
                    r.split.push(&buf[..n], Some(r.seq), &mut self.queue);
                    if !self.queue.is_empty() {
                        return Ok(State::Segment(r));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Skip the damaged rest; the error names the segment.
                    self.done = Some(r.seq);
                    return Err(Error::io("read segment", &r.path, e));
                }
            }
        }
    }

    /// Reads what is new in the active file.
    fn read_active(&mut self, a: &mut ActiveReader) -> Result<Step, Error> {
        let path = self.logs.active_path();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let pos = a.split.read_pos();
            // The sink cuts a torn line off after a crash (or a failed write): read from the
            // start of the line again.
            let len = a
                .file
                .metadata()
                .map_err(|e| Error::io("stat", &path, e))?
                .len();
            if len < pos {
                a.split.carry.clear();
            }
            let pos = a.split.read_pos();
            a.file
                .seek(SeekFrom::Start(pos))
                .map_err(|e| Error::io("seek", &path, e))?;
            let n = match a.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", &path, e)),
            };
            if n > 0 {
                a.split.push(&buf[..n], None, &mut self.queue);
                if !self.queue.is_empty() {
                    return Ok(Step::Lines);
                }
                continue;
            }
            // At the end.
            if a.sealed {
                a.split.finish(None, &mut self.queue);
                self.done = self.sealed_seq(a)?;
                return Ok(Step::Done);
            }
            match path_id(&path)? {
                Some(id) if id != a.id => {
                    // Nothing more will be written to it: one more read to its end.
                    a.sealed = true;
                }
                // Same file, or between a rotation's rename and its creation of the next.
                _ => return Ok(Step::Idle),
            }
        }
    }

    /// The number the sealed active file got: the lowest above `floor` if that segment is
    /// this file; otherwise (deleted already, or renamed by another program) `floor`, so every
    /// segment above it is read.
    fn sealed_seq(&self, a: &ActiveReader) -> Result<Option<u64>, Error> {
        // A candidate renamed (pending → final) or removed (plain → gz) between the listing and
        // the comparison proves nothing: the others are compared, and if none is the held file,
        // the directory is listed again (three listings at most: a pending name can stay
        // while the finisher's fsync runs).
        for _ in 0..3 {
            let segs = self.logs.list(false)?;
            let Some(lowest) = segs
                .iter()
                .filter(|s| s.kind != SegmentKind::Active && s.seq > a.floor)
                .filter_map(|s| s.seq)
                .min()
            else {
                continue;
            };
            let mut unsure = false;
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
        Ok(a.floor)
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
        let mut gz = decoder(f, SegmentKind::Compressed);
        let mut held = &a.file;
        held.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seek", &s.path, e))?;
        let (mut x, mut y) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
        loop {
            let n = read_full(&mut held, &mut x).map_err(|e| Error::io("read", &s.path, e))?;
            let Ok(m) = read_full(&mut gz, &mut y) else {
                return Ok(Some(false));
            };
            if x[..n] != y[..m] {
                return Ok(Some(false));
            }
            if n == 0 {
                return Ok(Some(true));
            }
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

/// The offset just past the last newline of `file` (0 if it has none).
fn line_start_of_end(file: &mut File, path: &Path) -> Result<u64, Error> {
    let err = |e| Error::io("read", path, e);
    let size = file.metadata().map_err(err)?.len();
    crate::segment::after_last_newline(size, |buf, at| {
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(buf)
    })
    .map_err(err)
}

impl Iterator for Follower {
    type Item = Result<Line, Error>;

    /// The next line, waiting for it; `None` only for a follower made by
    /// [`super::LogDir::lines`] at the end of the active file.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.poll() {
                Ok(Some(line)) => return Some(Ok(line)),
                Ok(None) if self.stop_at_end => return None,
                Ok(None) => std::thread::sleep(self.interval),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
