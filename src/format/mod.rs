//! Formatting an event into one line, on the calling thread.
//!
//! Records are built into a reused per-thread buffer; span fields are rendered once, when
//! the span is created or recorded, and copied into every event inside the span.

pub(crate) mod escape;
pub(crate) mod json;
pub(crate) mod logfmt;
pub(crate) mod options;
pub(crate) mod otel;
pub(crate) mod text;
pub(crate) mod timestamp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{Extensions, ExtensionsMut, LookupSpan};

pub use timestamp::{TimeFormat, TimeZone};

/// The record format of the log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// JSON Lines with the schema of `tracing_subscriber::fmt::layer().json()` (the default):
    /// keys `timestamp`, `level`, `fields`, `target`, `span`, `spans`.
    #[default]
    Json,
    /// tracing-subscriber's default ("full") text layout, without colours and with control
    /// characters escaped.
    Text,
    /// tracing-subscriber's `compact` text layout (`fmt::layer().compact()`), without colours
    /// and with control characters escaped.
    Compact,
    /// [logfmt](https://brandur.org/logfmt): `key=value` pairs, values quoted (with JSON's
    /// escapes, as Grafana Loki's and Go's logfmt parsers read them) when they hold a space,
    /// `=`, `"`, `\` or a control character:
    /// `timestamp=2026-11-26T03:14:48.123456Z level=INFO target=app message="logged in" user=ada`.
    Logfmt,
}

/// Frozen formatting settings shared by the layer and the writer thread.
#[derive(Debug, Clone)]
pub(crate) struct Formatter {
    pub(crate) format: Format,
    pub(crate) timestamper: timestamp::Timestamper,
    pub(crate) clock: crate::clock::Clock,
    /// Which sink's fields to read from a span's [`SinkSpans`].
    pub(crate) sink: SinkId,
    /// fmt's options, renamed keys, static fields.
    pub(crate) options: Arc<options::Options>,
}

/// Tells apart the sinks of one process: in a span's extensions and in a thread's list of slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SinkId(u64);

impl SinkId {
    pub(crate) fn next() -> SinkId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        SinkId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Every sink's rendered fields of one span. A span's extensions hold one value per type, and
/// one subscriber may carry several sinks, each with its own format and per-layer filter (so
/// each renders only the spans its filter lets through): each sink keeps its own entry.
#[derive(Debug, Default)]
pub(crate) struct SinkSpans(Vec<(SinkId, SpanFields)>);

/// Rendered fields of one span for one sink.
#[derive(Debug, Default)]
pub(crate) struct SpanFields {
    /// JSON: (name, rendered value) sorted by name, last write wins, as tracing-subscriber's
    /// `JsonFields` keeps them.
    entries: Vec<(&'static str, String)>,
    /// JSON: `"k":v,` for every entry. Text: `k=v k2=v2`.
    rendered: String,
}

impl Formatter {
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Remembers the subscriber the layer was registered with (for OpenTelemetry ids).
    pub(crate) fn register_dispatch(&self, _subscriber: &tracing::Dispatch) {
        #[cfg(feature = "opentelemetry")]
        if self.options.otel_ids {
            let _ = self.options.dispatch.set(_subscriber.downgrade());
        }
    }

    /// This sink's rendered fields of a span.
    pub(crate) fn span_fields<'a>(&self, ext: &'a Extensions<'_>) -> Option<&'a SpanFields> {
        let spans = ext.get::<SinkSpans>()?;
        spans
            .0
            .iter()
            .find(|(id, _)| *id == self.sink)
            .map(|(_, f)| f)
    }

    /// Stores this sink's rendered fields of a new span.
    pub(crate) fn store_span(&self, ext: &mut ExtensionsMut<'_>, fields: SpanFields) {
        match ext.get_mut::<SinkSpans>() {
            Some(spans) => match spans.0.iter_mut().find(|(id, _)| *id == self.sink) {
                Some(slot) => slot.1 = fields,
                None => spans.0.push((self.sink, fields)),
            },
            None => ext.insert(SinkSpans(vec![(self.sink, fields)])),
        }
    }

    /// Adds `values` recorded later (`span.record(..)`) to this sink's fields of a span.
    pub(crate) fn record_in(
        &self,
        ext: &mut ExtensionsMut<'_>,
        values: &tracing::span::Record<'_>,
    ) {
        let Some(spans) = ext.get_mut::<SinkSpans>() else {
            return;
        };
        if let Some((_, fields)) = spans.0.iter_mut().find(|(id, _)| *id == self.sink) {
            self.record_span(fields, values);
        }
    }

    pub(crate) fn new_span_fields(&self, attrs: &tracing::span::Attributes<'_>) -> SpanFields {
        let mut f = SpanFields::default();
        self.record_span(&mut f, &tracing::span::Record::new(attrs.values()));
        f
    }

    pub(crate) fn record_span(&self, f: &mut SpanFields, values: &tracing::span::Record<'_>) {
        match self.format {
            Format::Json => {
                values.record(&mut json::SpanVisitor(&mut f.entries));
                // Rendered again in place, into the span's own buffer.
                let mut buf = std::mem::take(&mut f.rendered).into_bytes();
                buf.clear();
                for (k, v) in &f.entries {
                    buf.push(b'"');
                    escape::json_escape_into(&mut buf, k);
                    buf.extend_from_slice(b"\":");
                    buf.extend_from_slice(v.as_bytes());
                    buf.push(b',');
                }
                f.rendered = into_string(buf);
            }
            Format::Text | Format::Compact => {
                let mut buf = std::mem::take(&mut f.rendered).into_bytes();
                let empty = buf.is_empty();
                values.record(&mut text::FieldVisitor::new(&mut buf, empty));
                f.rendered = into_string(buf);
            }
            Format::Logfmt => {
                let mut buf = std::mem::take(&mut f.rendered).into_bytes();
                values.record(&mut logfmt::FieldVisitor::new(&mut buf, None));
                f.rendered = into_string(buf);
            }
        }
    }

    /// Appends one complete record for `event` to `out`, newline included, but for its
    /// timestamp: the time is read when the record is queued, under its slot's lock, and
    /// written in at the returned offset ([`Timed`]); `None` with `without_time`.
    pub(crate) fn format_event<S>(
        &self,
        out: &mut Vec<u8>,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
    ) -> Option<usize>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let time_at = match self.format {
            Format::Json => json::format_event(self, out, event, ctx),
            Format::Text => text::format_event(self, out, event, ctx),
            Format::Compact => text::format_compact(self, out, event, ctx),
            Format::Logfmt => logfmt::format_event(self, out, event, ctx),
        };
        out.push(b'\n');
        time_at
    }

    /// A record written by the sink itself (drops, a panic while formatting), in the
    /// configured format, without its timestamp, like [`format_event`](Self::format_event).
    pub(crate) fn internal_body(
        &self,
        out: &mut Vec<u8>,
        level: Level,
        message: &str,
        fields: &[(&str, u64)],
    ) -> Option<usize> {
        let time_at = match self.format {
            Format::Json => json::internal_record(self, out, level, message, fields),
            Format::Text | Format::Compact => {
                text::internal_record(self, out, level, message, fields)
            }
            Format::Logfmt => logfmt::internal_record(self, out, level, message, fields),
        };
        out.push(b'\n');
        time_at
    }

    /// A complete record of the sink's own, stamped now (startup reports, written before the
    /// writer runs).
    pub(crate) fn internal_record(
        &self,
        out: &mut Vec<u8>,
        level: Level,
        message: &str,
        fields: &[(&str, u64)],
    ) {
        let mut body = Vec::with_capacity(160);
        let time_at = self.internal_body(&mut body, level, message, fields);
        Timed::new(&body, time_at).write(self, out, self.now());
    }

    /// Appends the timestamp for `wall`, escaped (and in logfmt quoted) as the format needs.
    pub(crate) fn write_time(&self, out: &mut Vec<u8>, wall: SystemTime) {
        match self.format {
            Format::Json => self.timestamper.write(out, wall, escape::json_escape_into),
            Format::Text | Format::Compact => {
                self.timestamper.write(out, wall, escape::text_escape_into)
            }
            Format::Logfmt => {
                let start = out.len();
                self.timestamper.write(out, wall, escape::json_escape_into);
                if out[start..]
                    .iter()
                    .any(|&b| b == b' ' || b == b'"' || b == b'=' || b == b'\\')
                {
                    // A custom time format with a space: quoted, as a logfmt value must be.
                    out.insert(start, b'"');
                    out.push(b'"');
                }
            }
        }
    }
}

/// A formatted record waiting for its timestamp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timed<'a> {
    bytes: &'a [u8],
    /// Where the timestamp goes; `None` for a record without one (`without_time`, or
    /// `build_writer()`, whose records carry fmt's).
    time_at: Option<usize>,
}

impl<'a> Timed<'a> {
    pub(crate) fn new(bytes: &'a [u8], time_at: Option<usize>) -> Timed<'a> {
        let time_at = time_at.filter(|&at| at <= bytes.len());
        Timed { bytes, time_at }
    }

    /// Appends the record to `out` with `wall` written in.
    #[inline]
    pub(crate) fn write(&self, f: &Formatter, out: &mut Vec<u8>, wall: SystemTime) {
        match self.time_at {
            Some(at) => {
                out.extend_from_slice(&self.bytes[..at]);
                f.write_time(out, wall);
                out.extend_from_slice(&self.bytes[at..]);
            }
            None => out.extend_from_slice(self.bytes),
        }
    }
}

/// Rendered fields as a `String`, without a copy. The escapers write valid UTF-8 for valid
/// UTF-8 input, so the lossy branch is only a guard.
fn into_string(buf: Vec<u8>) -> String {
    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub(crate) fn level_str(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        _ => "ERROR",
    }
}
