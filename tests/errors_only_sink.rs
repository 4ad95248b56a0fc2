//! The README's errors-only sink: a per-layer filter that passes every span but only ERROR
//! events keeps each record's span context, which a plain `LevelFilter::ERROR` loses (the
//! layer never sees the INFO span the error happened in).

mod common;

use tracing::{Level, Metadata};
use tracing_filesink::FileSink;
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::prelude::*;

#[test]
fn the_readme_filter_keeps_span_context() {
    let tmp = tempfile::tempdir().unwrap();
    let (spans_kept, kept_guard) = FileSink::builder(tmp.path(), "kept").build().unwrap();
    let (level_only, level_guard) = FileSink::builder(tmp.path(), "level").build().unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(spans_kept.with_filter(filter_fn(|m: &Metadata<'_>| {
            m.is_span() || *m.level() <= Level::ERROR
        })))
        .with(level_only.with_filter(LevelFilter::ERROR));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", id = 7);
        let _entered = span.enter();
        tracing::info!("not an error");
        tracing::error!("failed");
    });
    kept_guard.flush().unwrap();
    level_guard.flush().unwrap();

    let kept = common::lines(&common::read_active(tmp.path(), "kept"), "kept");
    assert_eq!(kept.len(), 1, "{kept:?}");
    let record = common::json(&kept[0]);
    assert_eq!(record["fields"]["message"], "failed");
    assert_eq!(record["span"]["name"], "request", "{record}");
    assert_eq!(record["span"]["id"], 7, "{record}");
    assert_eq!(record["spans"][0]["name"], "request", "{record}");

    // What LevelFilter::ERROR alone writes: the error, without the span it happened in.
    let level = common::lines(&common::read_active(tmp.path(), "level"), "level");
    assert_eq!(level.len(), 1, "{level:?}");
    assert!(
        common::json(&level[0]).get("span").is_none(),
        "{}",
        level[0]
    );
}
