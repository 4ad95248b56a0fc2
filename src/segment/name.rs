//! The one place where on-disk names are encoded and parsed.
//!
//! For the stem `app`:
//!
//! | file | name |
//! |---|---|
//! | active file | `app.log` |
//! | finished segment | `app.0000000042.20261126T031448Z.log` |
//! | compressed segment | `app.0000000042.20261126T031448Z.log.gz` |
//! | sealed segment, not yet durable | `app.0000000042.20261126T031448Z.log.pending` |
//! | segment whose fsync failed: never known durable | `app.0000000042.20261126T031448Z.log.unsynced` |
//! | lock file | `app.log.lock` |
//! | temp file (compression in progress) | `.app.<random>.tmp` |
//!
//! The ten-digit sequence number comes first so that names sort in write order as plain
//! strings even when the clock jumps backwards; the start time follows for people, in the
//! configured time zone (`Z` or `+0530`). Names are parsed back from the name alone, never
//! from file-system timestamps, and a name is never reused.

use std::time::SystemTime;

use crate::format::timestamp::{civil, split, TimeZone};

/// Digits of the sequence number.
const SEQ_WIDTH: usize = 10;

/// The file extension unless the builder's `file_extension` says otherwise.
pub(crate) const DEFAULT_EXT: &str = "log";

/// What names are made from: a stem and an extension. A bare `str` or `String` is a stem with
/// the default extension `log`, so most callers pass `&cfg.stem` whatever its type.
pub(crate) trait Naming {
    fn stem(&self) -> &str;
    fn ext(&self) -> &str {
        DEFAULT_EXT
    }
}

impl Naming for str {
    fn stem(&self) -> &str {
        self
    }
}

impl Naming for String {
    fn stem(&self) -> &str {
        self
    }
}

/// A stem with its extension (`app` + `jsonl`: `app.jsonl`, `app.0000000001.<start>.jsonl`).
/// Reads as the stem (`Deref<Target = str>`, `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stem {
    stem: String,
    ext: String,
}

impl Stem {
    pub(crate) fn new(stem: impl Into<String>, ext: impl Into<String>) -> Stem {
        Stem {
            stem: stem.into(),
            ext: ext.into(),
        }
    }
}

impl Naming for Stem {
    fn stem(&self) -> &str {
        &self.stem
    }
    fn ext(&self) -> &str {
        &self.ext
    }
}

impl std::ops::Deref for Stem {
    type Target = str;
    fn deref(&self) -> &str {
        &self.stem
    }
}

impl std::fmt::Display for Stem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.stem)
    }
}

/// A parsed finished-segment name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SegmentName {
    pub(crate) seq: u64,
    /// The start-time label as it appears in the name (`20261126T031448Z`).
    pub(crate) label: String,
    pub(crate) compressed: bool,
    /// Sealed by rotation, waiting for the finisher (fsync, rename to the final name).
    pub(crate) pending: bool,
}

pub(crate) fn active(s: &(impl Naming + ?Sized)) -> String {
    format!("{}.{}", s.stem(), s.ext())
}

pub(crate) fn lock(s: &(impl Naming + ?Sized)) -> String {
    format!("{}.{}.lock", s.stem(), s.ext())
}

/// Prefix and suffix of temp files, as handed to `tempfile::Builder`.
pub(crate) fn temp_affixes(stem: &str) -> (String, &'static str) {
    (format!(".{stem}."), ".tmp")
}

pub(crate) fn is_temp(stem: &str, file_name: &str) -> bool {
    let (prefix, suffix) = temp_affixes(stem);
    file_name.len() > prefix.len() + suffix.len()
        && file_name.starts_with(&prefix)
        && file_name.ends_with(suffix)
        && !file_name[prefix.len()..file_name.len() - suffix.len()].contains('.')
}

/// The start-time label for a segment that started at `t`.
pub(crate) fn label(t: SystemTime, tz: TimeZone) -> String {
    let (secs, _) = split(t);
    let offset = tz.offset_at(secs);
    let (y, mo, d, h, mi, s) = civil(secs + offset as i64);
    let zone = if tz.is_utc() {
        "Z".to_string()
    } else {
        let a = offset.unsigned_abs();
        format!(
            "{}{:02}{:02}",
            if offset < 0 { '-' } else { '+' },
            a / 3600,
            (a % 3600) / 60
        )
    };
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}{zone}")
}

pub(crate) fn segment(s: &(impl Naming + ?Sized), seq: u64, label: &str) -> String {
    format!("{}.{seq:0SEQ_WIDTH$}.{label}.{}", s.stem(), s.ext())
}

pub(crate) fn compressed(s: &(impl Naming + ?Sized), seq: u64, label: &str) -> String {
    format!("{}.gz", segment(s, seq, label))
}

pub(crate) fn pending(s: &(impl Naming + ?Sized), seq: u64, label: &str) -> String {
    format!("{}.pending", segment(s, seq, label))
}

/// A segment whose fsync failed: its data was handed to the kernel, but whether it reached
/// the disk is unknown ("fsyncgate"), so it never gets a final name. Kept as it is, outside
/// compression and retention, for the operator to inspect.
pub(crate) fn unsynced(final_path: &std::path::Path) -> std::path::PathBuf {
    let mut name = final_path.as_os_str().to_owned();
    name.push(UNSYNCED_SUFFIX);
    name.into()
}

const UNSYNCED_SUFFIX: &str = ".unsynced";

/// The sequence number of an unsynced segment's name for `stem`.
pub(crate) fn parse_unsynced(s: &(impl Naming + ?Sized), file_name: &str) -> Option<u64> {
    let n = parse(s, file_name.strip_suffix(UNSYNCED_SUFFIX)?)?;
    (!n.compressed && !n.pending).then_some(n.seq)
}

#[cfg(test)]
impl SegmentName {
    pub(crate) fn file_name(&self, stem: &(impl Naming + ?Sized)) -> String {
        if self.compressed {
            compressed(stem, self.seq, &self.label)
        } else if self.pending {
            pending(stem, self.seq, &self.label)
        } else {
            segment(stem, self.seq, &self.label)
        }
    }
}

/// Parses a finished segment's file name for `stem`; `None` for anything else (the active
/// file, temp files, other stems, foreign files).
pub(crate) fn parse(s: &(impl Naming + ?Sized), file_name: &str) -> Option<SegmentName> {
    let rest = file_name.strip_prefix(s.stem())?.strip_prefix('.')?;
    let e = s.ext();
    let (rest, compressed, pending) =
        if let Some(r) = rest.strip_suffix(".gz").and_then(|r| strip_ext(r, e)) {
            (r, true, false)
        } else if let Some(r) = rest.strip_suffix(".pending").and_then(|r| strip_ext(r, e)) {
            (r, false, true)
        } else {
            (strip_ext(rest, e)?, false, false)
        };
    let (seq, label) = rest.split_once('.')?;
    if seq.len() < SEQ_WIDTH || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !valid_label(label) {
        return None;
    }
    Some(SegmentName {
        seq: seq.parse().ok()?,
        label: label.to_string(),
        compressed,
        pending,
    })
}

/// `name` without `.ext` at its end.
fn strip_ext<'a>(name: &'a str, ext: &str) -> Option<&'a str> {
    name.strip_suffix(ext)?.strip_suffix('.')
}

/// The stem a file of some sink with the default extension belongs to: the active file (`<stem>.log`), its lock
/// (`<stem>.log.lock`) or a segment (`<stem>.<seq>.<start>.log[.gz|.pending]`). A name that is
/// a segment of one stem and could be the active file of a longer one (`app.0000000001.
/// 20261126T031448Z.log`) is taken as the segment. `None` for anything else.
pub(crate) fn stem_of(file_name: &str) -> Option<&str> {
    stem_of_ext(file_name, DEFAULT_EXT)
}

/// [`stem_of`] for the files of sinks whose extension is `ext`.
pub(crate) fn stem_of_ext<'a>(file_name: &'a str, ext: &str) -> Option<&'a str> {
    if let Some(stem) = segment_stem(file_name, ext) {
        return Some(stem);
    }
    let stem = file_name
        .strip_suffix(".lock")
        .and_then(|n| strip_ext(n, ext))
        .or_else(|| strip_ext(file_name, ext))?;
    (!stem.is_empty() && !stem.starts_with('.')).then_some(stem)
}

/// The stem of a segment name, whatever the stem.
fn segment_stem<'a>(file_name: &'a str, ext: &str) -> Option<&'a str> {
    let rest = file_name
        .strip_suffix(".gz")
        .or_else(|| file_name.strip_suffix(".pending"))
        .unwrap_or(file_name);
    let rest = strip_ext(rest, ext)?;
    let (rest, _label) = rest.rsplit_once('.')?;
    let (stem, _seq) = rest.rsplit_once('.')?;
    (!stem.is_empty() && parse(&Stem::new(stem, ext), file_name).is_some()).then_some(stem)
}

/// The start time a segment's label names (`20261126T031448Z`, `20261126T084448+0530`).
pub(crate) fn label_time(label: &str) -> Option<SystemTime> {
    if !valid_label(label) {
        return None;
    }
    let zone = match &label[15..] {
        "Z" => "+0000",
        z => z,
    };
    let dt =
        chrono::DateTime::parse_from_str(&format!("{}{zone}", &label[..15]), "%Y%m%dT%H%M%S%z")
            .ok()?;
    Some(SystemTime::from(dt))
}

fn valid_label(l: &str) -> bool {
    let b = l.as_bytes();
    if b.len() < 16 || b[8] != b'T' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(|c| c.is_ascii_digit());
    if !digits(0..8) || !digits(9..15) {
        return false;
    }
    match &b[15..] {
        b"Z" => true,
        [sign, rest @ ..] if (*sign == b'+' || *sign == b'-') && rest.len() == 4 => {
            rest.iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_662_888);
        for tz in [
            TimeZone::Utc,
            TimeZone::fixed(19_800),
            TimeZone::fixed(-3600),
        ] {
            let l = label(t, tz);
            for seq in [0, 1, 42, 9_999_999_999, 12_345_678_901] {
                for (gz, pend) in [(false, false), (true, false), (false, true)] {
                    let name = if gz {
                        compressed("app", seq, &l)
                    } else if pend {
                        pending("app", seq, &l)
                    } else {
                        segment("app", seq, &l)
                    };
                    let p = parse("app", &name).unwrap_or_else(|| panic!("{name}"));
                    assert_eq!(
                        (p.seq, p.label.as_str(), p.compressed, p.pending),
                        (seq, l.as_str(), gz, pend)
                    );
                    assert_eq!(p.file_name("app"), name);
                }
            }
        }
        assert_eq!(label(t, TimeZone::Utc), "20261126T031448Z");
        assert_eq!(label(t, TimeZone::fixed(19_800)), "20261126T084448+0530");
        assert_eq!(label(t, TimeZone::fixed(-3600)), "20261126T021448-0100");
    }

    #[test]
    fn other_extensions() {
        let l = "20261126T031448Z";
        let jsonl = Stem::new("app", "jsonl");
        assert_eq!(active(&jsonl), "app.jsonl");
        assert_eq!(lock(&jsonl), "app.jsonl.lock");
        assert_eq!(segment(&jsonl, 7, l), format!("app.0000000007.{l}.jsonl"));
        for name in [
            segment(&jsonl, 7, l),
            compressed(&jsonl, 7, l),
            pending(&jsonl, 7, l),
        ] {
            let p = parse(&jsonl, &name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!((p.seq, p.file_name(&jsonl)), (7, name.clone()));
            // Each extension sees only its own files.
            assert_eq!(parse("app", &name), None, "{name}");
        }
        assert_eq!(parse(&jsonl, &segment("app", 7, l)), None);
        assert_eq!(parse(&jsonl, &format!("app.0000000007.{l}xjsonl")), None);
        assert_eq!(parse(&jsonl, &format!("app.0000000007.{l}.xjsonl")), None);
        assert_eq!(
            parse_unsynced(&jsonl, &format!("{}.unsynced", segment(&jsonl, 3, l))),
            Some(3)
        );
        assert_eq!(active("app"), "app.log");
    }

    #[test]
    fn foreign_names_are_not_segments() {
        let l = "20261126T031448Z";
        for n in [
            "app.log".to_string(),
            "app.log.lock".to_string(),
            "app-worker.log".to_string(),
            segment("app-worker", 1, l),
            segment("ap", 1, l),
            format!("app.12.{l}.log"),
            format!("app.000000000x.{l}.log"),
            "app.0000000001.20261126T031448.log".into(),
            "app.0000000001.20261126T031448Q.log".into(),
            format!("app.0000000001.{l}.log.tmp"),
            format!("app.0000000001.{l}.txt"),
            ".app.abc123.tmp".into(),
        ] {
            assert_eq!(parse("app", &n), None, "{n}");
        }
        assert!(parse("app-worker", &segment("app-worker", 1, l)).is_some());
        assert!(parse("app", &segment("app-worker", 1, l)).is_none());
    }

    #[test]
    fn names_sort_by_sequence_whatever_the_clock() {
        let early = label(
            UNIX_EPOCH + Duration::from_secs(1_000_000_000),
            TimeZone::Utc,
        );
        let late = label(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            TimeZone::Utc,
        );
        let a = segment("app", 9, &late);
        let b = segment("app", 10, &early);
        let c = compressed("app", 11, &early);
        assert!(a < b && b < c);
        assert_ne!(segment("app", 0, &early), active("app"));
    }

    #[test]
    fn stems_from_names() {
        let l = "20261126T031448Z";
        for (name, stem) in [
            ("app.log", Some("app")),
            ("app.log.lock", Some("app")),
            ("app-worker.log", Some("app-worker")),
            ("my.app.log", Some("my.app")),
            (&segment("app", 7, l), Some("app")),
            (&compressed("my.app", 7, l), Some("my.app")),
            (&pending("app", 12_345_678_901, l), Some("app")),
            (".app.Xy12ab.tmp", None),
            ("app.txt", None),
            (".log", None),
            ("notes", None),
        ] {
            assert_eq!(stem_of(name), stem, "{name}");
        }
    }

    #[test]
    fn stems_from_names_with_another_extension() {
        let l = "20261126T031448Z";
        let jsonl = Stem::new("my.app", "jsonl");
        for (name, stem) in [
            ("my.app.jsonl".to_string(), Some("my.app")),
            ("my.app.jsonl.lock".to_string(), Some("my.app")),
            (segment(&jsonl, 7, l), Some("my.app")),
            (compressed(&jsonl, 7, l), Some("my.app")),
            ("app.log".to_string(), None),
            (segment("app", 7, l), None),
        ] {
            assert_eq!(stem_of_ext(&name, "jsonl"), stem, "{name}");
        }
    }

    #[test]
    fn label_times() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_662_888);
        for tz in [
            TimeZone::Utc,
            TimeZone::fixed(19_800),
            TimeZone::fixed(-3600),
        ] {
            assert_eq!(label_time(&label(t, tz)), Some(t), "{tz:?}");
        }
        assert_eq!(label_time("20261126T031448"), None);
        assert_eq!(label_time("20261356T031448Z"), None);
    }

    #[test]
    fn temp_names() {
        let (p, s) = temp_affixes("app");
        assert!(is_temp("app", &format!("{p}Xy12ab{s}")));
        assert!(!is_temp("app", ".app-worker.Xy12ab.tmp"));
        assert!(!is_temp("app-worker", ".app.Xy12ab.tmp"));
        assert!(!is_temp("app", "app.log"));
    }
}
