//! `filesink verify`: every finished segment complete and readable, every line (and every
//! complete line of the active file) valid JSON or logfmt when the stem writes one of those
//! (text layouts have no syntax to check), no hole in the numbers other than at the oldest end
//! (retention), no segment present twice.
//!
//! Safe on the directory of a running sink: a segment compressed between the listing and
//! its check is checked as its `.gz`, one removed by retention meanwhile is passed over (with
//! every older one), and a hole or a duplicate is confirmed by looking again before it is
//! reported.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::Path;

use tracing_filesink::read::{LogDir, SegmentFile, SegmentKind};

use crate::scan::scan;

/// Invalid lines reported one by one per file; past this, one line says how many more.
const MAX_LINE_REPORTS: usize = 10;

/// The message of the record startup recovery writes when it seals an active file that ends
/// with a torn line; its `segment` field names the segment.
pub(crate) const SEALED_TORN: &str = "recovery: sealed a file as it was, with a torn last line";

/// What checking one file found.
enum Checked {
    /// Read to its end.
    Read,
    /// Its name was gone when it was opened.
    Gone,
}

struct Verify {
    layout: Layout,
    problems: u64,
    checked: u64,
    /// Segments whose last line is torn: (segment, path, offset).
    torn: Vec<(u64, String, u64)>,
    /// Segments that recovery recorded as sealed with a torn last line.
    sealed_torn: BTreeSet<u64>,
}

impl Verify {
    fn report(&mut self, out: &mut dyn Write, msg: String) -> io::Result<()> {
        self.problems += 1;
        writeln!(out, "{msg}")
    }

    fn check(&mut self, s: &SegmentFile, out: &mut dyn Write) -> io::Result<Checked> {
        let path = s.path().display().to_string();
        let active = s.kind() == SegmentKind::Active;
        let mut bad_lines = Vec::new();
        let mut last = None;
        let layout = self.layout;
        let mut notes = Vec::new();
        let scanned = scan(s, |offset, line, complete| {
            last = Some((offset, complete));
            if complete {
                if let Some(seq) = sealed_torn_segment(line) {
                    notes.push(seq);
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
            }
        });
        self.sealed_torn.extend(notes);
        let error = match scanned {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Checked::Gone),
            Err(e) => {
                self.checked += 1;
                // The error names the path again: only its cause is added.
                let cause = e
                    .get_ref()
                    .and_then(|r| r.downcast_ref::<tracing_filesink::Error>())
                    .and_then(|x| x.io_error())
                    .map_or_else(|| e.to_string(), ToString::to_string);
                self.report(out, format!("{path}: offset 0: cannot read: {cause}"))?;
                return Ok(Checked::Read);
            }
        };
        self.checked += 1;
        if let Some((offset, e)) = error {
            let what = if s.kind() == SegmentKind::Compressed {
                "gzip data damaged"
            } else {
                "read error"
            };
            self.report(
                out,
                format!("{path}: offset {offset} (decompressed): {what}: {e}"),
            )?;
            return Ok(Checked::Read);
        }
        let n = bad_lines.len();
        for (offset, e) in bad_lines.into_iter().take(MAX_LINE_REPORTS) {
            self.report(out, format!("{path}: offset {offset}: {e}"))?;
        }
        if n > MAX_LINE_REPORTS {
            self.report(
                out,
                format!("{path}: and {} more invalid lines", n - MAX_LINE_REPORTS),
            )?;
        }
        // The active file is being written: it may be empty, and its last line may be on its
        // way.
        if !active {
            match last {
                None => self.report(out, format!("{path}: offset 0: empty finished segment"))?,
                Some((offset, false)) => {
                    self.torn
                        .push((s.seq().unwrap_or_default(), path.clone(), offset))
                }
                Some(_) => {}
            }
        }
        Ok(Checked::Read)
    }
}

/// The segment named by a recovery record saying it sealed a file with a torn last line.
fn sealed_torn_segment(line: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(line).ok()?;
    if !s.contains(SEALED_TORN) {
        return None;
    }
    let at = s
        .find("\"segment\":")
        .map(|i| i + "\"segment\":".len())
        .or_else(|| s.find(" segment=").map(|i| i + " segment=".len()))?;
    let digits: String = s[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The finished segments of `seq` listed now.
fn relist(logs: &LogDir, seq: u64) -> io::Result<Vec<SegmentFile>> {
    Ok(logs
        .segments()?
        .into_iter()
        .filter(|s| {
            s.seq() == Some(seq) && matches!(s.kind(), SegmentKind::Plain | SegmentKind::Compressed)
        })
        .collect())
}

/// Prints one line per problem; returns how many.
pub(crate) fn run(logs: &LogDir, out: &mut impl Write) -> io::Result<u64> {
    let active_at_start = active_state(logs);
    let segs = logs.segments()?;
    let mut v = Verify {
        layout: layout(&segs),
        problems: 0,
        checked: 0,
        torn: Vec::new(),
        sealed_torn: BTreeSet::new(),
    };
    let mut by_seq: BTreeMap<u64, Vec<SegmentFile>> = BTreeMap::new();
    for s in &segs {
        if let Some(seq) = s.seq() {
            by_seq.entry(seq).or_default().push(s.clone());
        }
    }
    // Removed by retention while this ran: this one and every older one are passed over.
    let mut pruned: Option<u64> = None;
    let mut gz_checked = BTreeSet::new();
    for s in &segs {
        match s.kind() {
            SegmentKind::Plain | SegmentKind::Compressed => {}
            // Being written; checked last, so its complete lines are the newest read.
            SegmentKind::Active => continue,
            // Being finished (startup recovery finishes one left by a crash).
            _ => continue,
        }
        let seq = s.seq().unwrap_or_default();
        if s.kind() == SegmentKind::Compressed && !gz_checked.insert(seq) {
            continue;
        }
        if let Checked::Gone = v.check(s, out)? {
            // Compressed meanwhile: its `.gz` is checked instead; if it has no name at all,
            // retention removed it.
            let now = relist(logs, seq)?;
            match now.iter().find(|f| f.kind() == SegmentKind::Compressed) {
                Some(gz) if !gz_checked.contains(&seq) => {
                    gz_checked.insert(seq);
                    if let Checked::Gone = v.check(gz, out)? {
                        pruned = pruned.max(Some(seq));
                    }
                }
                Some(_) => {}
                None => pruned = pruned.max(Some(seq)),
            }
        }
    }
    if let Some(active) = segs.iter().find(|s| s.kind() == SegmentKind::Active) {
        // Gone: between a rotation's rename and the creation of the next one.
        v.check(active, out)?;
    }
    if let Some(p) = pruned {
        by_seq = by_seq.split_off(&(p + 1));
    }

    // Torn last lines: one that startup recovery sealed and recorded (a crash cut the
    // record) is noted, not a problem; any other is.
    for (seq, path, offset) in std::mem::take(&mut v.torn) {
        if v.sealed_torn.contains(&seq) {
            eprintln!(
                "filesink verify: {path}: offset {offset}: torn last line left by a crash, \
                 sealed and recorded by the sink's startup recovery (not a problem)"
            );
        } else {
            v.report(
                out,
                format!("{path}: offset {offset}: torn last line (no newline at the end)"),
            )?;
        }
    }

    // Numbers are consecutive; retention removes only the oldest. A number whose segment
    // was kept as `.unsynced` (its fsync failed when it was finished) is reported as such,
    // not as missing.
    let unsynced: BTreeMap<u64, std::path::PathBuf> = logs.unsynced()?.into_iter().collect();
    for (n, path) in &unsynced {
        v.report(
            out,
            format!(
                "{}: offset 0: unsynced: the fsync of segment {n} failed when it was finished, \
                 so its end may never have reached the disk (the sink keeps it under this \
                 name and never renames it)",
                path.display()
            ),
        )?;
    }
    let mut prev: Option<(u64, String)> = None;
    for (&seq, files) in &by_seq {
        if let Some((p, pname)) = &prev {
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
                // A listing taken while a segment was being renamed (plain → gz) can miss
                // both names: a short hole is looked for again.
                if b - a < 4 && (a..=b).all(|n| relist(logs, n).is_ok_and(|l| !l.is_empty())) {
                    continue;
                }
                let missing = if a == b {
                    format!("segment {a} is missing")
                } else {
                    format!("segments {a}..={b} are missing")
                };
                v.report(
                    out,
                    format!(
                        "{}: {missing} between {} and {}",
                        logs.dir().display(),
                        pname,
                        files[0].file_name()
                    ),
                )?;
            }
        }
        let plain = files.iter().find(|f| f.kind() == SegmentKind::Plain);
        let gz = files.iter().find(|f| f.kind() == SegmentKind::Compressed);
        if let (Some(p), Some(g)) = (plain, gz) {
            // A compression finishing renames the `.gz` into place, fsyncs the directory,
            // then removes the plain file: both names are there for a moment, longer on a
            // loaded machine (the compressor runs at nice 19). Given a second to end; if the
            // sink is writing meanwhile (the active file changed since verify began), a pair
            // still there is its compression at work, said on stderr; otherwise a duplicate.
            let both = || exists(p.path()) && exists(g.path());
            let mut waited = 0;
            while both() && waited < 20 {
                std::thread::sleep(std::time::Duration::from_millis(50));
                waited += 1;
            }
            if both() && active_state(logs) != active_at_start {
                eprintln!(
                    "filesink verify: segment {seq} is present both as {} and {}: the running \
                     sink is compressing it (not a problem)",
                    p.file_name(),
                    g.file_name()
                );
            } else if both() {
                v.report(
                    out,
                    format!(
                        "{}: offset 0: duplicate: segment {seq} is also present uncompressed as {}",
                        g.path().display(),
                        p.file_name()
                    ),
                )?;
            }
        }
        prev = Some((seq, files[0].file_name().to_string()));
    }
    eprintln!(
        "filesink verify: {} files checked ({} stem {:?}), {} problem{}",
        v.checked,
        logs.dir().display(),
        logs.stem(),
        v.problems,
        if v.problems == 1 { "" } else { "s" }
    );
    Ok(v.problems)
}

/// The active file's length and modification time (`None` when there is none): a change
/// means a sink is writing.
fn active_state(logs: &LogDir) -> Option<(u64, Option<std::time::SystemTime>)> {
    let m = std::fs::metadata(logs.active_path()).ok()?;
    Some((m.len(), m.modified().ok()))
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
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
