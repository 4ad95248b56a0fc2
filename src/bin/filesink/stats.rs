//! `filesink stats`: per segment its number, start time, lines, bytes (plain and compressed)
//! and records per level; the active file last, then the totals.

use std::collections::BTreeMap;
use std::io::{self, Write};

use tracing::Level;
use tracing_filesink::read::{LogDir, Record, SegmentKind};

#[derive(Default, Clone)]
struct Row {
    start: String,
    files: String,
    lines: u64,
    plain: u64,
    compressed: Option<u64>,
    /// TRACE, DEBUG, INFO, WARN, ERROR, other.
    levels: [u64; 6],
}

impl Row {
    fn add(&mut self, o: &Row) {
        self.lines += o.lines;
        self.plain += o.plain;
        if let Some(c) = o.compressed {
            self.compressed = Some(self.compressed.unwrap_or(0) + c);
        }
        for (a, b) in self.levels.iter_mut().zip(o.levels) {
            *a += b;
        }
    }
}

fn level_index(l: Option<Level>) -> usize {
    match l {
        Some(Level::TRACE) => 0,
        Some(Level::DEBUG) => 1,
        Some(Level::INFO) => 2,
        Some(Level::WARN) => 3,
        Some(Level::ERROR) => 4,
        None => 5,
    }
}

/// Prints the table; returns how many files (or holes) could not be read, each named on
/// stderr (their rows count what was read).
pub(crate) fn run(logs: &LogDir, out: &mut impl Write) -> io::Result<u64> {
    let mut problems = 0u64;
    // Rows keyed by sequence number; `None` is the active file.
    let mut rows: BTreeMap<Option<u64>, Row> = BTreeMap::new();
    for s in logs.segments()? {
        let row = rows.entry(s.seq()).or_default();
        if let Some(label) = s.start_label() {
            row.start = pretty_label(label);
        }
        let kind = match s.kind() {
            SegmentKind::Pending => "pending",
            SegmentKind::Plain => "plain",
            SegmentKind::Compressed => {
                row.compressed = Some(row.compressed.unwrap_or(0) + s.len());
                "gz"
            }
            _ => "active",
        };
        if !row.files.is_empty() {
            row.files.push('+');
        }
        row.files.push_str(kind);
    }
    for line in logs.lines()? {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("filesink: {e}");
                problems += 1;
                continue;
            }
        };
        let row = rows.entry(line.seq()).or_default();
        row.lines += 1;
        row.plain += line.as_bytes().len() as u64 + u64::from(line.is_complete());
        let rec = Record::parse(line);
        row.levels[level_index(rec.level())] += 1;
    }
    // The active file sorts first as `None`: print it last.
    let active = rows.remove(&None);
    let mut total = Row::default();
    writeln!(
        out,
        "{:>10}  {:<20} {:<8} {:>10} {:>12} {:>12} {:>8} {:>8} {:>10} {:>8} {:>8}",
        "segment",
        "start",
        "file",
        "lines",
        "bytes",
        "compressed",
        "TRACE",
        "DEBUG",
        "INFO",
        "WARN",
        "ERROR"
    )?;
    let print = |out: &mut dyn Write, name: String, r: &Row| {
        writeln!(
            out,
            "{:>10}  {:<20} {:<8} {:>10} {:>12} {:>12} {:>8} {:>8} {:>10} {:>8} {:>8}",
            name,
            r.start,
            r.files,
            r.lines,
            r.plain,
            r.compressed.map_or("-".to_string(), |c| c.to_string()),
            r.levels[0],
            r.levels[1],
            r.levels[2],
            r.levels[3],
            r.levels[4],
        )
    };
    for (seq, r) in &rows {
        total.add(r);
        print(out, seq.map_or_else(String::new, |s| s.to_string()), r)?;
    }
    if let Some(r) = active {
        total.add(&r);
        print(out, "active".into(), &r)?;
    }
    total.files = format!("{} files", rows.len() + 1);
    print(out, "total".into(), &total)?;
    if total.levels[5] > 0 {
        writeln!(
            out,
            "({} lines without a recognizable level)",
            total.levels[5]
        )?;
    }
    Ok(problems)
}

/// `20261126T031448Z` → `2026-11-26T03:14:48Z`.
fn pretty_label(l: &str) -> String {
    if l.len() < 16 {
        return l.to_string();
    }
    format!(
        "{}-{}-{}T{}:{}:{}{}",
        &l[0..4],
        &l[4..6],
        &l[6..8],
        &l[9..11],
        &l[11..13],
        &l[13..15],
        &l[15..]
    )
}
