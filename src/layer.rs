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

use crate::backtrace::BacktraceFilter;
use crate::config::Config;
use crate::format::{Formatter, SinkId, Timed};
use crate::guard::Users;
use crate::limit::Verdict;
use crate::queue::{Put, Queue};

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
/// (`layer.with_filter(LevelFilter::INFO)`), and events a filter rejects never reach it
/// (except through [`backtrace_filter`](FileSinkLayer::backtrace_filter), for a
/// [`Backtrace`](crate::Backtrace)).
pub struct FileSinkLayer {
    fmt: Formatter,
    queue: Arc<Queue>,
    urgent: Option<Level>,
    /// Shedding, rate limits or the backtrace, when any is on: one branch on the logging
    /// path when all are off.
    pressure: Option<Box<Pressure>>,
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

/// The settings of the mechanisms that keep what matters under pressure.
#[derive(Debug)]
struct Pressure {
    /// Events less severe than this level are shed above this fill (percent).
    shed: Option<(Level, u8)>,
    /// Records kept per thread, and the lowest level kept.
    backtrace: Option<(usize, Level)>,
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
        let shed = cfg.shedding.threshold();
        let backtrace = cfg.backtrace.keep();
        let pressure = (shed.is_some() || backtrace.is_some() || queue.limits.is_some())
            .then(|| Box::new(Pressure { shed, backtrace }));
        FileSinkLayer {
            fmt: cfg.formatter.clone(),
            urgent: cfg.urgent_level(),
            pressure,
            queue,
            _users: users,
        }
    }

    /// Wraps the sink's per-layer filter for a [`Backtrace`](crate::Backtrace): the sink
    /// then also sees the events `filter` rejects at the backtrace's levels, and keeps each
    /// thread's last ones for its next ERROR. With the backtrace off, the wrapper is
    /// `filter` itself.
    ///
    /// ```
    /// use tracing::level_filters::LevelFilter;
    /// use tracing_filesink::{Backtrace, FileSink};
    /// use tracing_subscriber::prelude::*;
    /// # let tmp = tempfile::tempdir()?;
    /// let (layer, guard) = FileSink::builder(tmp.path(), "app")
    ///     .backtrace(Backtrace::last(32))
    ///     .build()?;
    /// let filter = layer.backtrace_filter(LevelFilter::INFO);
    /// let subscriber = tracing_subscriber::registry().with(layer.with_filter(filter));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::debug!("kept in memory");
    ///     tracing::error!("written after the DEBUG above");
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backtrace_filter<F>(&self, filter: F) -> BacktraceFilter<F> {
        let from = self
            .pressure
            .as_ref()
            .and_then(|p| p.backtrace)
            .map(|(_, l)| l);
        BacktraceFilter::new(filter, self.fmt.sink, from)
    }

    /// Formats `event` into the thread's buffer (a fresh one when re-entered from a `Debug`
    /// impl that logs) and hands the record to `then`.
    #[inline]
    fn with_record<S>(
        &self,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
        then: impl FnOnce(&[u8], Option<usize>),
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut then = Some(then);
        let done = BUF
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => {
                    let time_at = self.format_into(&mut buf, event, ctx);
                    if let Some(then) = then.take() {
                        then(&buf, time_at);
                    }
                    if buf.capacity() > KEEP_CAPACITY {
                        buf.clear();
                        buf.shrink_to(KEEP_CAPACITY / 16);
                    }
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        if let (false, Some(then)) = (done, then) {
            let mut buf = Vec::with_capacity(256);
            let time_at = self.format_into(&mut buf, event, ctx);
            then(&buf, time_at);
        }
    }

    /// Shedding, rate limit and backtrace: false when the event goes no further. May make
    /// `put` never wait, and writes the thread's backtrace before an ERROR.
    fn admit<S>(&self, p: &Pressure, event: &Event<'_>, ctx: &Context<'_, S>, put: &mut Put) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = event.metadata();
        let level = *meta.level();
        if let Some((keep, _)) = p.backtrace {
            if crate::backtrace::rejected(self.fmt.sink, meta) {
                self.with_record(event, ctx, |buf, time_at| {
                    crate::backtrace::keep(&self.queue, &self.fmt, keep, buf, time_at, level);
                });
                return false;
            }
        }
        if let Some(limits) = &self.queue.limits {
            match limits.check(meta, crate::clock::mono_now()) {
                Verdict::Pass => {}
                Verdict::PassAfter(n) => self.report_suppressed(meta, n),
                Verdict::Suppress => {
                    self.queue
                        .counters
                        .rate_limited
                        .fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            }
        }
        if let Some((keep_from, percent)) = p.shed {
            // Less severe than `keep_from` (tracing orders TRACE above ERROR).
            if level > keep_from {
                if self.queue.fuller_than(percent) {
                    self.queue.shed_below_level(level);
                    return false;
                }
                put.may_wait = false;
            }
        }
        if level == Level::ERROR && p.backtrace.is_some() {
            crate::backtrace::write_before_error(&self.queue);
        }
        true
    }

    /// The record of a callsite's events the rate limit suppressed, before its next event.
    #[cold]
    fn report_suppressed(&self, meta: &tracing::Metadata<'_>, n: u64) {
        let Some(limits) = &self.queue.limits else {
            return;
        };
        let interval_ms = u64::try_from(limits.interval().as_millis()).unwrap_or(u64::MAX);
        let mut body = Vec::with_capacity(256);
        let time_at = self.fmt.internal_body(
            &mut body,
            Level::WARN,
            &crate::limit::message(meta),
            &[("suppressed", n), ("interval_ms", interval_ms)],
        );
        self.queue
            .log(Timed::new(&body, time_at), Put::event(Level::WARN, false));
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
        let level = *event.metadata().level();
        let mut put = Put::event(level, self.urgent.is_some_and(|l| level <= l));
        if let Some(p) = &self.pressure {
            if !self.admit(p, event, &ctx, &mut put) {
                return;
            }
        }
        self.with_record(event, &ctx, |buf, time_at| {
            self.queue.log(Timed::new(buf, time_at), put);
        });
    }
}
