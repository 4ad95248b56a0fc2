//! A line with its timestamp and level picked out, for filtering; the rest of the record is
//! left as written (parse it with any JSON library).

use std::time::SystemTime;

use tracing::Level;

use super::Line;

/// A record read back: the line as written, with its timestamp and level when the line has
/// them where the sink writes them. JSON and logfmt: the keys `timestamp`, `@timestamp`,
/// `time` or `ts` and `level`, `log.level`, `severity` or `lvl` (the defaults and the
/// renamings of the Elastic Common Schema and Google Cloud Logging recipes; a key renamed to
/// anything else is not found). Text and compact: the first two words (no level with
/// `with_level(false)`). Timestamps are recognized in RFC 3339 (every [`crate::TimeFormat`]
/// except a custom one); levels in any case, `WARNING` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    line: Line,
    timestamp: Option<SystemTime>,
    level: Option<Level>,
}

impl Record {
    /// Picks the timestamp and level out of `line`.
    pub fn parse(line: Line) -> Record {
        let (timestamp, level) = match line.as_str() {
            Some(s) => (timestamp(s), level(s)),
            None => (None, None),
        };
        Record {
            line,
            timestamp,
            level,
        }
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

/// The value of a top-level string key in a JSON line written by the sink (the key is found
/// outside string values, which the sink escapes).
fn json_str<'a>(s: &'a str, key: &str) -> Option<&'a str> {
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
            let rest = &s[at + pat.len()..];
            return rest.find('"').map(|end| &rest[..end]);
        }
        from = at + pat.len();
    }
    None
}

/// Where the time and the level are looked for, in this order.
const TIME_KEYS: [&str; 4] = ["timestamp", "@timestamp", "time", "ts"];
const LEVEL_KEYS: [&str; 4] = ["level", "log.level", "severity", "lvl"];

/// A logfmt line starts with `key=`; a text line with a timestamp (no `=` in it).
fn is_logfmt(s: &str) -> bool {
    let first = s.split(' ').next().unwrap_or("");
    first.contains('=') && !first.starts_with('=')
}

/// The value of a top-level key of a logfmt line (quotes removed, escapes left as written:
/// times and levels have none).
fn logfmt_str<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = s;
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let (k, after) = (&rest[..eq], &rest[eq + 1..]);
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let b = q.as_bytes();
            let mut i = 0;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            (q.get(..i)?, q.get(i + 1..).unwrap_or(""))
        } else {
            match after.find(' ') {
                Some(sp) => (&after[..sp], &after[sp..]),
                None => (after, ""),
            }
        };
        if k == key {
            return Some(value);
        }
        rest = next.trim_start_matches(' ');
    }
    None
}

fn find(s: &str, keys: &[&str]) -> Option<String> {
    if is_json(s) {
        keys.iter().find_map(|k| json_str(s, k)).map(str::to_string)
    } else if is_logfmt(s) {
        keys.iter()
            .find_map(|k| logfmt_str(s, k))
            .map(str::to_string)
    } else {
        None
    }
}

fn timestamp(s: &str) -> Option<SystemTime> {
    let token = match find(s, &TIME_KEYS) {
        Some(t) => t,
        None if !is_json(s) && !is_logfmt(s) => s.split(' ').next()?.to_string(),
        None => return None,
    };
    chrono::DateTime::parse_from_rfc3339(&token)
        .ok()
        .map(SystemTime::from)
}

fn level(s: &str) -> Option<Level> {
    let token = match find(s, &LEVEL_KEYS) {
        Some(t) => t,
        None if !is_json(s) && !is_logfmt(s) => {
            s.split(' ').filter(|w| !w.is_empty()).nth(1)?.to_string()
        }
        None => return None,
    };
    if token.eq_ignore_ascii_case("warning") {
        return Some(Level::WARN);
    }
    token.parse().ok()
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
