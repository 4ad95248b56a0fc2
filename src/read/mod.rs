//! Reading a sink's files back: segments in write order, lines and records across plain and
//! compressed segments, and a follower that keeps reading as the sink rotates.
//!
//! ```
//! use tracing_filesink::read::LogDir;
//! # let dir = tempfile::tempdir()?;
//! # std::fs::write(dir.path().join("app.log"), "{\"timestamp\":\"2026-11-26T03:14:48.123456Z\",\"level\":\"INFO\"}\n")?;
//!
//! let logs = LogDir::open(dir.path(), "app")?;
//! for segment in logs.segments()? {
//!     println!("{} {:?}", segment.file_name(), segment.kind());
//! }
//! for record in logs.records()? {
//!     let record = record?;
//!     println!("{:?} {:?} {}", record.timestamp(), record.level(), record.line());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The order comes from the names alone (the sequence number), never from file times; a
//! segment found both plain and compressed (a compression that finished but did not get to
//! remove its source) is read once. Reading is safe while the sink runs: every segment is
//! opened as soon as it is seen (with the `notify` feature a follower sees each one the moment
//! a rotation names it) and a file once opened is read to its end whatever happens to its
//! names; a segment compressed before it was opened is read as its `.gz`.
//!
//! Errors are per file: a file that cannot be opened or read is named by one error and the
//! next file follows; a hole in the sequence numbers (a segment removed before it could be
//! read, or missing from the middle) is one error naming the numbers. No line of a `.gz`
//! member whose CRC32 or length check fails is ever returned.

mod follow;
mod gz;
mod record;
mod seek;
mod shelf;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use follow::Follower;
pub use record::Record;

use crate::error::Error;
use crate::segment::name;

/// What a file of the sink is, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SegmentKind {
    /// Sealed by a rotation, not yet durable: `<segment>.log.pending`. Its content is final.
    Pending,
    /// A finished segment: `<stem>.<seq>.<start>.log`.
    Plain,
    /// A compressed finished segment: `<segment>.log.gz`.
    Compressed,
    /// The file being written: `<stem>.log`.
    Active,
}

/// One file of a sink's directory: a segment (pending, plain or compressed) or the active
/// file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    path: PathBuf,
    file_name: String,
    kind: SegmentKind,
    seq: Option<u64>,
    label: Option<String>,
    len: u64,
}

impl SegmentFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The file's name.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }
    /// Pending, plain, compressed or active.
    pub fn kind(&self) -> SegmentKind {
        self.kind
    }
    /// The sequence number (`None` for the active file, whose number is given when it is
    /// rotated).
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }
    /// The start time as it appears in the name (`20261126T031448Z`); `None` for the active
    /// file.
    pub fn start_label(&self) -> Option<&str> {
        self.label.as_deref()
    }
    /// The start time the name gives (to the second); `None` for the active file.
    pub fn start_time(&self) -> Option<SystemTime> {
        self.label.as_deref().and_then(name::label_time)
    }
    /// Bytes on disk when the directory was listed (compressed bytes for a `.gz`; 0 if the
    /// file was renamed or removed by then).
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True when the file was empty when listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Opens the file for reading its lines: a `.gz` is decompressed. Every gzip member is
    /// checked (CRC32 and length) *before* any of its bytes are returned: a damaged member
    /// yields nothing, and the read ends with an error that names the decompressed offset
    /// where that member starts.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, Error> {
        let f = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        decoder(f, self.kind).map_err(|e| Error::io("read", &self.path, e))
    }
}

fn decoder(f: File, kind: SegmentKind) -> io::Result<Box<dyn Read + Send>> {
    if kind == SegmentKind::Compressed {
        gz::checked(f)
    } else {
        Ok(Box::new(f))
    }
}

/// One line read back: the bytes as written, without the newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    bytes: Vec<u8>,
    seq: Option<u64>,
    offset: u64,
    complete: bool,
}

impl Line {
    /// A line read while seeking (its place is not known).
    fn probe(bytes: &[u8]) -> Line {
        Line {
            bytes: bytes.to_vec(),
            seq: None,
            offset: 0,
            complete: true,
        }
    }

    /// The line's bytes, without the newline.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The line as text; `None` if it is not UTF-8 (the sink writes only UTF-8, so only
    /// damage makes this `None`).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }
    /// The line's bytes, without the newline.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
    /// The sequence number of the segment it was read from; `None` when it was read from the
    /// active file before a rotation gave that file a number.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }
    /// Where the line starts in its file (in the decompressed data for a `.gz`).
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// False for a last line without its newline at the end of a finished segment: a record
    /// a crash tore, in a file that startup recovery then sealed as it was (a record in the
    /// next file names the segment), or damage. It is a fragment, not a record: `filesink
    /// cat` and `follow` never print it. An incomplete line at the end of the active file is
    /// still being written and is never returned.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.bytes))
    }
}

/// A sink's directory and stem, opened for reading.
#[derive(Debug, Clone)]
pub struct LogDir {
    dir: PathBuf,
    stem: name::Stem,
}

impl LogDir {
    /// The files of `stem` in `dir`. Fails if `dir` cannot be read.
    pub fn open(dir: impl AsRef<Path>, stem: impl Into<String>) -> Result<LogDir, Error> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::read_dir(&dir).map_err(|e| Error::io("read directory", &dir, e))?;
        Ok(LogDir {
            dir,
            stem: name::Stem::new(stem, name::DEFAULT_EXT),
        })
    }

    /// Reads the files of a sink built with
    /// [`file_extension(ext)`](crate::Builder::file_extension) (`<stem>.<ext>`,
    /// `<stem>.<seq>.<start>.<ext>[.gz]`) instead of `.log` files.
    #[must_use]
    pub fn with_extension(self, ext: impl Into<String>) -> LogDir {
        let stem = name::Stem::new(self.stem.to_string(), ext);
        LogDir { stem, ..self }
    }

    /// [`LogDir::stems`] for sinks whose files have the extension `ext`.
    pub fn stems_with_extension(dir: impl AsRef<Path>, ext: &str) -> Result<Vec<String>, Error> {
        let mut stems: Vec<String> = read_names(dir.as_ref())?
            .iter()
            .filter_map(|n| name::stem_of_ext(n, ext).map(str::to_string))
            .collect();
        stems.sort();
        stems.dedup();
        Ok(stems)
    }

    /// The stems of the sinks whose `.log` files are in `dir` (active files, lock files and
    /// segments), sorted.
    pub fn stems(dir: impl AsRef<Path>) -> Result<Vec<String>, Error> {
        let dir = dir.as_ref();
        let mut stems: Vec<String> = read_names(dir)?
            .iter()
            .filter_map(|n| name::stem_of(n).map(str::to_string))
            .collect();
        stems.sort();
        stems.dedup();
        Ok(stems)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The stem.
    pub fn stem(&self) -> &str {
        &self.stem
    }
    /// The path of the active file, `<dir>/<stem>.log` (or the extension given).
    pub fn active_path(&self) -> PathBuf {
        self.dir.join(name::active(&self.stem))
    }

    /// Every segment file of the stem in write order (by sequence number; for one number:
    /// pending, plain, compressed), then the active file if it exists. A segment found both
    /// plain and compressed is listed twice; [`LogDir::lines`] reads it once.
    pub fn segments(&self) -> Result<Vec<SegmentFile>, Error> {
        self.list(true)
    }

    /// Segments kept as `<segment>.log.unsynced`, by sequence number: their fsync failed
    /// when they were finished, so whether their end reached the disk is unknown. The sink
    /// never renames, compresses or deletes them, and [`LogDir::segments`] does not list
    /// them; they are there for an operator to inspect.
    pub fn unsynced(&self) -> Result<Vec<(u64, PathBuf)>, Error> {
        let mut out: Vec<(u64, PathBuf)> = read_names(&self.dir)?
            .into_iter()
            .filter_map(|n| name::parse_unsynced(&self.stem, &n).map(|seq| (seq, self.dir.join(n))))
            .collect();
        out.sort();
        Ok(out)
    }

    /// [`LogDir::segments`]; without `with_len` no file is stat'ed (every length is 0).
    pub(crate) fn list(&self, with_len: bool) -> Result<Vec<SegmentFile>, Error> {
        let mut out = Vec::new();
        let mut active = None;
        let active_name = name::active(&self.stem);
        for entry in std::fs::read_dir(&self.dir).map_err(|e| self.dir_error(e))? {
            let entry = entry.map_err(|e| self.dir_error(e))?;
            let Ok(file_name) = entry.file_name().into_string() else {
                continue;
            };
            let kind_seq = if file_name == active_name {
                Some((SegmentKind::Active, None, None))
            } else {
                name::parse(&self.stem, &file_name).map(|n| {
                    let kind = if n.compressed {
                        SegmentKind::Compressed
                    } else if n.pending {
                        SegmentKind::Pending
                    } else {
                        SegmentKind::Plain
                    };
                    (kind, Some(n.seq), Some(n.label))
                })
            };
            let Some((kind, seq, label)) = kind_seq else {
                continue;
            };
            // The type from the listing itself: a segment renamed (pending → final) or removed
            // (plain → gz) since is still listed under the name it had, never dropped.
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let len = if with_len {
                entry.metadata().map_or(0, |m| m.len())
            } else {
                0
            };
            let f = SegmentFile {
                path: entry.path(),
                file_name,
                kind,
                seq,
                label,
                len,
            };
            if kind == SegmentKind::Active {
                active = Some(f);
            } else {
                out.push(f);
            }
        }
        out.sort_by_key(|f| (f.seq, f.kind));
        out.extend(active);
        Ok(out)
    }

    /// Every complete line of every segment and of the active file, in write order, `.gz`
    /// decompressed; ends at the end of the active file as it is when reached. Safe while the
    /// sink runs: rotations during the read lose and repeat nothing.
    pub fn lines(&self) -> Result<Lines, Error> {
        Ok(Lines {
            inner: Follower::new(self.clone(), follow::Start::Beginning, true)?,
        })
    }

    /// [`LogDir::lines`], each parsed into a [`Record`].
    pub fn records(&self) -> Result<Records, Error> {
        Ok(Records {
            lines: self.lines()?,
        })
    }

    /// [`LogDir::records`] from `since` on, found without reading what comes before: the
    /// segments that end before it are known from their names, and in the first plain file
    /// (segment or active file) the place is found by bisection, since the times in a file
    /// never decrease. `time_of` reads a line's time (`None` for a line without one). A few
    /// records before `since` may still come (at most one probe span, 64 KiB): filter them.
    /// If the system clock stepped back while a file was written, records before the step
    /// that are after `since` may be missed.
    pub fn records_since(
        &self,
        since: SystemTime,
        time_of: impl Fn(&Record) -> Option<SystemTime> + Send + Sync + 'static,
    ) -> Result<Records, Error> {
        let follower = Follower::new(self.clone(), follow::Start::Beginning, true)?;
        let time_of = move |bytes: &[u8]| time_of(&Record::parse(Line::probe(bytes)));
        let since = follow::Since {
            at: since,
            time_of: Box::new(time_of),
        };
        Ok(Records {
            lines: Lines {
                inner: follower.starting_at(since),
            },
        })
    }

    /// A follower from the oldest segment on: every line ever written that is still on disk,
    /// then every line written from now on.
    pub fn follow(&self) -> Result<Follower, Error> {
        Follower::new(self.clone(), follow::Start::Beginning, false)
    }

    /// A follower from the end of the active file: only lines written from now on (`tail -F`
    /// without the last lines).
    pub fn follow_new(&self) -> Result<Follower, Error> {
        Follower::new(self.clone(), follow::Start::End, false)
    }

    fn dir_error(&self, e: io::Error) -> Error {
        Error::io("read directory", &self.dir, e)
    }
}

fn read_names(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))? {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        if let Ok(n) = entry.file_name().into_string() {
            names.push(n);
        }
    }
    Ok(names)
}

/// The lines of a directory, in write order: [`LogDir::lines`].
#[derive(Debug)]
pub struct Lines {
    inner: Follower,
}

impl Iterator for Lines {
    type Item = Result<Line, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.poll().transpose()
    }
}

/// The records of a directory, in write order: [`LogDir::records`].
#[derive(Debug)]
pub struct Records {
    lines: Lines,
}

impl Iterator for Records {
    type Item = Result<Record, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.lines.next()?.map(Record::parse))
    }
}
