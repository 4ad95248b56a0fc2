//! JSON Lines, key for key what `tracing_subscriber::fmt::layer().json()` writes:
//! `{"timestamp":..,"level":..,"fields":{..},"target":..,"span":{..},"spans":[..]}`.
//!
//! Event fields keep their recording order and their types (strings, integers, floats,
//! booleans; everything else as its `Debug` text), as `tracing-serde` writes them. Span fields
//! are sorted by name with the last value winning, as tracing-subscriber's `JsonFields` keeps them.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::escape::{json_escape_into, JsonEscaper};
use super::{level_str, options, Formatter};

/// Writes the record without its timestamp; returns where the timestamp goes (`None` with
/// `without_time`).
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
    // As fmt does: a record from the `log` crate (through tracing-log's `LogTracer`) is
    // printed with its own target, not `log`.
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    out.push(b'{');
    let start = out.len();
    let time_at = write_head(f, out, meta.level());
    let message = keys.message_renamed().then(|| keys.get(options::MESSAGE));
    if o.flatten_event {
        let first = out.len() == start;
        event.record(&mut EventVisitor {
            out,
            first,
            message,
        });
    } else {
        comma(out, start);
        out.extend_from_slice(keys.get(options::FIELDS));
        out.push(b'{');
        event.record(&mut EventVisitor {
            out,
            first: true,
            message,
        });
        out.push(b'}');
    }
    if o.target {
        comma(out, start);
        out.extend_from_slice(keys.get(options::TARGET));
        out.push(b'"');
        json_escape_into(out, meta.target());
        out.push(b'"');
    }
    if o.file {
        if let Some(file) = meta.file() {
            comma(out, start);
            out.extend_from_slice(b"\"filename\":\"");
            json_escape_into(out, file);
            out.push(b'"');
        }
    }
    if o.line_number {
        if let Some(line) = meta.line() {
            comma(out, start);
            out.extend_from_slice(b"\"line_number\":");
            out.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
        }
    }
    // As fmt's JSON does: `span` is the explicit parent or else the current span, `spans` is
    // always the current span's scope, and both are left out when there is no such span.
    if o.current_span || o.span_list {
        let explicit = event.parent().and_then(|id| ctx.span(id));
        let has_explicit = explicit.is_some();
        if let Some(leaf) = explicit.or_else(|| ctx.lookup_current()) {
            if o.current_span {
                comma(out, start);
                out.extend_from_slice(keys.get(options::SPAN));
                write_span(f, out, &leaf);
            }
            if o.span_list {
                comma(out, start);
                out.extend_from_slice(keys.get(options::SPANS));
                out.push(b'[');
                let current = if has_explicit {
                    ctx.lookup_current()
                } else {
                    Some(leaf)
                };
                let mut first = true;
                if let Some(current) = current {
                    for span in current.scope().from_root() {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        write_span(f, out, &span);
                    }
                }
                out.push(b']');
            }
        }
    }
    if o.thread_names {
        let thread = std::thread::current();
        match thread.name() {
            Some(name) => {
                comma(out, start);
                out.extend_from_slice(b"\"threadName\":\"");
                json_escape_into(out, name);
                out.push(b'"');
            }
            // As fmt: the thread's id stands in for a missing name unless ids are written.
            None if !o.thread_ids => {
                comma(out, start);
                out.extend_from_slice(b"\"threadName\":\"");
                options::push_thread_id(out, false);
                out.push(b'"');
            }
            None => {}
        }
    }
    if o.thread_ids {
        comma(out, start);
        out.extend_from_slice(b"\"threadId\":\"");
        options::push_thread_id(out, false);
        out.push(b'"');
    }
    if o.otel_ids {
        let before = out.len();
        super::otel::write_ids(f, out, event, ctx, super::otel::Style::Json);
        if before == start && out.len() > before {
            out.remove(before); // its leading comma
        }
    }
    static_fields(out, &o.static_rendered, start);
    out.push(b'}');
    time_at
}

/// The separator before a key, unless it is the object's first (`start`: just after `{`).
#[inline]
fn comma(out: &mut Vec<u8>, start: usize) {
    if out.len() > start {
        out.push(b',');
    }
}

/// The pre-rendered `,"k":"v"` static fields, without the leading comma when they come first.
fn static_fields(out: &mut Vec<u8>, rendered: &[u8], start: usize) {
    if out.len() == start {
        out.extend_from_slice(rendered.get(1..).unwrap_or(&[]));
    } else {
        out.extend_from_slice(rendered);
    }
}

/// The place of the timestamp and the level, as the options say; returns where the
/// timestamp goes.
fn write_head(f: &Formatter, out: &mut Vec<u8>, level: &Level) -> Option<usize> {
    let o = &*f.options;
    let mut time_at = None;
    if o.timestamp {
        out.extend_from_slice(o.keys.get(options::TIMESTAMP));
        out.push(b'"');
        time_at = Some(out.len());
        out.push(b'"');
    }
    if o.level {
        if o.timestamp {
            out.push(b',');
        }
        out.extend_from_slice(o.keys.get(options::LEVEL));
        out.push(b'"');
        out.extend_from_slice(level_str(level).as_bytes());
        out.push(b'"');
    }
    time_at
}

fn write_span<'a, R: tracing_subscriber::registry::LookupSpan<'a>>(
    f: &Formatter,
    out: &mut Vec<u8>,
    span: &tracing_subscriber::registry::SpanRef<'a, R>,
) {
    out.push(b'{');
    if let Some(fields) = f.span_fields(&span.extensions()) {
        out.extend_from_slice(fields.rendered.as_bytes());
    }
    out.extend_from_slice(b"\"name\":\"");
    json_escape_into(out, span.metadata().name());
    out.extend_from_slice(b"\"}");
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
    let keys = &o.keys;
    out.push(b'{');
    let start = out.len();
    let time_at = write_head(f, out, &level);
    comma(out, start);
    if !o.flatten_event {
        out.extend_from_slice(keys.get(options::FIELDS));
        out.push(b'{');
    }
    out.extend_from_slice(keys.get(options::MESSAGE));
    out.push(b'"');
    json_escape_into(out, message);
    out.push(b'"');
    for (k, v) in fields {
        out.extend_from_slice(b",\"");
        json_escape_into(out, k);
        out.extend_from_slice(b"\":");
        out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
    }
    if !o.flatten_event {
        out.push(b'}');
    }
    if o.target {
        out.push(b',');
        out.extend_from_slice(keys.get(options::TARGET));
        out.extend_from_slice(b"\"tracing_filesink\"");
    }
    static_fields(out, &o.static_rendered, start);
    out.push(b'}');
    time_at
}

struct EventVisitor<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    /// The renamed `message` key (`"msg":`), when it is renamed.
    message: Option<&'a [u8]>,
}

impl EventVisitor<'_> {
    #[inline]
    fn key(&mut self, field: &Field) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        if let Some(m) = self.message {
            if field.name() == "message" {
                self.out.extend_from_slice(m);
                return;
            }
        }
        self.out.push(b'"');
        json_escape_into(self.out, field.name());
        self.out.extend_from_slice(b"\":");
    }
}

impl Visit for EventVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        push_f64(self.out, value);
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
        self.out.push(b'"');
        json_escape_into(self.out, value);
        self.out.push(b'"');
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        self.out.push(b'"');
        // A `Debug` impl that fails leaves what it wrote; the string is still closed, so the
        // record stays valid JSON.
        let _ = write!(JsonEscaper(self.out), "{value:?}");
        self.out.push(b'"');
    }
}

fn push_f64(out: &mut Vec<u8>, value: f64) {
    if push_short_decimal(out, value) {
        return;
    }
    if value.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    } else {
        // serde_json writes non-finite floats as null.
        out.extend_from_slice(b"null");
    }
}

/// Writes `value` as ryu (and so serde_json and `fmt`) would, when it is the double nearest
/// to a decimal of at most 9 integer digits and 3 decimals (a latency in milliseconds, a
/// ratio, a price): a few integer operations instead of ryu's search. Returns false, writing
/// nothing, for any other value.
///
/// Why the output is ryu's: `value` is the double nearest to `k / 1000` (the division is
/// correctly rounded and `k` is exact), so that decimal reads back as `value`. It has at
/// most 12 significant digits, and distinct decimals of at most 15 significant digits never
/// round to the same double, so no shorter decimal reads back as `value`: it is the
/// shortest, which is what ryu prints, in its plain notation (`3.25`, `0.001`, `7.0`) for
/// magnitudes between 1e-3 and 1e9.
#[inline]
fn push_short_decimal(out: &mut Vec<u8>, value: f64) -> bool {
    if !value.is_finite() || value.abs() >= 1e9 || value == 0.0 {
        return false;
    }
    let scaled = value * 1000.0;
    let k = scaled.round();
    if k != scaled || k / 1000.0 != value {
        return false;
    }
    // |k| < 1e12: exact in an i64.
    let k = k as i64;
    if k < 0 {
        out.push(b'-');
    }
    let k = k.unsigned_abs();
    let (int, frac) = (k / 1000, k % 1000);
    out.extend_from_slice(itoa::Buffer::new().format(int).as_bytes());
    out.push(b'.');
    if frac == 0 {
        out.push(b'0');
    } else {
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let len = if frac % 100 == 0 {
            1
        } else if frac % 10 == 0 {
            2
        } else {
            3
        };
        out.extend_from_slice(&digits[..len]);
    }
    true
}

/// Span fields, kept the way tracing-subscriber's `JsonVisitor` keeps them.
pub(crate) struct SpanVisitor<'a>(pub(crate) &'a mut Vec<(&'static str, String)>);

impl SpanVisitor<'_> {
    fn insert(&mut self, name: &'static str, value: String) {
        match self.0.binary_search_by(|(k, _)| (*k).cmp(name)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    fn string(value: &str) -> String {
        let mut v = Vec::with_capacity(value.len() + 2);
        v.push(b'"');
        json_escape_into(&mut v, value);
        v.push(b'"');
        String::from_utf8(v).unwrap_or_default()
    }
}

impl Visit for SpanVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let mut v = Vec::new();
        push_f64(&mut v, value);
        self.insert(field.name(), String::from_utf8(v).unwrap_or_default());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field.name(), itoa::Buffer::new().format(value).to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field.name(), itoa::Buffer::new().format(value).to_owned());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field.name(), value.to_string());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field.name(), Self::string(value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        let mut s = String::with_capacity(value.len() * 4 + 2);
        s.push('[');
        for (i, b) in value.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(itoa::Buffer::new().format(*b));
        }
        s.push(']');
        self.insert(field.name(), s);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let mut v = Vec::with_capacity(32);
        v.push(b'"');
        let _ = write!(JsonEscaper(&mut v), "{value:?}");
        v.push(b'"');
        self.insert(name, String::from_utf8(v).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::push_f64;
    use proptest::prelude::*;

    fn ours(v: f64) -> String {
        let mut out = Vec::new();
        push_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    fn ryu(v: f64) -> String {
        if v.is_finite() {
            ryu::Buffer::new().format_finite(v).to_string()
        } else {
            "null".to_string()
        }
    }

    #[test]
    fn short_decimals_are_written_as_ryu_writes_them() {
        for v in [
            3.25,
            0.001,
            0.1,
            0.2,
            0.3,
            7.0,
            -7.5,
            999_999_999.999,
            1e9,
            1e-4,
            0.0,
            -0.0,
            12.5,
            100.0,
            0.125,
            1.005,
            2.675,
            1234.567,
            -0.001,
            f64::NAN,
            f64::INFINITY,
        ] {
            assert_eq!(ours(v), ryu(v), "{v:e}");
        }
    }

    proptest! {
        #[test]
        fn any_double_is_written_as_ryu_writes_it(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            prop_assert_eq!(ours(v), ryu(v));
        }

        #[test]
        fn decimals_near_three_places_are_written_as_ryu_writes_them(
            k in -2_000_000_000_000i64..2_000_000_000_000,
            div in prop::sample::select(vec![1.0, 10.0, 100.0, 1000.0, 10_000.0, 3.0, 7.0]),
            nudge in -2i64..=2,
        ) {
            let v = f64::from_bits(((k as f64) / div).to_bits().wrapping_add(nudge as u64));
            prop_assert_eq!(ours(v), ryu(v));
        }
    }
}
