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
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod sealed;
mod split;

use super::shelf::{Held, Shared, Watcher};
use super::{decoder, Line, LogDir, SegmentFile, SegmentKind};
use crate::error::Error;
use split::Splitter;

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
/// As an [`Iterator`] it blocks and never ends; [`Follower::poll`] returns at once. With the
/// `notify` feature a watcher thread opens each new segment the moment a file-system event
/// says a rotation named it, and holds it until it is read (256 files at most), so a follower
/// that falls behind for a while is not overtaken by compression and retention, and a wait
/// ends at the next event; without it (or where the platform refuses the watch) it looks
/// every [`Follower::poll_interval`]. A segment removed before the follower could open it is
/// reported by an error naming its number, never skipped in silence.
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
    /// Segments opened as soon as they appear, so retention cannot take them first.
    shared: Arc<Shared>,
    /// Keeps `shared` stocked from file-system events; `None`: stocked when polling.
    watcher: Option<Watcher>,
    /// The last error returned about the directory or the active file: the same one is not
    /// returned again until something succeeds (a follower waiting on an unreadable
    /// `<stem>.log` reports it once, not at every poll).
    last_error: Option<String>,
    /// A reader made by [`super::LogDir::lines`] that met an error on the directory or the
    /// active file: it has ended.
    ended: bool,
    /// Start at this time: the first plain file opened is entered by bisection.
    since: Option<Since>,
}

/// Reads a line's time (`None` for a line without one).
pub(super) type TimeOf = Box<dyn Fn(&[u8]) -> Option<SystemTime> + Send + Sync>;

/// Where a reader asked to start: a time, and how to read a line's time.
pub(super) struct Since {
    pub(super) at: SystemTime,
    pub(super) time_of: TimeOf,
}

impl std::fmt::Debug for Since {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Since").field("at", &self.at).finish()
    }
}

#[derive(Debug)]
enum State {
    /// Between files: find the next segment, or the active file.
    Seek,
    Segment(SegReader),
    Active(ActiveReader),
}

/// Why a step failed.
enum Failure {
    /// A file could not be read: it is passed over (one error per file).
    File(Error),
    /// The directory or the active file could not be read: the follower stays where it is.
    Stuck(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Stuck(e)
    }
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

type FileId = (u64, u64);

/// The identity of the file at `path` (device and inode; volume and file id on Windows);
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
        let shared = Arc::new(Shared::default());
        shared.set_done(done);
        let watcher = if stop_at_end {
            None
        } else {
            Watcher::start(&logs, &shared)
        };
        let mut f = Follower {
            logs,
            state: State::Seek,
            done,
            skip_first_active: start == Start::End,
            stop_at_end,
            queue: VecDeque::new(),
            interval: Duration::from_millis(100),
            shared,
            watcher,
            last_error: None,
            ended: false,
            since: None,
        };
        // Every segment there now is held before the first line is read: a reader that
        // takes its time is not overtaken by retention.
        f.shared.stock(&f.logs);
        if start == Start::End {
            // The active file is taken now, so the lines logged from here on are read even
            // if it is rotated before the first poll; a file created later is new as a whole.
            // One that cannot be read now is reported by the first poll.
            if let Ok(Some(s)) = f.seek() {
                f.state = s;
            }
            f.skip_first_active = false;
        }
        Ok(f)
    }

    /// How long the iterator waits between looks when there is nothing new. Default: 100 ms.
    /// Where file-system events are watched (feature `notify`: inotify, kqueue, FSEvents,
    /// ReadDirectoryChangesW) an event ends the wait at once and this is only the fallback.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Follower {
        self.interval = interval;
        self
    }

    /// Whether file-system events drive this follower (feature `notify`, and a watch the
    /// platform accepted); if not, it looks every [`Follower::poll_interval`].
    pub fn is_watching(&self) -> bool {
        self.watcher.is_some()
    }

    /// Waits until something may have changed in the directory (a file-system event), or
    /// for the poll interval: what the iterator does between two [`Follower::poll`]s that
    /// returned nothing.
    pub fn wait(&self) {
        let seen = self.shared.generation();
        if self.watcher.is_some() {
            self.shared.wait(seen, self.interval);
        } else {
            std::thread::sleep(self.interval);
        }
    }

    /// The next complete line if one is available now; `Ok(None)` when the follower has read
    /// everything written so far.
    ///
    /// An error concerns one file (named in it) or the directory: the follower has moved past
    /// a file it cannot read, and the next poll goes on with the next file. An error about the
    /// directory or the active file is returned once, not again at every poll while it lasts.
    /// A reader made by [`super::LogDir::lines`] ends after such an error.
    pub fn poll(&mut self) -> Result<Option<Line>, Error> {
        if self.ended {
            return Ok(None);
        }
        if self.watcher.is_none() && !self.stop_at_end {
            self.shared.stock(&self.logs);
        }
        match self.step() {
            Ok(Some(line)) => {
                self.last_error = None;
                Ok(Some(line))
            }
            Ok(None) => Ok(None),
            Err(Failure::File(e)) => Err(e),
            Err(Failure::Stuck(e)) => {
                if self.stop_at_end {
                    self.ended = true;
                    return Err(e);
                }
                let text = e.to_string();
                if self.last_error.as_deref() == Some(text.as_str()) {
                    return Ok(None);
                }
                self.last_error = Some(text);
                Err(e)
            }
        }
    }

    fn step(&mut self) -> Result<Option<Line>, Failure> {
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
                        return Err(Failure::Stuck(e));
                    }
                },
            };
        }
    }

    fn set_done(&mut self, done: Option<u64>) {
        self.done = done;
        self.shared.set_done(done);
    }

    /// The next segment above `done`, or the active file once there is none; `None` when
    /// neither exists yet.
    fn seek(&mut self) -> Result<Option<State>, Failure> {
        loop {
            let names = self.next_segment()?;
            if let Some(first) = names.first() {
                let seq = first.seq.unwrap_or_default();
                // Held since it appeared: whatever happened to its names since.
                if let Some(h) = self.shared.take(seq) {
                    return self.open_held(seq, h).map(Some);
                }
                // Plain first, then its `.gz` copy: the plain file may be compressed and
                // removed between the listing and the open.
                let mut failed = None;
                // (Only names: an entry the shelf stood in for has none.)
                for seg in names.into_iter().filter(|s| !s.file_name.is_empty()) {
                    match File::open(&seg.path) {
                        Ok(file) => {
                            return self
                                .open_held(
                                    seq,
                                    Held {
                                        kind: seg.kind,
                                        path: seg.path,
                                        file,
                                    },
                                )
                                .map(Some)
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => failed = Some(Error::io("open", &seg.path, e)),
                    }
                }
                if let Some(e) = failed {
                    // One error for this segment, then the next one.
                    self.set_done(Some(seq));
                    return Err(Failure::File(e));
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
                Err(e) => return Err(Failure::Stuck(Error::io("open", &path, e))),
            };
            let meta = file
                .metadata()
                .map_err(|e| Failure::Stuck(Error::io("stat", &path, e)))?;
            if !meta.is_file() {
                return Err(Failure::Stuck(Error::io(
                    "open",
                    &path,
                    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
                )));
            }
            let id = crate::sys::file_identity(&file)
                .map_err(|e| Failure::Stuck(Error::io("stat", &path, e)))?;
            // Listed after the open: a segment above `done` sealed meanwhile is read first
            // (it may be this very file, sealed before it was opened).
            if !self.next_segment()?.is_empty() {
                continue;
            }
            // Still the active file after the listing: it was not sealed before or during
            // it, so every segment sealed before it was listed and its own number will be
            // above them all.
            if path_id(&path).map_err(Failure::Stuck)? != Some(id) {
                continue;
            }
            let mut file = file;
            let mut split = Splitter::default();
            if std::mem::take(&mut self.skip_first_active) {
                split.offset = line_start_of_end(&mut file, &path).map_err(Failure::Stuck)?;
            }
            if let Some(since) = self.since.take() {
                split.offset = self
                    .enter_at(&mut file, &since)
                    .map_err(|e| Failure::Stuck(Error::io("read", &path, e)))?;
            }
            return Ok(Some(self.active(file, id, split)));
        }
    }

    fn open_held(&mut self, seq: u64, mut h: Held) -> Result<State, Failure> {
        let mut split = Splitter::default();
        let start = match self.since.take() {
            Some(since) if h.kind != SegmentKind::Compressed => self.enter_at(&mut h.file, &since),
            _ => Ok(0),
        };
        let opened = start.and_then(|at| {
            split.offset = at;
            h.file.seek(SeekFrom::Start(at))?;
            decoder(h.file, h.kind)
        });
        match opened {
            Ok(reader) => Ok(State::Segment(SegReader {
                seq,
                path: h.path,
                reader,
                split,
            })),
            Err(e) => {
                self.set_done(Some(seq));
                Err(Failure::File(Error::io("read segment", &h.path, e)))
            }
        }
    }

    /// Where to start reading a plain file (a segment or the active file, whose times never
    /// decrease) to find the first line at or after `since`: a line start found by
    /// bisection, at most one probe span before it.
    fn enter_at(&self, file: &mut File, since: &Since) -> io::Result<u64> {
        let len = file.metadata()?.len();
        super::seek::offset_at_or_before(file, len, since.at, &since.time_of)
    }

    /// Reads from `since` on: segments that end before it are skipped by their names (a
    /// segment ends before the next one starts), and the first plain file is entered by
    /// bisection. Lines before `since` may still come; the caller filters.
    pub(super) fn starting_at(mut self, since: Since) -> Follower {
        if let Ok(list) = self.logs.list(false) {
            let mut segs: Vec<&SegmentFile> = list
                .iter()
                .filter(|s| s.kind != SegmentKind::Active && s.seq.is_some())
                .collect();
            segs.sort_by_key(|s| s.seq);
            segs.dedup_by_key(|s| s.seq);
            let mut done = self.done;
            for pair in segs.windows(2) {
                // Labels are whole seconds, rounded down: the next segment started before
                // its label plus one second.
                match pair[1].start_time() {
                    Some(next) if next + Duration::from_secs(1) <= since.at => done = pair[0].seq,
                    _ => break,
                }
            }
            if done > self.done {
                self.set_done(done);
            }
        }
        self.since = Some(since);
        self
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
    /// (pending, plain, then the `.gz` copy); empty when there is none. A held segment
    /// counts even when its names are gone.
    ///
    /// Numbers are consecutive (retention removes only the oldest): when the lowest found is
    /// not the next number, the directory is listed twice more, the best of the three taken;
    /// if the numbers in between are still missing, they were removed before they could be
    /// read (a reader far behind retention): that is returned as an error, once, and the
    /// next call goes on after them.
    fn next_segment(&mut self) -> Result<Vec<SegmentFile>, Failure> {
        let mut best: Vec<SegmentFile> = Vec::new();
        let expected = self.done.map(|d| d + 1);
        for _ in 0..3 {
            let listed = match self.logs.list(false) {
                Ok(l) => l,
                // The directory is not there (yet, or any more): nothing to read.
                Err(e)
                    if e.io_error()
                        .is_some_and(|e| e.kind() == io::ErrorKind::NotFound) =>
                {
                    Vec::new()
                }
                Err(e) => return Err(Failure::Stuck(e)),
            };
            let mut found: Vec<SegmentFile> = listed
                .into_iter()
                .filter(|s| s.kind != SegmentKind::Active && s.seq > self.done)
                .collect();
            for (seq, kind) in self.shared.held_above(self.done) {
                if !found.iter().any(|s| s.seq == Some(seq)) {
                    found.push(SegmentFile {
                        path: self.logs.dir.clone(),
                        file_name: String::new(),
                        kind,
                        seq: Some(seq),
                        label: None,
                        len: 0,
                    });
                }
            }
            let Some(lowest) = found.iter().map(|s| s.seq).min() else {
                continue;
            };
            if best.first().is_none_or(|b| lowest < b.seq) {
                found.retain(|s| s.seq == lowest);
                found.sort_by_key(|s| s.kind);
                best = found;
            }
            if best.first().is_some_and(|b| b.seq == expected) {
                break;
            }
        }
        if let (Some(first), Some(want)) = (best.first().and_then(|b| b.seq), expected) {
            if first > want {
                // Numbers kept as `.unsynced` (their fsync failed) are holes by design.
                let unsynced: Vec<u64> = self
                    .logs
                    .unsynced()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(n, _)| n)
                    .filter(|n| (want..first).contains(n))
                    .collect();
                let lost = first - want - unsynced.len() as u64;
                self.set_done(Some(first - 1));
                if lost > 0 {
                    let what = if first - want == 1 {
                        format!("segment {want} was")
                    } else {
                        format!("segments {want}..={} were", first - 1)
                    };
                    return Err(Failure::File(Error::io(
                        "read segments",
                        &self.logs.dir,
                        io::Error::new(
                            io::ErrorKind::NotFound,
                            format!(
                                "{what} removed (retention) before this reader got to {}; \
                                 their lines are not read",
                                if lost == 1 { "it" } else { "them" }
                            ),
                        ),
                    )));
                }
            }
        }
        Ok(best)
    }

    fn read_segment(&mut self, mut r: SegReader) -> Result<State, Failure> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match r.reader.read(&mut buf) {
                Ok(0) => {
                    r.split.finish(Some(r.seq), &mut self.queue);
                    self.set_done(Some(r.seq));
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
                    // The lines before the damage are returned (for a `.gz`, only those of
                    // members whose check passed); the rest is skipped, the error names the
                    // segment. A partial line before the damage is not a line.
                    self.set_done(Some(r.seq));
                    return Err(Failure::File(Error::io("read segment", &r.path, e)));
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
                let done = self.sealed_seq(a)?;
                self.set_done(done);
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
                Ok(None) => self.wait(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
