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
//! - a sealed segment whose finishing was cut short (`.log.pending`) gets its torn tail
//!   trimmed (possible only after a power loss), is fsynced and renamed to its final name;
//! - a partial last line of the active file is trimmed (in `segment::open_active`).
//!
//! What was done is counted in stats and reported by one record in the log.

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
    for (seq, seg) in &scan.segments {
        if seg.pending.is_none() || seg.is_finished() {
            continue;
        }
        let pending = cfg.path(&name::pending(&cfg.stem, *seq, &seg.label));
        let fin = cfg.path(&name::segment(&cfg.stem, *seq, &seg.label));
        let mut file = fs
            .open_append(&pending, cfg.file_mode)
            .map_err(|e| Error::io("open sealed segment", &pending, e))?;
        let len = file.len().map_err(|e| Error::io("stat", &pending, e))?;
        segment::trim_torn_tail(&mut *file, len)
            .map_err(|e| Error::io("trim torn tail", &pending, e))?;
        file.sync().map_err(|e| Error::io("fsync", &pending, e))?;
        drop(file);
        fs.rename_noreplace(&pending, &fin)
            .map_err(|e| Error::io("rename sealed segment", &fin, e))?;
        pending_finished += 1;
    }
    let actions = temps_removed + gz_kept + gz_removed + links_released + pending_finished;
    if actions > 0 {
        fs.sync_dir(&cfg.dir)
            .map_err(|e| Error::io("fsync directory", &cfg.dir, e))?;
    }
    let mut notes = Vec::new();
    if actions > 0 {
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
        next_seq: scan.next_seq(),
        actions,
        notes,
    })
}
