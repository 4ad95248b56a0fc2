//! The tracing `Layer`: format on the calling thread, append to the thread's open chunk,
//! return.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::Config;
use crate::format::{Formatter, SinkId, Timed};
use crate::guard::Users;
use crate::queue::Queue;

/// Formats exactly like [`FileSinkLayer`] and discards the bytes: the formatting floor that
/// `benches/compare.rs` compares against. Not part of the supported API.
#[doc(hidden)]
#[derive(Debug)]
pub struct FormatOnlyLayer {
    fmt: Formatter,
}

#[doc(hidden)]
pub fn format_only_layer() -> FormatOnlyLayer {
    let fmt = Formatter {
        format: crate::Format::Json,
        timestamper: crate::format::timestamp::Timestamper::new(
            crate::TimeZone::Utc,
            &crate::TimeFormat::rfc3339_micros(),
        ),
        clock: crate::clock::Clock::System,
        sink: SinkId::next(),
        options: Default::default(),
    };
    FormatOnlyLayer { fmt }
}

/// As [`format_only_layer`], with the format and options of `builder`.
#[doc(hidden)]
pub fn format_only_layer_for(builder: crate::Builder) -> Result<FormatOnlyLayer, crate::Error> {
    Ok(FormatOnlyLayer {
        fmt: builder.validate()?.formatter,
    })
}

impl<S> Layer<S> for FormatOnlyLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.fmt.register_dispatch(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let fields = self.fmt.new_span_fields(attrs);
            self.fmt.store_span(&mut span.extensions_mut(), fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let _ = BUF.try_with(|cell| {
            if let Ok(mut buf) = cell.try_borrow_mut() {
                buf.clear();
                let time_at = self.fmt.format_event(&mut buf, event, &ctx);
                // The sink's own second step, without its lock: the stamp, and the copy with
                // the time written in.
                let _ = OUT.try_with(|out| {
                    if let Ok(mut out) = out.try_borrow_mut() {
                        out.clear();
                        let stamp = self.fmt.clock.stamp(0);
                        Timed::new(&buf, time_at).write(&self.fmt, &mut out, stamp.wall);
                        std::hint::black_box(out.as_slice());
                    }
                });
            }
        });
    }
}

/// The [`Layer`] that writes events to the sink. `Send + Sync`; works with per-layer filters
/// (`layer.with_filter(LevelFilter::INFO)`), and events a filter rejects never reach it.
pub struct FileSinkLayer {
    fmt: Formatter,
    queue: Arc<Queue>,
    urgent: Option<Level>,
    /// Keeps the sink running while this layer lives, even if the guard is dropped.
    _users: Arc<Users>,
}

impl std::fmt::Debug for FileSinkLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSinkLayer")
            .field("format", &self.fmt.format)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Records are built here and copied out, so a thread formats into warm memory.
const KEEP_CAPACITY: usize = 64 * 1024;

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
    /// The format-only layer's stand-in for a chunk.
    static OUT: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

impl FileSinkLayer {
    pub(crate) fn new(cfg: Arc<Config>, queue: Arc<Queue>, users: Arc<Users>) -> FileSinkLayer {
        FileSinkLayer {
            fmt: cfg.formatter.clone(),
            urgent: cfg.urgent_level(),
            queue,
            _users: users,
        }
    }

    /// Formats `event` into `buf` and returns where its timestamp goes.
    fn format_into<S>(
        &self,
        buf: &mut Vec<u8>,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
    ) -> Option<usize>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        buf.clear();
        // A user's Debug impl may panic; the application must not die of logging.
        match catch_unwind(AssertUnwindSafe(|| self.fmt.format_event(buf, event, ctx))) {
            Ok(time_at) => time_at,
            Err(_) => {
                buf.clear();
                self.queue
                    .counters
                    .format_errors
                    .fetch_add(1, Ordering::Relaxed);
                self.fmt.internal_body(
                    buf,
                    *event.metadata().level(),
                    "event formatting panicked",
                    &[],
                )
            }
        }
    }
}

impl<S> Layer<S> for FileSinkLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        // OpenTelemetry ids are read through the subscriber (see format/otel.rs).
        self.fmt.register_dispatch(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let fields = catch_unwind(AssertUnwindSafe(|| self.fmt.new_span_fields(attrs)))
                .unwrap_or_default();
            self.fmt.store_span(&mut span.extensions_mut(), fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            let _ = catch_unwind(AssertUnwindSafe(|| self.fmt.record_in(&mut ext, values)));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let urgent = self.urgent.is_some_and(|l| *event.metadata().level() <= l);
        let done = BUF
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => {
                    let time_at = self.format_into(&mut buf, event, &ctx);
                    self.queue.log(Timed::new(&buf, time_at), urgent);
                    if buf.capacity() > KEEP_CAPACITY {
                        buf.clear();
                        buf.shrink_to(KEEP_CAPACITY / 16);
                    }
                    true
                }
                // Re-entered from a Debug impl that logs: format into a fresh buffer.
                Err(_) => false,
            })
            .unwrap_or(false);
        if !done {
            let mut buf = Vec::with_capacity(256);
            let time_at = self.format_into(&mut buf, event, &ctx);
            self.queue.log(Timed::new(&buf, time_at), urgent);
        }
    }
}
