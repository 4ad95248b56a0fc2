//! [logfmt](https://brandur.org/logfmt): one line of `key=value` pairs,
//! `timestamp=2026-11-26T03:14:48.123456Z level=INFO target=app message="logged in" user=ada
//! spans=request:db id=7`.
//!
//! A value is written bare unless it is empty or holds a space, `=`, `"`, `\`, or a control
//! character; then it is quoted with JSON's escapes (`\"`, `\\`, `\n`, `\u001b`), which is what
//! go-logfmt (Grafana Loki's `logfmt` parser, Go's `slog` readers) unquotes. Keys that
//! a logfmt reader could not read back (a space, `=`, `"`, a control character) have those
//! characters replaced by `_`. The top-level keys are renamable like JSON's; span names are
//! written as `spans=outer:inner`, followed by the spans' fields from root to leaf.

use std::cell::RefCell;
use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::escape::{has_json_special, json_escape_into};
use super::{level_str, options, Formatter};

thread_local! {
    /// `Debug` output is written here first: whether it needs quotes is known only once it
    /// is complete.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Writes the record without its timestamp; returns where the timestamp goes.
pub(crate) fn format_event<S>(
    f: &Formatter,
    out: &mut Vec<u8>,
    event: &Event<'_>,
    ctx: &Context<'_, S>,
) -> Option<usize>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let o = &*f.options;
    let keys = &o.keys;
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    let start = out.len();
    let time_at = write_head(f, out, meta.level(), o.target.then(|| meta.target()));
    if o.file {
        if let Some(file) = meta.file() {
            out.push(b' ');
            out.extend_from_slice(options::FILENAME.as_bytes());
            out.push(b'=');
            write_value(out, file);
        }
    }
    if o.line_number {
        if let Some(line) = meta.line() {
            out.push(b' ');
            out.extend_from_slice(options::LINE_NUMBER.as_bytes());
            out.push(b'=');
            out.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
        }
    }
    let message = keys.message_renamed().then(|| keys.get(options::MESSAGE));
    event.record(&mut FieldVisitor::new(out, message));
    if let Some(scope) = ctx.event_scope(event) {
        let start = out.len();
        out.push(b' ');
        out.extend_from_slice(keys.get(options::SPANS));
        let names = out.len();
        let mut plain = true;
        for (i, span) in scope.from_root().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            let name = span.metadata().name();
            plain &= !needs_quotes(name);
            out.extend_from_slice(name.as_bytes());
        }
        if !plain {
            // Rare (a span name with a space): quote the whole list.
            let mut list = out.split_off(names);
            let list = String::from_utf8(std::mem::take(&mut list)).unwrap_or_default();
            write_value(out, &list);
        }
        if out.len() == names {
            out.truncate(start);
        }
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = f.span_fields(&span.extensions()) {
                    out.extend_from_slice(fields.rendered.as_bytes());
                }
            }
        }
    }
    if o.thread_names {
        let thread = std::thread::current();
        match thread.name() {
            Some(name) => {
                out.push(b' ');
                out.extend_from_slice(options::THREAD_NAME.as_bytes());
                out.push(b'=');
                write_value(out, name);
            }
            None if !o.thread_ids => {
                out.push(b' ');
                out.extend_from_slice(options::THREAD_NAME.as_bytes());
                out.push(b'=');
                options::push_thread_id(out, false);
            }
            None => {}
        }
    }
    if o.thread_ids {
        out.push(b' ');
        out.extend_from_slice(options::THREAD_ID.as_bytes());
        out.push(b'=');
        options::push_thread_id(out, false);
    }
    if o.otel_ids {
        super::otel::write_ids(f, out, event, ctx, super::otel::Style::KeyValue);
    }
    out.extend_from_slice(&o.static_rendered);
    drop_leading_space(out, start);
    time_at
}

/// Pairs after the head bring their own leading space; without a head (no timestamp, level
/// or target) the line would start with it.
fn drop_leading_space(out: &mut Vec<u8>, start: usize) {
    if out.get(start) == Some(&b' ') {
        out.remove(start);
    }
}

/// The place of the timestamp, the level and the target; returns where the timestamp goes
/// (`Formatter::write_time` quotes a time that needs it).
fn write_head(
    f: &Formatter,
    out: &mut Vec<u8>,
    level: &Level,
    target: Option<&str>,
) -> Option<usize> {
    let keys = &f.options.keys;
    let head = out.len();
    let mut time_at = None;
    if f.options.timestamp {
        out.extend_from_slice(keys.get(options::TIMESTAMP));
        time_at = Some(out.len());
        out.push(b' ');
    }
    if f.options.level {
        out.extend_from_slice(keys.get(options::LEVEL));
        out.extend_from_slice(level_str(level).as_bytes());
        out.push(b' ');
    }
    if let Some(target) = target {
        out.extend_from_slice(keys.get(options::TARGET));
        write_value(out, target);
        out.push(b' ');
    }
    // Every later pair brings its own leading space.
    if out.len() > head && out.last() == Some(&b' ') {
        out.pop();
    }
    time_at
}

/// A record of the sink's own, without its timestamp; returns where the timestamp goes.
pub(crate) fn internal_record(
    f: &Formatter,
    out: &mut Vec<u8>,
    level: Level,
    message: &str,
    fields: &[(&str, u64)],
) -> Option<usize> {
    let o = &*f.options;
    let start = out.len();
    let time_at = write_head(f, out, &level, o.target.then_some("tracing_filesink"));
    out.push(b' ');
    out.extend_from_slice(o.keys.get(options::MESSAGE));
    write_value(out, message);
    for (k, v) in fields {
        out.push(b' ');
        write_key(out, k);
        out.push(b'=');
        out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
    }
    out.extend_from_slice(&o.static_rendered);
    drop_leading_space(out, start);
    time_at
}

/// True when `s` cannot be written bare.
fn needs_quotes(s: &str) -> bool {
    s.is_empty() || s.bytes().any(|b| b == b' ' || b == b'=') || has_json_special(s)
}

/// Appends `s` as a logfmt value: bare, or quoted with JSON's escapes.
pub(crate) fn write_value(out: &mut Vec<u8>, s: &str) {
    if needs_quotes(s) {
        out.push(b'"');
        json_escape_into(out, s);
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends a key, with what a logfmt reader would take for the end of the key replaced by `_`.
fn write_key(out: &mut Vec<u8>, key: &str) {
    if options::logfmt_key_ok(key) {
        out.extend_from_slice(key.as_bytes());
    } else if key.is_empty() {
        out.push(b'_');
    } else {
        for c in key.chars() {
            if c.is_control() || c.is_whitespace() || c == '=' || c == '"' {
                out.push(b'_');
            } else {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// Writes every field as ` key=value`.
pub(crate) struct FieldVisitor<'a> {
    out: &'a mut Vec<u8>,
    /// The renamed `message` key (`msg=`), when it is renamed.
    message: Option<&'a [u8]>,
}

impl<'a> FieldVisitor<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>, message: Option<&'a [u8]>) -> FieldVisitor<'a> {
        FieldVisitor { out, message }
    }

    fn key(&mut self, field: &Field) {
        self.out.push(b' ');
        let name = field.name();
        if let Some(m) = self.message {
            if name == "message" {
                self.out.extend_from_slice(m);
                return;
            }
        }
        write_key(self.out, name.strip_prefix("r#").unwrap_or(name));
        self.out.push(b'=');
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        let _ = std::io::Write::write_fmt(self.out, format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        write_value(self.out, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name().starts_with("log.") {
            return;
        }
        self.key(field);
        let out = &mut *self.out;
        let done = SCRATCH
            .try_with(|s| match s.try_borrow_mut() {
                Ok(mut s) => {
                    s.clear();
                    let _ = write!(s, "{value:?}");
                    write_value(out, &s);
                    if s.capacity() > 64 * 1024 {
                        *s = String::new();
                    }
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        if !done {
            // Re-entered from a `Debug` impl that logs.
            let mut s = String::new();
            let _ = write!(s, "{value:?}");
            write_value(out, &s);
        }
    }
}
