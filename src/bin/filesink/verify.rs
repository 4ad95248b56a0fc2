//! `filesink verify`: every finished segment complete and readable, every line valid JSON or
//! logfmt when the stem writes one of those (text layouts have no syntax to check), no hole
//! in the numbers other than at the oldest end (retention), no segment present twice.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use tracing_filesink::read::{LogDir, SegmentFile, SegmentKind};

use crate::scan::scan;

/// Invalid lines reported one by one per file; past this, one line says how many more.
const MAX_LINE_REPORTS: usize = 10;

/// Prints one line per problem; returns how many.
pub(crate) fn run(logs: &LogDir, out: &mut impl Write) -> io::Result<u64> {
    let segs = logs.segments()?;
    let layout = layout(&segs);
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
            if !complete {
                return;
            }
            match layout {
                Layout::Json => {
                    if let Err(e) = serde_json::from_slice::<serde_json::Value>(line) {
                        bad_lines.push((offset, format!("invalid JSON: {e}")));
                    }
                }
                Layout::Logfmt => {
                    if let Err(e) = logfmt_check(line) {
                        bad_lines.push((offset, format!("invalid logfmt: {e}")));
                    }
                }
                Layout::Text => {}
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
            report(out, format!("{path}: offset {offset}: {e}"))?;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Json,
    Logfmt,
    Text,
}

/// From the newest file's first bytes (the sink writes one format per stem): JSON starts with
/// `{`, logfmt with `key=`, the text layouts with a timestamp.
fn layout(segs: &[SegmentFile]) -> Layout {
    let head = segs
        .iter()
        .rev()
        .find_map(|s| first_bytes(s).ok().filter(|b| !b.is_empty()));
    match head {
        Some(b) if b[0] == b'{' => Layout::Json,
        Some(b) => {
            let word = b.split(|&c| c == b' ' || c == b'\n').next().unwrap_or(&[]);
            if word.iter().skip(1).any(|&c| c == b'=') {
                Layout::Logfmt
            } else {
                Layout::Text
            }
        }
        None => Layout::Text,
    }
}

fn first_bytes(s: &SegmentFile) -> io::Result<Vec<u8>> {
    let mut b = [0u8; 256];
    let n = s.open()?.read(&mut b)?;
    Ok(b[..n].to_vec())
}

/// A logfmt line as the sink writes it: `key=value` pairs separated by one space, a value
/// bare or a quoted string with JSON's escapes.
fn logfmt_check(line: &[u8]) -> Result<(), String> {
    let mut i = 0;
    while i < line.len() {
        let k0 = i;
        while i < line.len() && line[i] != b'=' {
            if line[i] <= b' ' || line[i] == b'"' {
                return Err(format!("byte {i}: {:?} in a key", line[i] as char));
            }
            i += 1;
        }
        if i == k0 || i == line.len() {
            return Err(format!("byte {k0}: a key without `=value`"));
        }
        i += 1;
        if line.get(i) == Some(&b'"') {
            let v0 = i;
            i += 1;
            while i < line.len() && line[i] != b'"' {
                i += if line[i] == b'\\' { 2 } else { 1 };
            }
            if i >= line.len() {
                return Err(format!("byte {v0}: an unterminated quoted value"));
            }
            serde_json::from_slice::<String>(&line[v0..=i])
                .map_err(|e| format!("byte {v0}: a quoted value: {e}"))?;
            i += 1;
        } else {
            while i < line.len() && line[i] != b' ' {
                if line[i] < b' ' || line[i] == b'"' || line[i] == b'=' {
                    return Err(format!("byte {i}: {:?} in a bare value", line[i] as char));
                }
                i += 1;
            }
        }
        if i < line.len() {
            i += 1; // the space
            if i == line.len() || line[i] == b' ' {
                return Err(format!("byte {i}: an empty pair"));
            }
        }
    }
    Ok(())
}
