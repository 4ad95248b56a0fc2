//! `filesink verify`: every finished segment complete and readable, no hole in the numbers
//! other than at the oldest end (retention), no segment present twice.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use tracing_filesink::read::{LogDir, SegmentFile, SegmentKind};

use crate::scan::scan;

/// Invalid lines reported one by one per file; past this, one line says how many more.
const MAX_LINE_REPORTS: usize = 10;

/// Prints one line per problem; returns how many.
pub(crate) fn run(logs: &LogDir, out: &mut impl Write) -> io::Result<u64> {
    let segs = logs.segments()?;
    let json = is_json(&segs);
    let mut problems = 0u64;
    let mut report = |out: &mut dyn Write, msg: String| -> io::Result<()> {
        problems += 1;
        writeln!(out, "{msg}")
    };
    let mut by_seq: BTreeMap<u64, Vec<&SegmentFile>> = BTreeMap::new();
    let mut checked = 0u64;
    for s in &segs {
        if let Some(seq) = s.seq() {
            by_seq.entry(seq).or_default().push(s);
        }
        // The active file is still being written and a pending segment is still being
        // finished (startup recovery finishes one left by a crash): only finished ones are
        // checked.
        if !matches!(s.kind(), SegmentKind::Plain | SegmentKind::Compressed) {
            continue;
        }
        checked += 1;
        let path = s.path().display().to_string();
        let mut bad_lines = Vec::new();
        let mut last = None;
        let error = scan(s, |offset, line, complete| {
            last = Some((offset, complete));
            if json && complete {
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(line) {
                    bad_lines.push((offset, e));
                }
            }
        })?;
        if let Some((offset, e)) = error {
            // The CRC covers the whole member: lines decoded before the error are not to be
            // trusted one by one, so the damage is one problem, located by the first bad line.
            let what = if s.kind() == SegmentKind::Compressed {
                "gzip data damaged"
            } else {
                "read error"
            };
            let first = bad_lines
                .first()
                .map(|(o, _)| format!(" (first bad line at decompressed offset {o})"))
                .unwrap_or_default();
            report(
                out,
                format!("{path}: offset {offset} (decompressed): {what}: {e}{first}"),
            )?;
            continue;
        }
        let n = bad_lines.len();
        for (offset, e) in bad_lines.into_iter().take(MAX_LINE_REPORTS) {
            report(out, format!("{path}: offset {offset}: invalid JSON: {e}"))?;
        }
        if n > MAX_LINE_REPORTS {
            report(
                out,
                format!("{path}: and {} more invalid lines", n - MAX_LINE_REPORTS),
            )?;
        }
        match last {
            None => report(out, format!("{path}: offset 0: empty finished segment"))?,
            Some((offset, false)) => report(
                out,
                format!("{path}: offset {offset}: torn last line (no newline at the end)"),
            )?,
            Some(_) => {}
        }
    }
    // Numbers are consecutive; retention removes only the oldest. A number whose segment
    // was kept as `.unsynced` (its fsync failed when it was finished) is reported as such,
    // not as missing.
    let unsynced: BTreeMap<u64, std::path::PathBuf> = logs.unsynced()?.into_iter().collect();
    for (n, path) in &unsynced {
        report(
            out,
            format!(
                "{}: offset 0: unsynced: the fsync of segment {n} failed when it was finished, \
                 so its end may never have reached the disk (the sink keeps it under this \
                 name and never renames it)",
                path.display()
            ),
        )?;
    }
    let mut prev: Option<(u64, &SegmentFile)> = None;
    for (&seq, files) in &by_seq {
        if let Some((p, pf)) = prev {
            // The numbers in between, less the unsynced ones, in runs (by the unsynced
            // numbers, never one by one: a gap can be huge).
            let mut runs = Vec::new();
            let mut start = p + 1;
            for &n in unsynced.range(p + 1..seq).map(|(n, _)| n) {
                if n > start {
                    runs.push((start, n - 1));
                }
                start = n + 1;
            }
            if seq > start {
                runs.push((start, seq - 1));
            }
            for (a, b) in runs {
                let missing = if a == b {
                    format!("segment {a} is missing")
                } else {
                    format!("segments {a}..={b} are missing")
                };
                report(
                    out,
                    format!(
                        "{}: {missing} between {} and {}",
                        logs.dir().display(),
                        pf.file_name(),
                        files[0].file_name()
                    ),
                )?;
            }
        }
        let plain = files.iter().find(|f| f.kind() == SegmentKind::Plain);
        let gz = files.iter().find(|f| f.kind() == SegmentKind::Compressed);
        if let (Some(p), Some(g)) = (plain, gz) {
            report(
                out,
                format!(
                    "{}: offset 0: duplicate: segment {seq} is also present uncompressed as {}",
                    g.path().display(),
                    p.file_name()
                ),
            )?;
        }
        prev = Some((seq, files[0]));
    }
    eprintln!(
        "filesink verify: {} segment files checked ({} stem {:?}), {problems} problem{}",
        checked,
        logs.dir().display(),
        logs.stem(),
        if problems == 1 { "" } else { "s" }
    );
    Ok(problems)
}

/// JSON when the first line found starts with `{` (the sink writes one format per stem).
fn is_json(segs: &[SegmentFile]) -> bool {
    segs.iter()
        .rev()
        .find_map(|s| first_byte(s).ok().flatten())
        .is_some_and(|b| b == b'{')
}

fn first_byte(s: &SegmentFile) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    let n = s.open()?.read(&mut b)?;
    Ok((n == 1).then_some(b[0]))
}
