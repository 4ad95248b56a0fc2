//! The active file and its finalization into a segment.
//!
//! Finalization is the crash-safe sequence: fsync the active file, rename it to a new segment
//! name without replacing anything, fsync the directory, then create the next active file with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` and the configured mode. The writer only *seals* (renames to
//! the segment's pending name and creates the next active file); the fsync and the rename to
//! the final name run on the finisher thread (`finish.rs`).

pub(crate) mod finish;
pub(crate) mod lock;
pub(crate) mod name;

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::Config;
use crate::error::Error;
use crate::fs::{FileHandle, Fs};

/// The file being appended to.
#[derive(Debug)]
pub(crate) struct Active {
    pub(crate) file: Box<dyn FileHandle>,
    /// Bytes in the file (the writer's own count; the file is append-only).
    pub(crate) size: u64,
    /// When this segment started: names the segment and anchors time rotation.
    pub(crate) opened: SystemTime,
    /// (device, inode) when opened, to notice the file being moved away.
    pub(crate) identity: (u64, u64),
}

/// Refuses a symlink or a directory at the active path.
pub(crate) fn check_active_path(path: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::symlink(path)),
        Ok(m) if m.is_dir() => Err(Error::config_path(
            "stem",
            path,
            "the active file path is a directory",
        )),
        Ok(m) if !m.is_file() => Err(Error::config_path(
            "stem",
            path,
            "the active file path is not a regular file",
        )),
        _ => Ok(()),
    }
}

/// The record reporting a torn last line cut off the active file. Only an active file that
/// someone else created while the sink ran can still be trimmed (`create_active`); at
/// startup a torn active file is sealed as it is instead (`recover.rs`, [`SEALED_TORN_NOTE`]).
pub(crate) const TRIM_NOTE: &str = "recovery: trimmed a torn last line of the active file";

/// The record reporting that startup recovery sealed a file as it was, its last line torn by
/// a crash; its fields are `segment` (the number the file has now) and `torn_bytes`. The
/// `filesink` command recognizes it by this text (`src/bin/filesink/verify.rs`).
pub(crate) const SEALED_TORN_NOTE: &str =
    "recovery: sealed a file as it was, with a torn last line (a crash cut a record; no byte was removed)";

/// Opens (or creates) the active file for appending. A partial last line left by a crash is
/// cut off and the cut reported at once by a record in the file; returns the bytes cut and
/// whether that record was written.
///
/// The record is written over the torn bytes before the file is cut after it, so a process
/// killed at any point leaves either the record or a torn tail (which the next start cuts and
/// reports): cutting first would leave a window, between the truncation and the write, where
/// a kill keeps the cut and loses its report. The fsync comes last, so a power loss cannot
/// keep the cut without the record either.
pub(crate) fn open_active(cfg: &Config, now: SystemTime) -> Result<(Active, u64, bool), Error> {
    let path = &cfg.active_path;
    check_active_path(path)?;
    let mut file = cfg
        .fs
        .open_append(path, cfg.file_mode)
        .map_err(|e| Error::creating("open active file", path, &cfg.dir, e))?;
    let mut size = file.len().map_err(|e| Error::io("stat", path, e))?;
    let keep = torn_tail_start(&*file, size).map_err(|e| Error::io("trim torn tail", path, e))?;
    let trimmed = size - keep;
    let mut reported = false;
    if trimmed > 0 {
        let mut rec = Vec::with_capacity(160);
        cfg.formatter.internal_record(
            &mut rec,
            tracing::Level::WARN,
            TRIM_NOTE,
            &[("trimmed_bytes", trimmed)],
        );
        reported = cfg.fs.write_at(path, keep, &rec).is_ok();
        size = if reported {
            keep + rec.len() as u64
        } else {
            keep
        };
        file.set_len(size)
            .map_err(|e| Error::io("trim torn tail", path, e))?;
        file.sync().map_err(|e| Error::io("fsync", path, e))?;
    }
    let opened = if size == 0 {
        now
    } else {
        first_timestamp(&*file).unwrap_or(now).min(now)
    };
    let identity = file.identity().map_err(|e| Error::io("stat", path, e))?;
    Ok((
        Active {
            file,
            size,
            opened,
            identity,
        },
        trimmed,
        reported,
    ))
}

/// Creates a fresh active file after a rotation.
pub(crate) fn create_active(cfg: &Config, now: SystemTime) -> Result<Active, Error> {
    let path = &cfg.active_path;
    let file = match cfg.fs.create_new(path, cfg.file_mode) {
        Ok(f) => f,
        // Someone (an operator, logrotate) created it meanwhile: append to theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return open_active(cfg, now).map(|(a, _, _)| a);
        }
        Err(e) => return Err(Error::creating("create active file", path, &cfg.dir, e)),
    };
    let identity = file.identity().map_err(|e| Error::io("stat", path, e))?;
    Ok(Active {
        file,
        size: 0,
        opened: now,
        identity,
    })
}

/// Where a partial last line (no trailing newline) starts: `size` if there is none.
pub(crate) fn torn_tail_start(file: &dyn FileHandle, size: u64) -> io::Result<u64> {
    if size == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    file.read_at(&mut last, size - 1)?;
    if last[0] == b'\n' {
        return Ok(size);
    }
    after_last_newline(size, |buf, at| read_exact_at(file, buf, at))
}

/// The offset just past the last newline in the first `size` bytes of a file (0 if there is
/// none), reading backwards 64 KiB at a time through `read_exact_at(buf, offset)`. Shared by
/// startup's torn-tail trim and the follower, which starts at the end of the last whole line.
pub(crate) fn after_last_newline(
    size: u64,
    mut read_exact_at: impl FnMut(&mut [u8], u64) -> io::Result<()>,
) -> io::Result<u64> {
    let mut end = size;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        read_exact_at(&mut chunk[..n], start)?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

pub(crate) fn read_exact_at(
    file: &dyn FileHandle,
    mut buf: &mut [u8],
    mut offset: u64,
) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The timestamp of the first record (JSON `"timestamp":"…"` or a text line's first word),
/// so a segment adopted after a restart is named after its real start.
pub(crate) fn first_timestamp(file: &dyn FileHandle) -> Option<SystemTime> {
    let mut buf = [0u8; 256];
    let n = file.read_at(&mut buf, 0).ok()?;
    let line = std::str::from_utf8(&buf[..n]).ok().or_else(|| {
        // A cut multi-byte character at the end of the window.
        let valid = std::str::from_utf8(&buf[..n]).err()?.valid_up_to();
        std::str::from_utf8(&buf[..valid]).ok()
    })?;
    let token = match line.strip_prefix("{\"timestamp\":\"") {
        Some(rest) => rest.split('"').next()?,
        None => line.split([' ', '\n']).next()?,
    };
    let dt = chrono::DateTime::parse_from_rfc3339(token).ok()?;
    Some(SystemTime::from(dt))
}

/// Renames the active file to the next free *pending* segment name (fast: no fsync). Returns
/// (pending path, final path) and takes `next_seq` past the number used.
pub(crate) fn seal(
    cfg: &Config,
    opened: SystemTime,
    next_seq: &mut u64,
) -> Result<(PathBuf, PathBuf), Error> {
    rename_active(cfg, opened, next_seq, true, "rename active file to segment")
        .map(|(_, to, fin)| (to, fin))
}

/// Renames the active file, never replacing anything, to the next free segment number (one
/// with neither a final nor a compressed segment): its pending name, or with `pending` false
/// its final name (a file already durable). Returns (number, path renamed to, final path)
/// and takes `next_seq` past the number used. `op` names the operation in errors.
pub(crate) fn rename_active(
    cfg: &Config,
    opened: SystemTime,
    next_seq: &mut u64,
    pending: bool,
    op: &'static str,
) -> Result<(u64, PathBuf, PathBuf), Error> {
    let label = name::label(opened, cfg.time_zone);
    let fs: &dyn Fs = &*cfg.fs;
    for _ in 0..1000 {
        let seq = *next_seq;
        // A planted segment numbered u64::MAX leaves no number after it: refuse to seal
        // (the writer keeps appending to the active file) rather than wrap around.
        let Some(next) = seq.checked_add(1) else {
            break;
        };
        *next_seq = next;
        let fin = cfg.path(&name::segment(&cfg.stem, seq, &label));
        let gz = cfg.path(&name::compressed(&cfg.stem, seq, &label));
        if fs.identity(&gz).is_ok() || fs.identity(&fin).is_ok() {
            continue;
        }
        let to = if pending {
            cfg.path(&name::pending(&cfg.stem, seq, &label))
        } else {
            fin.clone()
        };
        match fs.rename_noreplace(&cfg.active_path, &to) {
            Ok(()) => return Ok((seq, to, fin)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(op, &to, e)),
        }
    }
    Err(Error::io(
        op,
        &cfg.active_path,
        io::Error::new(io::ErrorKind::AlreadyExists, "no free segment name"),
    ))
}

/// One finished segment on disk: its plain file, its compressed file, or both (a compression
/// that finished but did not get to remove the source).
#[derive(Debug, Clone, Default)]
pub(crate) struct OnDisk {
    pub(crate) label: String,
    pub(crate) plain: Option<crate::fs::Entry>,
    pub(crate) gz: Option<crate::fs::Entry>,
    /// Sealed, not yet finished (only seen at startup after a crash, or while the finisher
    /// works): never compressed or pruned.
    pub(crate) pending: Option<crate::fs::Entry>,
}

impl OnDisk {
    /// Finished: it has a final name (plain or compressed).
    pub(crate) fn is_finished(&self) -> bool {
        self.plain.is_some() || self.gz.is_some()
    }
}

/// This stem's files in the directory.
#[derive(Debug, Default)]
pub(crate) struct DirScan {
    /// Finished segments by sequence number.
    pub(crate) segments: std::collections::BTreeMap<u64, OnDisk>,
    /// Names of this stem's temp files.
    pub(crate) temps: Vec<String>,
    pub(crate) active: Option<crate::fs::Entry>,
    /// The highest sequence number of an unsynced segment (its number is never reused).
    pub(crate) unsynced_max: Option<u64>,
}

impl DirScan {
    /// Bytes of the finished and sealed segments (plain, compressed and pending files).
    pub(crate) fn segment_bytes(&self) -> u64 {
        self.segments
            .values()
            .flat_map(|s| [&s.plain, &s.gz, &s.pending])
            .filter_map(|f| f.as_ref())
            .map(|f| f.len)
            .sum()
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.segments
            .keys()
            .next_back()
            .copied()
            .max(self.unsynced_max)
            .map_or(1, |s| s.saturating_add(1))
    }
}

pub(crate) fn scan(cfg: &Config) -> Result<DirScan, Error> {
    let entries = cfg
        .fs
        .read_dir(&cfg.dir)
        .map_err(|e| Error::io("read directory", &cfg.dir, e))?;
    let active_name = name::active(&cfg.stem);
    let mut out = DirScan::default();
    for e in entries {
        if !e.is_file {
            continue;
        }
        if e.name == active_name {
            out.active = Some(e);
        } else if name::is_temp(&cfg.stem, &e.name) {
            out.temps.push(e.name);
        } else if let Some(seq) = name::parse_unsynced(&cfg.stem, &e.name) {
            out.unsynced_max = out.unsynced_max.max(Some(seq));
        } else if let Some(n) = name::parse(&cfg.stem, &e.name) {
            let slot = out.segments.entry(n.seq).or_default();
            slot.label = n.label;
            if n.compressed {
                slot.gz = Some(e);
            } else if n.pending {
                slot.pending = Some(e);
            } else {
                slot.plain = Some(e);
            }
        }
    }
    Ok(out)
}
