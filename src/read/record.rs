//! A line with its timestamp and level picked out, for filtering; the rest of the record is
//! left as written (parse it with any JSON library).

use std::time::SystemTime;

use tracing::Level;

use super::Line;

/// A record read back: the line as written, with its timestamp and level when the line has
/// them where the sink writes them. JSON and logfmt: the keys `timestamp`, `@timestamp`,
/// `time` or `ts` and `level`, `log.level`, `severity` or `lvl` (the defaults and the
/// renamings of the Elastic Common Schema and Google Cloud Logging recipes; a key renamed to
/// anything else is not found). Text and compact: the level is the first word that is a
/// level name, and the timestamp is everything before it, so a custom time format may
/// contain spaces. Timestamps are recognized in RFC 3339 (every [`crate::TimeFormat`]
/// except a custom one; for a custom one, [`Record::timestamp_text`] gives the text as
/// written, to parse with the same format); levels in any case, `WARNING` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    line: Line,
    timestamp: Option<SystemTime>,
    /// Where the timestamp's text is in the line.
    timestamp_at: Option<Span>,
    level: Option<Level>,
}

impl Record {
    /// Picks the timestamp and level out of `line`.
    pub fn parse(line: Line) -> Record {
        let (timestamp_at, level) = match line.as_str() {
            Some(s) if is_json(s) => (
                TIME_KEYS.iter().find_map(|k| json_str(s, k)),
                LEVEL_KEYS.iter().find_map(|k| json_str(s, k)),
            ),
            Some(s) if is_logfmt(s) => (
                TIME_KEYS.iter().find_map(|k| logfmt_str(s, k)),
                LEVEL_KEYS.iter().find_map(|k| logfmt_str(s, k)),
            ),
            Some(s) => text_fields(s),
            None => (None, None),
        };
        let text =
            |at: Option<(usize, usize)>| at.and_then(|(a, b)| line.as_str().map(|s| &s[a..b]));
        let timestamp = text(timestamp_at)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(SystemTime::from);
        let level = text(level).and_then(parse_level);
        Record {
            line,
            timestamp,
            timestamp_at,
            level,
        }
    }
    /// The timestamp as written (for a custom time format, which [`Record::timestamp`] does
    /// not read); `None` if the line has none where the sink writes it.
    pub fn timestamp_text(&self) -> Option<&str> {
        let (a, b) = self.timestamp_at?;
        Some(&self.line.as_str()?[a..b])
    }
    /// The line as written.
    pub fn line(&self) -> &Line {
        &self.line
    }
    /// The line as written.
    pub fn into_line(self) -> Line {
        self.line
    }
    /// When the event happened, if the line says so in RFC 3339.
    pub fn timestamp(&self) -> Option<SystemTime> {
        self.timestamp
    }
    /// The event's level, if the line has one.
    pub fn level(&self) -> Option<Level> {
        self.level
    }
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.line.fmt(f)
    }
}

fn is_json(s: &str) -> bool {
    s.starts_with('{')
}

/// Where the time and the level are looked for, in this order.
const TIME_KEYS: [&str; 4] = ["timestamp", "@timestamp", "time", "ts"];
const LEVEL_KEYS: [&str; 4] = ["level", "log.level", "severity", "lvl"];

/// A logfmt line starts with `key=`; a text line with a timestamp (no `=` in it).
fn is_logfmt(s: &str) -> bool {
    let first = s.split(' ').next().unwrap_or("");
    first.contains('=') && !first.starts_with('=')
}

/// Where the value of a top-level key of a logfmt line is (quotes excluded, escapes left as
/// written: times and levels have none).
fn logfmt_str(s: &str, key: &str) -> Option<Span> {
    let mut at = 0;
    while at < s.len() {
        let rest = &s[at..];
        let eq = rest.find('=')?;
        let k = &rest[..eq];
        let value_at = at + eq + 1;
        let (span, next) = if rest[eq + 1..].starts_with('"') {
            let b = s.as_bytes();
            let mut i = value_at + 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            ((value_at + 1, i.min(s.len())), (i + 1).min(s.len()))
        } else {
            let end = s[value_at..].find(' ').map_or(s.len(), |sp| value_at + sp);
            ((value_at, end), end)
        };
        if k == key {
            return Some(span);
        }
        at = next;
        while s[at..].starts_with(' ') {
            at += 1;
        }
    }
    None
}

/// A level name in any case; `WARNING` (Google Cloud Logging's) is `WARN`.
fn parse_level(l: &str) -> Option<Level> {
    if l.eq_ignore_ascii_case("warning") {
        return Some(Level::WARN);
    }
    l.parse().ok()
}

/// Where a piece of a line is: start and end byte offsets.
type Span = (usize, usize);

/// Where the value of a top-level string key is in a JSON line written by the sink (the key
/// is found outside string values, which the sink escapes).
fn json_str(s: &str, key: &str) -> Option<Span> {
    let pat = format!("\"{key}\":\"");
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find(&pat) {
        let at = from + i;
        // Inside a string value the quote before the key would be escaped (`\"`).
        let escaped = bytes[..at]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count()
            % 2
            == 1;
        if !escaped {
            let start = at + pat.len();
            return s[start..].find('"').map(|end| (start, start + end));
        }
        from = at + pat.len();
    }
    None
}

/// A text line is `<timestamp> <LEVEL> <target>: <message>`, the level padded to five
/// characters: the level is the first word that is a level name, the timestamp everything
/// before it.
fn text_fields(s: &str) -> (Option<Span>, Option<Span>) {
    let mut at = 0;
    for word in s.split(' ') {
        let start = at;
        at += word.len() + 1;
        if start > 0 && matches!(word, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR") {
            let ts = s[..start].trim_end_matches(' ');
            let ts = (!ts.is_empty()).then_some((0, ts.len()));
            return (ts, Some((start, start + word.len())));
        }
        // Past the target (`target: `): the message may name a level.
        if word.ends_with(':') && start > 0 {
            break;
        }
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn rec(s: &str) -> Record {
        Record::parse(Line {
            bytes: s.as_bytes().to_vec(),
            seq: None,
            offset: 0,
            complete: true,
        })
    }

    #[test]
    fn json_and_text() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_662_888_123_456);
        let j = rec(
            r#"{"timestamp":"2026-11-26T03:14:48.123456Z","level":"WARN","fields":{"message":"\"level\":\"ERROR\""},"target":"a"}"#,
        );
        assert_eq!((j.timestamp(), j.level()), (Some(t), Some(Level::WARN)));
        let x = rec("2026-11-26T04:14:48.123456+01:00  INFO my::target: hello level=ERROR");
        assert_eq!((x.timestamp(), x.level()), (Some(t), Some(Level::INFO)));
        let e = rec("2026-11-26T03:14:48.123456Z ERROR t: m");
        assert_eq!(e.level(), Some(Level::ERROR));
        // A key inside a string value is not the record's key.
        let v = rec(r#"{"fields":{"message":"x\",\"level\":\"ERROR"},"level":"DEBUG"}"#);
        assert_eq!((v.timestamp(), v.level()), (None, Some(Level::DEBUG)));
        let n = rec("not a record");
        assert_eq!((n.timestamp(), n.level()), (None, None));
        // A custom time format with spaces, in text: the level is still found, and the
        // timestamp's text is handed back whole.
        let c = rec("26/11/2026 03:14:48.123 +0000  WARN my::target: says INFO");
        assert_eq!(c.level(), Some(Level::WARN));
        assert_eq!(c.timestamp(), None);
        assert_eq!(c.timestamp_text(), Some("26/11/2026 03:14:48.123 +0000"));
        let j = rec(r#"{"timestamp":"26/11/2026 03:14:48","level":"INFO"}"#);
        assert_eq!(j.timestamp_text(), Some("26/11/2026 03:14:48"));
    }

    #[test]
    fn renamed_keys_and_logfmt() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_662_888_123_456);
        let ecs = rec(
            r#"{"@timestamp":"2026-11-26T03:14:48.123456Z","log.level":"ERROR","message":"m"}"#,
        );
        assert_eq!(
            (ecs.timestamp(), ecs.level()),
            (Some(t), Some(Level::ERROR))
        );
        let gcl = rec(r#"{"time":"2026-11-26T03:14:48.123456Z","severity":"WARNING"}"#);
        assert_eq!((gcl.timestamp(), gcl.level()), (Some(t), Some(Level::WARN)));
        let l = rec(
            r#"timestamp=2026-11-26T03:14:48.123456Z level=INFO target=a message="level=ERROR x" k=v"#,
        );
        assert_eq!((l.timestamp(), l.level()), (Some(t), Some(Level::INFO)));
        let l = rec(r#"msg="a \" level=ERROR" time=2026-11-26T03:14:48.123456Z lvl=debug"#);
        assert_eq!((l.timestamp(), l.level()), (Some(t), Some(Level::DEBUG)));
        let compact = rec("2026-11-26T03:14:48.123456Z DEBUG span: t: m k=v");
        assert_eq!(
            (compact.timestamp(), compact.level()),
            (Some(t), Some(Level::DEBUG))
        );
        let renamed = rec(r#"{"when":"2026-11-26T03:14:48.123456Z","sev":"INFO"}"#);
        assert_eq!((renamed.timestamp(), renamed.level()), (None, None));
    }
}
