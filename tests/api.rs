//! The public surface: thread-safety promises, per-layer filters, `build_writer`, `Debug`.

use tracing::level_filters::LevelFilter;
use tracing_filesink::{
    Builder, Compression, Error, FileSink, FileSinkGuard, FileSinkLayer, FileSinkWriter, Format,
    Fsync, Overflow, Retention, Rotation, Stats, TimeFormat, TimeZone,
};
use tracing_subscriber::prelude::*;

#[test]
fn promised_auto_traits() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<FileSinkLayer>();
    send_sync::<FileSinkGuard>();
    send_sync::<FileSinkWriter>();
    send_sync::<Error>();
    send_sync::<Stats>();
    send_sync::<Builder>();
}

#[test]
fn every_public_type_is_debug() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(dir.path(), "app").build().unwrap();
    // Each Debug output names what it shows, so a log of the configuration is useful.
    for (s, shows) in [
        (format!("{layer:?}"), "Json"),
        (format!("{guard:?}"), "app.log"),
        (format!("{:?}", guard.stats()), "records_written"),
        (
            format!("{:?}", FileSink::builder(dir.path(), "x")),
            "stem: \"x\"",
        ),
        (
            format!("{:?}", Rotation::size(1).or(Rotation::daily())),
            "Some(1)",
        ),
        (
            format!("{:?}", Retention::files(3).max_bytes(10)),
            "Some(10)",
        ),
        (format!("{:?}", Compression::gzip().level(9)), "Some(9)"),
        (
            format!(
                "{:?}",
                Overflow::BlockFor(std::time::Duration::from_millis(5))
            ),
            "5ms",
        ),
        (
            format!("{:?}", Fsync::OnLevel(tracing::Level::ERROR)),
            "Error",
        ),
        (format!("{:?}", Format::Text), "Text"),
        (format!("{:?}", TimeZone::fixed(3600)), "3600"),
        (format!("{:?}", TimeFormat::custom("%F")), "%F"),
    ] {
        assert!(s.contains(shows), "{s:?} should show {shows:?}");
    }
}

/// Events a per-layer filter rejects never reach the sink; accepted ones all do.
#[test]
fn per_layer_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(dir.path(), "app").build().unwrap();
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(LevelFilter::WARN));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..100 {
            tracing::info!(i, "filtered out");
            tracing::warn!(i, "kept");
            tracing::debug!(i, "filtered out");
        }
    });
    guard.flush().unwrap();
    let text = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 100);
    assert!(lines.iter().all(|l| l.contains("\"level\":\"WARN\"")));
    assert_eq!(guard.stats().records_written, 100);
}

/// `build_writer()` under `fmt::layer()`: each event one record, written in order.
#[test]
fn fmt_layer_over_build_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = FileSink::builder(dir.path(), "app").build_writer().unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..1000u64 {
            tracing::info!(i, "via fmt");
        }
    });
    guard.flush().unwrap();
    let text = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
    let got: Vec<u64> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["fields"]["i"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

/// `wait_idle` returns once every finished segment due for compression is compressed.
#[test]
fn wait_idle_waits_for_compression_and_retention() {
    use tracing_filesink::{Compression, Retention, Rotation};
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(dir.path(), "app")
        .rotation(Rotation::size(16 << 10))
        .compression(Compression::gzip())
        .compress_after(1)
        .retention(Retention::files(6))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..3000u64 {
            tracing::info!(i, pad = "some padding to fill segments faster", "event");
        }
    });
    guard.wait_idle(std::time::Duration::from_secs(60)).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("app.0"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    let (last, older) = names.split_last().unwrap();
    assert!(last.ends_with(".log"), "the newest stays plain: {names:?}");
    assert!(older.iter().all(|n| n.ends_with(".log.gz")), "{names:?}");
    let stats = guard.stats();
    assert_eq!(stats.compression_backlog, 0);
    assert!(stats.segments_pruned > 0 && stats.segments_compressed >= 5);
}
