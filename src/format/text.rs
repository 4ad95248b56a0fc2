//! tracing-subscriber's default ("full") text layout, without colours:
//! `2026-11-26T03:14:48.123456Z  INFO outer{a=1}:inner: my::target: message k=v`.
//!
//! And its `compact` layout:
//! `2026-11-26T03:14:48.123456Z  INFO outer:inner: my::target: message k=v a=1`.
//!
//! Unlike tracing-subscriber, every piece of text, the message and `%display` fields
//! included, has its control characters escaped, so a record cannot forge a second line.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::escape::{text_escape_into, TextEscaper};
use super::{level_str, options, Formatter};

/// The place of the timestamp and the level column; returns where the timestamp goes.
fn write_prefix(f: &Formatter, out: &mut Vec<u8>, level: &Level) -> Option<usize> {
    let mut time_at = None;
    if f.options.timestamp {
        time_at = Some(out.len());
        out.push(b' ');
    }
    if f.options.level {
        let l = level_str(level);
        if l.len() < 5 {
            out.push(b' ');
        }
        out.extend_from_slice(l.as_bytes());
        out.push(b' ');
    }
    time_at
}

/// fmt's thread name and id, each followed by a space.
fn write_thread(f: &Formatter, out: &mut Vec<u8>) {
    let o = &f.options;
    if o.thread_names {
        let thread = std::thread::current();
        match thread.name() {
            Some(name) => {
                push_padded_name(out, name);
                out.push(b' ');
            }
            // As fmt: the thread's id stands in for a missing name unless ids are written.
            None if !o.thread_ids => {
                options::push_thread_id(out, true);
                out.push(b' ');
            }
            None => {}
        }
    }
    if o.thread_ids {
        options::push_thread_id(out, true);
        out.push(b' ');
    }
}

/// A thread name right-aligned to the longest name written so far, as fmt pads it.
fn push_padded_name(out: &mut Vec<u8>, name: &str) {
    static MAX_LEN: AtomicUsize = AtomicUsize::new(0);
    let len = name.len();
    let max = MAX_LEN.fetch_max(len, Ordering::Relaxed).max(len);
    out.resize(out.len() + (max - len), b' ');
    text_escape_into(out, name);
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
    // As fmt does: a record from the `log` crate (through tracing-log's `LogTracer`) is
    // printed with its own target, not `log`.
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    let time_at = write_prefix(f, out, meta.level());
    write_thread(f, out);
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
    let o = &f.options;
    if o.target {
        text_escape_into(out, meta.target());
        out.extend_from_slice(b": ");
    }
    let line = if o.line_number { meta.line() } else { None };
    if o.file {
        if let Some(file) = meta.file() {
            text_escape_into(out, file);
            out.push(b':');
            if line.is_none() {
                out.push(b' ');
            }
        }
    }
    if let Some(line) = line {
        out.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
        out.extend_from_slice(b": ");
    }
    event.record(&mut FieldVisitor::new(out, true));
    write_extras(f, out, event, ctx);
    time_at
}

/// fmt's `compact` layout: span names before the target, span fields after the event's.
/// Writes the record without its timestamp; returns where the timestamp goes.
pub(crate) fn format_compact<S>(
    f: &Formatter,
    out: &mut Vec<u8>,
    event: &Event<'_>,
    ctx: &Context<'_, S>,
) -> Option<usize>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    let time_at = write_prefix(f, out, meta.level());
    write_thread(f, out);
    // As fmt's compact layout: the names of the explicit parent's scope, else the current
    // span's (an explicit root event too shows the current span's names, but no fields).
    let named = event
        .parent()
        .and_then(|id| ctx.span(id))
        .or_else(|| ctx.lookup_current());
    if let Some(leaf) = named {
        for span in leaf.scope().from_root() {
            text_escape_into(out, span.metadata().name());
            out.push(b':');
        }
        out.push(b' ');
    }
    let o = &f.options;
    let mut needs_space = false;
    if o.target {
        text_escape_into(out, meta.target());
        out.push(b':');
        needs_space = true;
    }
    if o.file {
        if let Some(file) = meta.file() {
            if o.target {
                out.push(b' ');
            }
            text_escape_into(out, file);
            out.push(b':');
            needs_space = true;
        }
    }
    if o.line_number {
        if let Some(line) = meta.line() {
            out.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
            out.push(b':');
            needs_space = true;
        }
    }
    if needs_space {
        out.push(b' ');
    }
    event.record(&mut FieldVisitor::new(out, true));
    if let Some(scope) = ctx.event_scope(event) {
        for span in scope.from_root() {
            if let Some(fields) = f.span_fields(&span.extensions()) {
                if !fields.rendered.is_empty() {
                    out.push(b' ');
                    out.extend_from_slice(fields.rendered.as_bytes());
                }
            }
        }
    }
    write_extras(f, out, event, ctx);
    time_at
}

/// What fmt does not write: OpenTelemetry ids and static fields, as ` k=v` at the end.
fn write_extras<S>(f: &Formatter, out: &mut Vec<u8>, event: &Event<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if f.options.otel_ids {
        super::otel::write_ids(f, out, event, ctx, super::otel::Style::KeyValue);
    }
    out.extend_from_slice(&f.options.static_rendered);
}

/// A record of the sink's own, without its timestamp; returns where the timestamp goes.
pub(crate) fn internal_record(
    f: &Formatter,
    out: &mut Vec<u8>,
    level: Level,
    message: &str,
    fields: &[(&str, u64)],
) -> Option<usize> {
    let time_at = write_prefix(f, out, &level);
    if f.options.target {
        out.extend_from_slice(b"tracing_filesink: ");
    }
    text_escape_into(out, message);
    for (k, v) in fields {
        out.push(b' ');
        text_escape_into(out, k);
        out.push(b'=');
        out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
    }
    out.extend_from_slice(&f.options.static_rendered);
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
                // tracing-subscriber 0.3.23's form (0.3.20 wrote `, err.sources: [..]`).
                &format_args!("{} {}.sources={}", value, field, SourceList(source)),
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
