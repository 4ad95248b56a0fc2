//! What a record carries besides the event: `fmt`'s options (under `fmt`'s names), renamed
//! top-level keys and static fields. Set on the builder, checked and pre-rendered once in
//! `build()`, so the logging path only copies bytes.

use super::escape::json_escape_into;
use super::Format;

/// The top-level keys a user may rename, in the order of [`Keys`]' array.
pub(crate) const RENAMABLE: [&str; 7] = [
    "timestamp",
    "level",
    "message",
    "target",
    "fields",
    "span",
    "spans",
];

pub(crate) const TIMESTAMP: usize = 0;
pub(crate) const LEVEL: usize = 1;
pub(crate) const MESSAGE: usize = 2;
pub(crate) const TARGET: usize = 3;
pub(crate) const FIELDS: usize = 4;
pub(crate) const SPAN: usize = 5;
pub(crate) const SPANS: usize = 6;

/// `fmt`'s keys that are not renamable, written by `with_file`, `with_line_number`,
/// `with_thread_names` and `with_thread_ids`.
pub(crate) const FILENAME: &str = "filename";
pub(crate) const LINE_NUMBER: &str = "line_number";
pub(crate) const THREAD_NAME: &str = "threadName";
pub(crate) const THREAD_ID: &str = "threadId";
/// The OpenTelemetry log data model's names.
pub(crate) const TRACE_ID: &str = "trace_id";
pub(crate) const SPAN_ID: &str = "span_id";

/// The options as the builder collects them (unchecked).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) timestamp: bool,
    pub(crate) flatten_event: bool,
    pub(crate) current_span: bool,
    pub(crate) span_list: bool,
    pub(crate) file: bool,
    pub(crate) line_number: bool,
    pub(crate) thread_ids: bool,
    pub(crate) thread_names: bool,
    pub(crate) target: bool,
    pub(crate) level: bool,
    /// (`fmt`'s key, new name), in the order given; the last rename of a key wins.
    pub(crate) renames: Vec<(String, String)>,
    pub(crate) static_fields: Vec<(String, String)>,
    pub(crate) otel_ids: bool,
}

impl Default for Settings {
    /// `fmt::layer().json()`'s defaults.
    fn default() -> Settings {
        Settings {
            timestamp: true,
            flatten_event: false,
            current_span: true,
            span_list: true,
            file: false,
            line_number: false,
            thread_ids: false,
            thread_names: false,
            target: true,
            level: true,
            renames: Vec::new(),
            static_fields: Vec::new(),
            otel_ids: false,
        }
    }
}

/// The checked, pre-rendered options the formatter reads.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) timestamp: bool,
    pub(crate) flatten_event: bool,
    pub(crate) current_span: bool,
    pub(crate) span_list: bool,
    pub(crate) file: bool,
    pub(crate) line_number: bool,
    pub(crate) thread_ids: bool,
    pub(crate) thread_names: bool,
    pub(crate) target: bool,
    pub(crate) level: bool,
    pub(crate) otel_ids: bool,
    pub(crate) keys: Keys,
    /// JSON: `,"k":"v"` for every static field. Key-value text: ` k=v`.
    pub(crate) static_rendered: Vec<u8>,
    /// The subscriber the layer was registered with: how OpenTelemetry ids are read.
    #[cfg(feature = "opentelemetry")]
    pub(crate) dispatch: std::sync::OnceLock<tracing::dispatcher::WeakDispatch>,
}

impl Default for Options {
    fn default() -> Options {
        Settings::default()
            .check(Format::Json)
            .expect("the default options are valid")
    }
}

/// The top-level key names, as written: JSON keys pre-escaped with their quotes and colon
/// (`"level":`), logfmt keys with their `=`.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    rendered: [Box<[u8]>; 7],
    names: [Box<str>; 7],
}

impl Keys {
    /// The key as written, ready to copy: `"level":` or `level=`.
    #[inline]
    pub(crate) fn get(&self, key: usize) -> &[u8] {
        &self.rendered[key]
    }

    /// True when `message` was renamed (event visitors compare field names only then).
    pub(crate) fn message_renamed(&self) -> bool {
        &*self.names[MESSAGE] != "message"
    }
}

/// Whether `key` can be written unquoted as a logfmt key.
pub(crate) fn logfmt_key_ok(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '=' && c != '"')
}

impl Settings {
    /// Checks the options for `format` and renders what can be rendered once. Errors name
    /// the setting.
    pub(crate) fn check(self, format: Format) -> Result<Options, (&'static str, String)> {
        let json = format == Format::Json;
        if !json {
            for (name, set) in [
                ("flatten_event", self.flatten_event),
                ("with_current_span", !self.current_span),
                ("with_span_list", !self.span_list),
            ] {
                if set {
                    return Err((
                        name,
                        format!("applies to the JSON format only, not to {format:?}"),
                    ));
                }
            }
        }
        let mut names: [String; 7] = RENAMABLE.map(String::from);
        for (from, to) in &self.renames {
            let Some(i) = RENAMABLE.iter().position(|k| k == from) else {
                return Err((
                    "rename_key",
                    format!(
                        "{from:?} is not a key that can be renamed (one of {})",
                        RENAMABLE.join(", ")
                    ),
                ));
            };
            if matches!(format, Format::Text | Format::Compact) {
                return Err((
                    "rename_key",
                    format!("the {format:?} layout has no keys to rename"),
                ));
            }
            check_key("rename_key", to, format)?;
            names[i] = to.clone();
        }
        // Every key a record's top level may carry, once each.
        let mut top: Vec<&str> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let used = match i {
                TIMESTAMP => self.timestamp,
                LEVEL => self.level,
                TARGET => self.target,
                FIELDS => json && !self.flatten_event,
                MESSAGE => !json || self.flatten_event,
                SPAN => json && self.current_span,
                SPANS => self.span_list || !json,
                _ => true,
            };
            if used {
                top.push(n);
            }
        }
        for (on, k) in [
            (self.file, FILENAME),
            (self.line_number, LINE_NUMBER),
            (self.thread_names, THREAD_NAME),
            (self.thread_ids, THREAD_ID),
            (self.otel_ids, TRACE_ID),
            (self.otel_ids, SPAN_ID),
        ] {
            if on {
                top.push(k);
            }
        }
        let mut static_rendered = Vec::new();
        for (k, v) in &self.static_fields {
            check_key("static_field", k, format)?;
            if top.contains(&k.as_str()) {
                return Err((
                    "static_field",
                    format!("{k:?} is already a key of every record"),
                ));
            }
            top.push(k);
            match format {
                Format::Json => {
                    static_rendered.extend_from_slice(b",\"");
                    json_escape_into(&mut static_rendered, k);
                    static_rendered.extend_from_slice(b"\":\"");
                    json_escape_into(&mut static_rendered, v);
                    static_rendered.push(b'"');
                }
                Format::Logfmt => {
                    static_rendered.push(b' ');
                    static_rendered.extend_from_slice(k.as_bytes());
                    static_rendered.push(b'=');
                    super::logfmt::write_value(&mut static_rendered, v);
                }
                Format::Text | Format::Compact => {
                    static_rendered.push(b' ');
                    super::escape::text_escape_into(&mut static_rendered, k);
                    static_rendered.push(b'=');
                    super::escape::text_escape_into(&mut static_rendered, v);
                }
            }
        }
        for (i, a) in top.iter().enumerate() {
            if top[i + 1..].contains(a) {
                return Err((
                    "rename_key",
                    format!("two top-level keys would be named {a:?}"),
                ));
            }
        }
        let rendered = names.clone().map(|n| {
            let mut b = Vec::with_capacity(n.len() + 3);
            if json {
                b.push(b'"');
                json_escape_into(&mut b, &n);
                b.extend_from_slice(b"\":");
            } else {
                b.extend_from_slice(n.as_bytes());
                b.push(b'=');
            }
            b.into_boxed_slice()
        });
        Ok(Options {
            timestamp: self.timestamp,
            flatten_event: self.flatten_event,
            current_span: self.current_span,
            span_list: self.span_list,
            file: self.file,
            line_number: self.line_number,
            thread_ids: self.thread_ids,
            thread_names: self.thread_names,
            target: self.target,
            level: self.level,
            otel_ids: self.otel_ids,
            keys: Keys {
                rendered,
                names: names.map(String::into_boxed_str),
            },
            static_rendered,
            #[cfg(feature = "opentelemetry")]
            dispatch: std::sync::OnceLock::new(),
        })
    }
}

fn check_key(
    setting: &'static str,
    key: &str,
    format: Format,
) -> Result<(), (&'static str, String)> {
    if key.is_empty() {
        return Err((setting, "a key is empty".into()));
    }
    if key
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err((
            setting,
            format!("the key {key:?} contains a control character"),
        ));
    }
    if format != Format::Json && !logfmt_key_ok(key) {
        return Err((
            setting,
            format!("the key {key:?} cannot be a `key=value` key (no spaces, `=` or `\"`)"),
        ));
    }
    Ok(())
}

/// `ThreadId(N)` as `fmt`'s JSON writes it, into `out` without allocating.
pub(crate) fn push_thread_id(out: &mut Vec<u8>, padded: bool) {
    use std::io::Write as _;
    let id = std::thread::current().id();
    let _ = if padded {
        write!(out, "{id:0>2?}")
    } else {
        write!(out, "{id:?}")
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::timestamp::{TimeFormat, TimeZone, Timestamper};
    use crate::format::{Formatter, SinkId};
    use std::sync::Arc;

    fn formatter(format: Format, s: Settings) -> Formatter {
        Formatter {
            format,
            timestamper: Timestamper::new(TimeZone::Utc, &TimeFormat::rfc3339_micros()),
            clock: crate::clock::Clock::System,
            sink: SinkId::next(),
            options: Arc::new(s.check(format).unwrap()),
        }
    }

    fn internal(f: &Formatter) -> String {
        let mut out = Vec::new();
        f.internal_record(
            &mut out,
            tracing::Level::WARN,
            "events dropped",
            &[("dropped", 7)],
        );
        String::from_utf8(out).unwrap()
    }

    /// The sink's own records (drops, recovery) take the same shape as the events: renamed
    /// keys, flattening, static fields.
    #[test]
    fn internal_records_follow_the_options() {
        let s = Settings {
            flatten_event: true,
            renames: vec![
                ("timestamp".into(), "@timestamp".into()),
                ("level".into(), "log.level".into()),
            ],
            static_fields: vec![("service".into(), "checkout".into())],
            ..Settings::default()
        };
        let line = internal(&formatter(Format::Json, s.clone()));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["log.level"], "WARN", "{line}");
        assert_eq!(v["message"], "events dropped", "{line}");
        assert_eq!(v["dropped"], 7, "{line}");
        assert_eq!(v["service"], "checkout", "{line}");
        assert!(
            v["@timestamp"].is_string() && v.get("fields").is_none(),
            "{line}"
        );

        let s = Settings {
            flatten_event: false,
            target: false,
            ..s
        };
        let line = internal(&formatter(Format::Logfmt, s));
        let line = line.trim_end();
        let rest = line.split_once(' ').unwrap().1;
        assert!(line.starts_with("@timestamp=20"), "{line}");
        assert_eq!(
            rest,
            "log.level=WARN message=\"events dropped\" dropped=7 service=checkout"
        );
        for format in [Format::Text, Format::Compact] {
            let s = Settings {
                static_fields: vec![("service".into(), "checkout".into())],
                ..Settings::default()
            };
            let line = internal(&formatter(format, s));
            assert!(
                line.trim_end()
                    .ends_with(" WARN tracing_filesink: events dropped dropped=7 service=checkout"),
                "{line}"
            );
        }
    }
}
