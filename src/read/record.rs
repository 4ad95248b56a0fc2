//! A line with its timestamp and level picked out, for filtering; the rest of the record is
//! left as written (parse it with any JSON library).

use std::time::SystemTime;

use tracing::Level;

use super::Line;

/// A record read back: the line as written, with its timestamp and level when the line has
/// them where the sink writes them (JSON: the `timestamp` and `level` keys; text: the first
/// two words). Timestamps are recognized in RFC 3339 (every [`crate::TimeFormat`] except a
/// custom one).
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

fn timestamp(s: &str) -> Option<SystemTime> {
    let token = if is_json(s) {
        json_str(s, "timestamp")?
    } else {
        s.split(' ').next()?
    };
    chrono::DateTime::parse_from_rfc3339(token)
        .ok()
        .map(SystemTime::from)
}

fn level(s: &str) -> Option<Level> {
    let token = if is_json(s) {
        json_str(s, "level")?
    } else {
        s.split(' ').filter(|w| !w.is_empty()).nth(1)?
    };
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
}
