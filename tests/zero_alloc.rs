//! Zero heap allocations per event in steady state: events whose fields are integers,
//! floats, bools and `&str` are formatted and queued without touching the allocator, in
//! every format and with every option on (fmt's options, renamed keys, static fields). A
//! counting global allocator (one per test binary, hence a file of its own) counts every
//! allocation of the process, the writer thread's included, while 100,000 events are logged.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_filesink::{Builder, FileSink, Format};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds
// `GlobalAlloc`'s contract; the counter is a plain atomic add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM_UP: u64 = 20_000;
const EVENTS: u64 = 100_000;
/// Allocations tolerated over the measured events, whatever their number: the writer's
/// once-a-second check of the active file, a buffer that grows once more.
const BUDGET: u64 = 64;

fn log(from: u64, to: u64) {
    for i in from..to {
        tracing::info!(
            id = i,
            delta = -(i as i64),
            ratio = i as f64 / 7.0,
            even = i % 2 == 0,
            user = "alice",
            "request handled"
        );
    }
}

fn log_in_span(from: u64, to: u64) {
    let span = tracing::info_span!("request", method = "GET", n = 3u64);
    let _entered = span.enter();
    for i in from..to {
        tracing::info!(
            id = i,
            delta = -(i as i64),
            ratio = i as f64 / 7.0,
            even = i % 2 == 0,
            user = "alice",
            kind = ?Some(i % 3),
            "request handled"
        );
    }
}

/// Allocations while logging `EVENTS` events through a sink built by `b`, after a warm-up.
fn measure(b: Builder, events: fn(u64, u64)) -> u64 {
    let (layer, guard) = b.build().unwrap();
    let dispatch = common::dispatch(layer);
    let allocations = tracing::dispatcher::with_default(&dispatch, || {
        events(0, WARM_UP);
        guard.flush().unwrap();
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        events(WARM_UP, WARM_UP + EVENTS);
        ALLOCATIONS.load(Ordering::SeqCst) - before
    });
    guard.flush().unwrap();
    allocations
}

/// One test, so that no other test's allocations are counted: the default sink, then every
/// format with every option on.
#[test]
fn steady_state_logging_allocates_nothing_per_event() {
    let tmp = tempfile::tempdir().unwrap();
    let allocations = measure(FileSink::builder(tmp.path(), "app"), log);
    // The events were really logged, all of them, in order.
    let bytes = std::fs::read(common::active(tmp.path(), "app")).unwrap();
    let lines = common::lines(&bytes, "app.log");
    assert_eq!(lines.len() as u64, WARM_UP + EVENTS);
    for (i, line) in lines.iter().enumerate() {
        let v = common::json(line);
        assert_eq!(v["fields"]["id"], i as u64, "{line}");
        assert_eq!(v["fields"]["user"], "alice", "{line}");
    }
    assert!(
        allocations <= BUDGET,
        "{allocations} allocations while logging {EVENTS} events (budget {BUDGET})"
    );

    for format in [Format::Json, Format::Text, Format::Compact, Format::Logfmt] {
        let tmp = tempfile::tempdir().unwrap();
        // Lines of 300-400 bytes: a release build outruns the writer and grows the queue's
        // reusable chunk buffers (64 KiB each, up to half of `queue_bytes`) past the warm-up.
        // That is per chunk, not per event; a smaller queue bounds it so what is measured is
        // the formatting.
        let mut b = FileSink::builder(tmp.path(), "app")
            .queue_bytes(4 << 20)
            .format(format)
            .with_file(true)
            .with_line_number(true)
            .with_thread_ids(true)
            .with_thread_names(true)
            .static_field("service", "checkout")
            .static_field("version", "1.4.2");
        if format == Format::Json {
            b = b.flatten_event(true);
        }
        if matches!(format, Format::Json | Format::Logfmt) {
            b = b
                .rename_key("timestamp", "@timestamp")
                .rename_key("level", "log.level")
                .rename_key("message", "msg");
        }
        let allocations = measure(b, log_in_span);
        let bytes = std::fs::read(common::active(tmp.path(), "app")).unwrap();
        let lines = common::lines(&bytes, "app.log");
        assert_eq!(lines.len() as u64, WARM_UP + EVENTS, "{format:?}");
        assert!(lines[0].contains("checkout"), "{format:?}: {}", lines[0]);
        assert!(
            allocations <= BUDGET,
            "{format:?}: {allocations} allocations while logging {EVENTS} events with every \
             option on (budget {BUDGET})"
        );
    }

    // OpenTelemetry ids: a tracing-opentelemetry layer with an SDK tracer in the same
    // subscriber, seeing spans only (it records every event it sees as a span event, which
    // allocates on its side, not the sink's).
    #[cfg(feature = "opentelemetry")]
    {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::filter::filter_fn;
        use tracing_subscriber::prelude::*;
        let tmp = tempfile::tempdir().unwrap();
        let (layer, guard) = FileSink::builder(tmp.path(), "app")
            .queue_bytes(4 << 20)
            .with_opentelemetry_ids(true)
            .build()
            .unwrap();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("zero_alloc"))
            .with_filter(filter_fn(|m| m.is_span()));
        let dispatch =
            tracing::Dispatch::new(tracing_subscriber::registry().with(otel).with(layer));
        let allocations = tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("request");
            let _entered = span.enter();
            log(0, WARM_UP);
            guard.flush().unwrap();
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            log(WARM_UP, WARM_UP + EVENTS);
            ALLOCATIONS.load(Ordering::SeqCst) - before
        });
        guard.flush().unwrap();
        let bytes = std::fs::read(common::active(tmp.path(), "app")).unwrap();
        let lines = common::lines(&bytes, "app.log");
        assert_eq!(lines.len() as u64, WARM_UP + EVENTS);
        assert_eq!(
            common::json(&lines[0])["trace_id"].as_str().map(str::len),
            Some(32)
        );
        assert!(
            allocations <= BUDGET,
            "{allocations} allocations while logging {EVENTS} events with OpenTelemetry ids \
             (budget {BUDGET})"
        );
    }
}
