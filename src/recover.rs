//! Startup recovery: repair what a crash left, touching only this stem's files.
//!
//! - temp files (a compression cut short) are removed;
//! - a segment present both plain and compressed (a crash between the rename of the `.gz` and
//!   the removal of its source) keeps the `.gz` if it verifies against the plain file, else the
//!   `.gz` is removed and the segment compressed again (a plain file that cannot be read is
//!   left, with its `.gz`, to the first maintenance pass);
//! - an active file that is also a segment's name, or a pending name that is also its final
//!   name (the link-then-unlink rename of the BSDs, or of file systems without
//!   `RENAME_NOREPLACE`, cut short), is released from the earlier name;
//! - a sealed segment whose finishing was cut short (`.log.pending`) is fsynced and renamed to
//!   its final name as it is (a torn tail there is possible only after a power loss);
//! - an active file whose last line a crash tore is sealed as it is: fsynced and renamed to
//!   the next segment name, and a fresh active file started.
//!
//! No byte a reader may already have read is removed or rewritten: a shipper that read the
//! torn fragment sees the file renamed, as at any rotation, never shrunk. Each file sealed
//! with a torn last line is reported by a record naming it ([`segment::SEALED_TORN_NOTE`],
//! fields `segment` and `torn_bytes`), the first record of the new active file; a start
//! killed before it wrote that record has its successor write it (the newest segment torn,
//! the active file empty). The rest is counted in stats and reported by one record.

use std::io;
use std::sync::atomic::AtomicBool;

use crate::config::Config;
use crate::error::Error;
use crate::segment::{self, name};

pub(crate) struct Recovered {
    pub(crate) next_seq: u64,
    pub(crate) actions: u64,
    pub(crate) notes: Vec<(String, Vec<(&'static str, u64)>)>,
}

pub(crate) fn recover(cfg: &Config) -> Result<Recovered, Error> {
    let scan = segment::scan(cfg)?;
    let fs = &cfg.fs;
    let never = AtomicBool::new(false);
    let mut temps_removed = 0u64;
    let mut gz_kept = 0u64;
    let mut gz_removed = 0u64;
    let mut links_released = 0u64;
    for t in &scan.temps {
        let p = cfg.path(t);
        crate::fs::remove_if_present(&**fs, &p)
            .map_err(|e| Error::io("remove orphan temp file", &p, e))?;
        temps_removed += 1;
    }
    for (seq, seg) in &scan.segments {
        if let (Some(_), Some(_)) = (&seg.plain, &seg.gz) {
            let plain = cfg.path(&name::segment(&cfg.stem, *seq, &seg.label));
            let gz = cfg.path(&name::compressed(&cfg.stem, *seq, &seg.label));
            match crate::compress::settle(cfg, &plain, &gz, &never) {
                Ok(true) => gz_kept += 1,
                Ok(false) => gz_removed += 1,
                // The plain file cannot be read now: both stay, and the first maintenance
                // pass settles the segment (or reports why it cannot).
                Err(_) => {}
            }
        }
    }
    if scan.active.is_some() {
        if let Ok(active_id) = fs.identity(&cfg.active_path) {
            for (seq, seg) in &scan.segments {
                let names = [
                    (
                        seg.plain.is_some(),
                        name::segment(&cfg.stem, *seq, &seg.label),
                    ),
                    (
                        seg.pending.is_some(),
                        name::pending(&cfg.stem, *seq, &seg.label),
                    ),
                ];
                for (_, n) in names.iter().filter(|(present, _)| *present) {
                    let plain = cfg.path(n);
                    if fs.identity(&plain).ok() == Some(active_id) {
                        fs.remove(&cfg.active_path)
                            .map_err(|e| Error::io("release active name", &cfg.active_path, e))?;
                        links_released += 1;
                    }
                }
            }
        }
    }
    for (seq, seg) in &scan.segments {
        if seg.pending.is_none() || seg.plain.is_none() {
            continue;
        }
        // The link-then-unlink rename cut short: the final name is in place, the pending name
        // still points at the same file.
        let pending = cfg.path(&name::pending(&cfg.stem, *seq, &seg.label));
        let fin = cfg.path(&name::segment(&cfg.stem, *seq, &seg.label));
        if fs
            .identity(&pending)
            .is_ok_and(|id| fs.identity(&fin).ok() == Some(id))
        {
            fs.remove(&pending)
                .map_err(|e| Error::io("release pending name", &pending, e))?;
            links_released += 1;
        }
    }
    let mut pending_finished = 0u64;
    let mut notes = Vec::new();
    let torn_note = |seq: u64, bytes: u64| {
        (
            segment::SEALED_TORN_NOTE.to_string(),
            vec![("segment", seq), ("torn_bytes", bytes)],
        )
    };
    for (seq, seg) in &scan.segments {
        if seg.pending.is_none() || seg.is_finished() {
            continue;
        }
        let pending = cfg.path(&name::pending(&cfg.stem, *seq, &seg.label));
        let fin = cfg.path(&name::segment(&cfg.stem, *seq, &seg.label));
        let mut file = fs
            .open_append(&pending, cfg.file_mode)
            .map_err(|e| Error::io("open sealed segment", &pending, e))?;
        let torn = torn_bytes(&*file).map_err(|e| Error::io("read", &pending, e))?;
        file.sync().map_err(|e| Error::io("fsync", &pending, e))?;
        drop(file);
        fs.rename_noreplace(&pending, &fin)
            .map_err(|e| Error::io("rename sealed segment", &fin, e))?;
        pending_finished += 1;
        if torn > 0 {
            notes.push(torn_note(*seq, torn));
        }
    }
    let mut next_seq = scan.next_seq();
    let mut sealed = 0u64;
    // The newest segment found: if a crash tore its last line, the record saying so is owed
    // unless the active file (the file after it) begins with it. A start killed between
    // sealing a torn active file and writing that record leaves exactly this.
    let newest = scan.segments.iter().next_back().and_then(|(&seq, seg)| {
        let path = cfg.path(&name::segment(&cfg.stem, seq, &seg.label));
        let file = fs.open_read(&path).ok()?;
        let torn = torn_bytes(&*file).ok()?;
        (torn > 0).then_some((seq, torn))
    });
    let mut head = Vec::new();
    if scan.active.is_some() {
        let mut file = fs
            .open_append(&cfg.active_path, cfg.file_mode)
            .map_err(|e| Error::creating("open active file", &cfg.active_path, &cfg.dir, e))?;
        head = read_head(&*file);
        let torn = torn_bytes(&*file).map_err(|e| Error::io("read", &cfg.active_path, e))?;
        if torn > 0 {
            let seq = seal_torn(cfg, &mut *file, &mut next_seq)?;
            notes.push(torn_note(seq, torn));
            sealed += 1;
        }
    }
    if let Some((seq, torn)) = newest {
        let noted = notes
            .iter()
            .any(|(_, f)| f.first() == Some(&("segment", seq)));
        if !noted && !names_sealed_torn(&head, seq) {
            notes.insert(0, torn_note(seq, torn));
        }
    }
    let repairs = temps_removed + gz_kept + gz_removed + links_released + pending_finished;
    let actions = repairs + sealed;
    if actions > 0 {
        fs.sync_dir(&cfg.dir)
            .map_err(|e| Error::io("fsync directory", &cfg.dir, e))?;
    }
    // A seal has its own record.
    if repairs > 0 {
        notes.push((
            "recovery: repaired files left by an earlier run".to_string(),
            vec![
                ("temp_files_removed", temps_removed),
                ("compressed_kept", gz_kept),
                ("compressed_redone", gz_removed),
                ("rotations_completed", links_released + pending_finished),
            ],
        ));
    }
    Ok(Recovered {
        next_seq,
        actions,
        notes,
    })
}

/// The first 4 KiB of a file, up to its last complete line: where the records of a start
/// are.
fn read_head(file: &dyn crate::fs::FileHandle) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    buf.truncate(n);
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(end);
    buf
}

/// Whether `head` holds a complete record saying segment `seq` was sealed torn (JSON
/// `"segment":N` or text `segment=N`).
fn names_sealed_torn(head: &[u8], seq: u64) -> bool {
    let text = String::from_utf8_lossy(head);
    text.lines()
        .filter(|l| l.contains(segment::SEALED_TORN_NOTE))
        .any(|l| {
            [format!("\"segment\":{seq}"), format!("segment={seq}")]
                .iter()
                .any(|pat| {
                    l.match_indices(pat.as_str())
                        .any(|(i, _)| !l[i + pat.len()..].starts_with(|c: char| c.is_ascii_digit()))
                })
        })
}

/// Bytes of a last line without its newline (0 if the file ends with one, or is empty).
fn torn_bytes(file: &dyn crate::fs::FileHandle) -> io::Result<u64> {
    let size = file.len()?;
    Ok(size - segment::torn_tail_start(file, size)?)
}

/// Seals the active file as it is: fsync, then a rename (never replacing anything) to the next
/// free segment name, named after its first record. Returns the number it got.
fn seal_torn(
    cfg: &Config,
    file: &mut dyn crate::fs::FileHandle,
    next_seq: &mut u64,
) -> Result<u64, Error> {
    let path = &cfg.active_path;
    file.sync().map_err(|e| Error::io("fsync", path, e))?;
    let now = cfg.formatter.now();
    let opened = segment::first_timestamp(file).unwrap_or(now).min(now);
    segment::rename_active(cfg, opened, next_seq, false, "seal torn active file")
        .map(|(seq, _, _)| seq)
}
