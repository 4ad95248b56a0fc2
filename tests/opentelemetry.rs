//! OpenTelemetry ids on records (`with_opentelemetry_ids`, feature `opentelemetry`): a real
//! `tracing-opentelemetry` layer with an SDK tracer sits in the same subscriber as the sink,
//! and every record logged in a span carries that span's `trace_id` and `span_id` exactly as
//! the exporter received them.

mod common;

use std::collections::BTreeMap;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_filesink::{FileSink, Format};
use tracing_subscriber::prelude::*;

/// Logs through the sink (built by `b`) and an OpenTelemetry layer; returns the sink's lines
/// and the exported spans' (trace id, span id) by span name, in lowercase hex.
fn run(
    b: impl FnOnce(tracing_filesink::Builder) -> tracing_filesink::Builder,
    otel: bool,
) -> (Vec<String>, BTreeMap<String, (String, String)>) {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = b(FileSink::builder(tmp.path(), "app").with_opentelemetry_ids(true))
        .build()
        .unwrap();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let otel_layer =
        otel.then(|| tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let subscriber = tracing_subscriber::registry().with(otel_layer).with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before any span");
        let request = tracing::info_span!("request", id = 7);
        request.in_scope(|| {
            tracing::info!("in request");
            let db = tracing::info_span!("db");
            db.in_scope(|| tracing::info!("in db"));
            tracing::info!("back in request");
        });
        tracing::info!(parent: &request, "explicit parent, not entered");
        drop(request);
        tracing::info!("after every span");
    });
    guard.flush().unwrap();
    provider.force_flush().unwrap();
    let spans = exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.name.to_string(),
                (
                    s.span_context.trace_id().to_string(),
                    s.span_context.span_id().to_string(),
                ),
            )
        })
        .collect();
    let lines = common::lines(&common::read_active(tmp.path(), "app"), "app.log");
    (lines, spans)
}

#[test]
fn json_records_carry_the_exported_span_ids() {
    let (lines, spans) = run(|b| b, true);
    assert_eq!(spans.len(), 2, "{spans:?}");
    let (trace, request) = &spans["request"];
    let (db_trace, db) = &spans["db"];
    assert_eq!(trace, db_trace, "one trace");
    assert_eq!(trace.len(), 32);
    assert_eq!(request.len(), 16);
    let ids: Vec<(Option<String>, Option<String>)> = lines
        .iter()
        .map(|l| {
            let v = common::json(l);
            let s = |k: &str| v[k].as_str().map(str::to_string);
            (s("trace_id"), s("span_id"))
        })
        .collect();
    let some = |t: &str, s: &str| (Some(t.to_string()), Some(s.to_string()));
    assert_eq!(
        ids,
        [
            (None, None),
            some(trace, request),
            some(trace, db),
            some(trace, request),
            some(trace, request),
            (None, None),
        ],
        "{lines:#?}"
    );
    // The ids come after fmt's keys.
    let keys: Vec<String> = common::json(&lines[1])
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(keys.contains(&"spans".to_string()), "{keys:?}");
}

#[test]
fn key_value_layouts_carry_the_ids_too() {
    for format in [Format::Logfmt, Format::Text, Format::Compact] {
        let (lines, spans) = run(|b| b.format(format), true);
        let (trace, db) = &spans["db"];
        assert!(
            lines[2].ends_with(&format!(" trace_id={trace} span_id={db}")),
            "{format:?}: {}",
            lines[2]
        );
        assert!(!lines[0].contains("trace_id"), "{}", lines[0]);
    }
}

/// Without a tracing-opentelemetry layer there is nothing to read: no ids, no error.
#[test]
fn without_an_opentelemetry_layer_records_have_no_ids() {
    let (lines, spans) = run(|b| b, false);
    assert!(spans.is_empty());
    assert_eq!(lines.len(), 6);
    assert!(lines.iter().all(|l| !l.contains("trace_id")), "{lines:#?}");
}
