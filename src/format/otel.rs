//! OpenTelemetry `trace_id` and `span_id` (lowercase hex, the OpenTelemetry log data model's
//! names) of the event's span, read from the data a `tracing-opentelemetry` layer in the same
//! subscriber keeps in the span's extensions. Without the `opentelemetry` feature nothing is
//! written (and `build()` refuses the setting).

use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// How the two keys are written.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
pub(crate) enum Style {
    /// `,"trace_id":"…","span_id":"…"`
    Json,
    /// ` trace_id=… span_id=…`
    KeyValue,
}

/// Appends the ids of the event's span (its explicit parent, else the current span), or
/// nothing when there is no span or it has no OpenTelemetry context (yet).
#[cfg(feature = "opentelemetry")]
pub(crate) fn write_ids<S>(out: &mut Vec<u8>, event: &Event<'_>, ctx: &Context<'_, S>, style: Style)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = if event.is_contextual() {
        ctx.lookup_current()
    } else {
        event.parent().and_then(|id| ctx.span(id))
    };
    let Some(span) = span else { return };
    let ext = span.extensions();
    let Some(data) = ext.get::<tracing_opentelemetry::OtelData>() else {
        return;
    };
    let (Some(trace_id), Some(span_id)) = (data.trace_id(), data.span_id()) else {
        return;
    };
    let (t, s) = (trace_id.to_bytes(), span_id.to_bytes());
    match style {
        Style::Json => {
            out.extend_from_slice(b",\"trace_id\":\"");
            push_hex(out, &t);
            out.extend_from_slice(b"\",\"span_id\":\"");
            push_hex(out, &s);
            out.push(b'"');
        }
        Style::KeyValue => {
            out.extend_from_slice(b" trace_id=");
            push_hex(out, &t);
            out.extend_from_slice(b" span_id=");
            push_hex(out, &s);
        }
    }
}

#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn write_ids<S>(_: &mut Vec<u8>, _: &Event<'_>, _: &Context<'_, S>, _: Style)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
}

#[cfg(feature = "opentelemetry")]
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
}
