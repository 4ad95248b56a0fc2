//! tracing-subscriber's default ("full") text layout, without colours:
//! `2026-11-26T03:14:48.123456Z  INFO outer{a=1}:inner: my::target: message k=v`.
//!
//! Unlike tracing-subscriber, every piece of text, the message and `%display` fields
//! included, has its control characters escaped, so a record cannot forge a second line.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::escape::{text_escape_into, TextEscaper};
use super::{level_str, Formatter};

/// The level column, after the place of the timestamp; returns that place.
fn write_prefix(out: &mut Vec<u8>, level: &Level) -> usize {
    let time_at = out.len();
    out.push(b' ');
    let l = level_str(level);
    if l.len() < 5 {
        out.push(b' ');
    }
    out.extend_from_slice(l.as_bytes());
    out.push(b' ');
    time_at
}

/// Writes the record without its timestamp and returns where the timestamp goes.
pub(crate) fn format_event<S>(
    f: &Formatter,
    out: &mut Vec<u8>,
    event: &Event<'_>,
    ctx: &Context<'_, S>,
) -> usize
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // As fmt does: a record from the `log` crate (through tracing-log's `LogTracer`) is
    // printed with its own target, not `log`.
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    let time_at = write_prefix(out, meta.level());
    if let Some(scope) = ctx.event_scope(event) {
        let mut seen = false;
        for span in scope.from_root() {
            text_escape_into(out, span.metadata().name());
            seen = true;
            if let Some(fields) = f.span_fields(&span.extensions()) {
                if !fields.rendered.is_empty() {
                    out.push(b'{');
                    out.extend_from_slice(fields.rendered.as_bytes());
                    out.push(b'}');
                }
            }
            out.push(b':');
        }
        if seen {
            out.push(b' ');
        }
    }
    text_escape_into(out, meta.target());
    out.extend_from_slice(b": ");
    event.record(&mut FieldVisitor::new(out, true));
    time_at
}

/// A record of the sink's own, without its timestamp; returns where the timestamp goes.
pub(crate) fn internal_record(
    out: &mut Vec<u8>,
    level: Level,
    message: &str,
    fields: &[(&str, u64)],
) -> usize {
    let time_at = write_prefix(out, &level);
    out.extend_from_slice(b"tracing_filesink: ");
    text_escape_into(out, message);
    for (k, v) in fields {
        out.push(b' ');
        text_escape_into(out, k);
        out.push(b'=');
        out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
    }
    time_at
}

/// tracing-subscriber's `DefaultVisitor`, writing through the escaper.
pub(crate) struct FieldVisitor<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> FieldVisitor<'a> {
    /// Appends to `out`; unless `empty`, a space separates the first field from what
    /// `out` already holds.
    pub(crate) fn new(out: &'a mut Vec<u8>, empty: bool) -> FieldVisitor<'a> {
        FieldVisitor { out, empty }
    }

    fn pad(&mut self) {
        if self.empty {
            self.empty = false;
        } else {
            self.out.push(b' ');
        }
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"))
        } else {
            self.record_debug(field, &value)
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match value.source() {
            Some(source) => self.record_debug(
                field,
                &format_args!("{}, {}.sources: {}", value, field, SourceList(source)),
            ),
            None => self.record_debug(field, &format_args!("{value}")),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        self.pad();
        if name == "message" {
            let _ = write!(TextEscaper(self.out), "{value:?}");
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        text_escape_into(self.out, name);
        self.out.push(b'=');
        let _ = write!(TextEscaper(self.out), "{value:?}");
    }
}

struct SourceList<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for SourceList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        let mut cur = Some(self.0);
        while let Some(e) = cur {
            list.entry(&format_args!("{e}"));
            cur = e.source();
        }
        list.finish()
    }
}
