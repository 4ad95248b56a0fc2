//! OpenTelemetry `trace_id` and `span_id` (lowercase hex, the OpenTelemetry log data model's
//! names) of the event's span, read from the data a `tracing-opentelemetry` layer in the same
//! subscriber keeps in the span's extensions. Without the `opentelemetry` feature nothing is
//! written (and `build()` refuses the setting).

use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::Formatter;

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
/// nothing when there is no span or it has no valid OpenTelemetry context.
///
/// tracing-opentelemetry keeps its per-span data private; its public `get_otel_context`
/// reads it through the subscriber, which a layer learns in `on_register_dispatch`
/// ([`Formatter::register_dispatch`]). No allocation: the context is a few `Arc`s, cloned.
#[cfg(feature = "opentelemetry")]
pub(crate) fn write_ids<S>(
    f: &Formatter,
    out: &mut Vec<u8>,
    event: &Event<'_>,
    ctx: &Context<'_, S>,
    style: Style,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    use opentelemetry::trace::TraceContextExt as _;
    let id = if event.is_contextual() {
        ctx.lookup_current().map(|s| s.id())
    } else {
        event.parent().cloned()
    };
    let Some(id) = id else { return };
    let Some(dispatch) = f.options.dispatch.get().and_then(|d| d.upgrade()) else {
        return;
    };
    let Some(cx) = tracing_opentelemetry::get_otel_context(&id, &dispatch) else {
        return;
    };
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return;
    }
    let (t, s) = (sc.trace_id().to_bytes(), sc.span_id().to_bytes());
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
pub(crate) fn write_ids<S>(
    _: &Formatter,
    _: &mut Vec<u8>,
    _: &Event<'_>,
    _: &Context<'_, S>,
    _: Style,
) where
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
