//! No builder value may panic, at build time or later: arbitrary settings (durations up to
//! `Duration::MAX`, sizes up to `u64::MAX`, zero, empty and odd stems) either build or give a
//! clear error naming the setting, and a sink that builds then logs, flushes, rotates and
//! shuts down without panicking or hanging.

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use tracing_filesink::{
    Compression, ErrorKind, FileSink, Format, Fsync, Overflow, Retention, Rotation, TimeFormat,
    TimeZone,
};
use tracing_subscriber::prelude::*;

/// Durations across the whole range, edges included.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_millis(1)),
        Just(Duration::from_secs(1)),
        Just(Duration::from_secs(3600)),
        Just(Duration::from_secs(200 * 365 * 86_400)),
        Just(Duration::MAX),
        (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..10_000).prop_map(Duration::from_millis),
    ]
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(usize::MAX as u64),
        1u64..(1 << 20),
        any::<u64>(),
    ]
}

fn stem() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => "[a-z][a-z0-9_-]{0,11}",
        1 => Just(String::new()),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just(".hidden".to_owned()),
        1 => Just("a/b".to_owned()),
        1 => Just("nul\0".to_owned()),
        1 => Just("x".repeat(300)),
        1 => "\\PC{1,20}",
    ]
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::Block),
        Just(Overflow::Drop),
        duration().prop_map(Overflow::BlockFor),
    ]
}

fn rotation() -> impl Strategy<Value = Rotation> {
    prop_oneof![
        3 => Just(Rotation::never()),
        1 => Just(Rotation::daily()),
        1 => Just(Rotation::minutely()),
        1 => size().prop_map(Rotation::size),
        3 => (1u64..(1 << 20)).prop_map(Rotation::size),
        1 => duration().prop_map(Rotation::every),
        3 => (1u64..100_000).prop_map(|s| Rotation::every(Duration::from_secs(s))),
        1 => (size(), duration()).prop_map(|(s, d)| Rotation::size(s).or(Rotation::every(d))),
    ]
}

fn retention() -> impl Strategy<Value = Retention> {
    prop_oneof![
        Just(Retention::keep_all()),
        (0usize..5).prop_map(Retention::files),
        Just(Retention::files(usize::MAX)),
        size().prop_map(|b| Retention::keep_all().max_bytes(b)),
        duration().prop_map(|d| Retention::keep_all().max_age(d)),
        size().prop_map(|b| Retention::keep_all().min_free_bytes(b)),
    ]
}

fn fsync() -> impl Strategy<Value = Fsync> {
    prop_oneof![
        3 => Just(Fsync::Never),
        1 => Just(Fsync::Always),
        1 => Just(Fsync::OnLevel(tracing::Level::WARN)),
        2 => duration().prop_map(Fsync::Every),
    ]
}

#[derive(Debug, Clone)]
struct Settings {
    stem: String,
    overflow: Overflow,
    queue_capacity: usize,
    queue_bytes: usize,
    shutdown_timeout: Duration,
    stall_timeout: Duration,
    rotation: Rotation,
    rotate_on_startup: bool,
    compression: Compression,
    compress_after: usize,
    retention: Retention,
    fsync: Fsync,
    time_zone: TimeZone,
    text: bool,
    file_mode: u32,
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        (
            stem(),
            overflow(),
            prop_oneof![9 => 1u64..100_000, 1 => size()],
            prop_oneof![9 => 1u64..(256 << 20), 1 => size()],
            duration(),
            duration(),
        ),
        (
            rotation(),
            any::<bool>(),
            prop_oneof![9 => 0u32..10, 1 => any::<u32>()],
            size(),
            retention(),
            fsync(),
        ),
        (
            prop_oneof![9 => -50_000i32..50_000, 1 => any::<i32>()],
            any::<bool>(),
            prop_oneof![9 => Just(0o600u32), 1 => any::<u32>()],
        ),
    )
        .prop_map(
            |(
                (stem, overflow, cap, bytes, shutdown_timeout, stall_timeout),
                (rotation, rotate_on_startup, level, compress_after, retention, fsync),
                (offset, text, file_mode),
            )| Settings {
                stem,
                overflow,
                queue_capacity: usize::try_from(cap).unwrap_or(usize::MAX),
                queue_bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
                shutdown_timeout,
                stall_timeout,
                rotation,
                rotate_on_startup,
                compression: if level == 0 {
                    Compression::none()
                } else {
                    Compression::gzip().level(level)
                },
                compress_after: usize::try_from(compress_after).unwrap_or(usize::MAX),
                retention,
                fsync,
                time_zone: TimeZone::fixed(offset),
                text,
                file_mode,
            },
        )
}

/// Sinks that built: the strategies must give many, or the property says little.
static BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Builds with `s`, and if that works logs, flushes, rotates and shuts down. Returns a
/// description of anything wrong.
fn exercise(s: Settings) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let built = FileSink::builder(tmp.path(), s.stem.clone())
        .format(if s.text { Format::Text } else { Format::Json })
        .overflow(s.overflow)
        .queue_capacity(s.queue_capacity)
        .queue_bytes(s.queue_bytes)
        .shutdown_timeout(s.shutdown_timeout)
        .stall_timeout(s.stall_timeout)
        .rotation(s.rotation.clone())
        .rotate_on_startup(s.rotate_on_startup)
        .compression(s.compression)
        .compress_after(s.compress_after)
        .retention(s.retention)
        .fsync(s.fsync)
        .time_zone(s.time_zone)
        .time_format(TimeFormat::rfc3339_millis())
        .file_mode(s.file_mode)
        .build();
    let (layer, guard) = match built {
        Ok(x) => {
            BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            x
        }
        Err(e) => {
            // A clear error: it names the setting, or the path it could not use.
            let clear = match e.kind() {
                ErrorKind::InvalidConfig => e.setting().is_some(),
                ErrorKind::Io | ErrorKind::Symlink => e.path().is_some(),
                _ => false,
            };
            return if clear && !e.to_string().is_empty() {
                Ok(())
            } else {
                Err(format!("unclear error from build(): {e:?}"))
            };
        }
    };
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..50u32 {
            tracing::info!(i, pad = "0123456789abcdef0123456789abcdef", "event");
        }
        tracing::warn!("a warning");
    });
    // Any of these may fail (a zero timeout, a tiny queue); none may panic or hang.
    let _ = guard.flush();
    let _ = guard.rotate();
    let _ = guard.sync();
    let _ = guard.stats();
    let _ = guard.shutdown(Duration::from_secs(10));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("after shutdown"));
    drop(guard);
    Ok(())
}

#[test]
fn no_setting_panics_or_hangs() {
    properties();
    let built = BUILT.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        built >= 16,
        "only {built} of the generated settings built a sink"
    );
    eprintln!("{built} sinks built and exercised");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    fn properties(s in settings()) {
        let (tx, rx) = mpsc::channel();
        let shown = format!("{s:?}");
        std::thread::spawn(move || {
            let res = std::panic::catch_unwind(|| exercise(s))
                .unwrap_or_else(|_| Err("panicked".to_owned()));
            let _ = tx.send(res);
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(res) => prop_assert!(res.is_ok(), "{}: {}", res.unwrap_err(), shown),
            Err(_) => prop_assert!(false, "hung: {}", shown),
        }
    }
}

/// The values that used to panic, each on its own.
#[test]
fn known_panicking_values_are_refused_or_saturated() {
    let tmp = tempfile::tempdir().unwrap();
    let err = FileSink::builder(tmp.path(), "every")
        .rotation(Rotation::every(Duration::MAX))
        .build()
        .expect_err("a period longer than a century is refused");
    assert_eq!(err.setting(), Some("rotation"), "{err}");
    let err = FileSink::builder(tmp.path(), "cap")
        .queue_capacity(usize::MAX)
        .build()
        .expect_err("a queue that cannot be allocated is refused");
    assert_eq!(err.setting(), Some("queue_capacity"), "{err}");
    // Saturated, not refused: "wait without limit" is a meaningful request.
    let (layer, guard) = FileSink::builder(tmp.path(), "max")
        .overflow(Overflow::BlockFor(Duration::MAX))
        .shutdown_timeout(Duration::MAX)
        .stall_timeout(Duration::MAX)
        .fsync(Fsync::Every(Duration::MAX))
        .retention(Retention::keep_all().max_age(Duration::MAX))
        .queue_capacity(1)
        .build()
        .expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..100 {
            tracing::info!(i, "saturated");
        }
    });
    guard.flush().expect("flush");
    guard.sync().expect("sync");
    guard.rotate().expect("rotate");
    guard.shutdown(Duration::MAX).expect("shutdown");
    // A planted segment numbered u64::MAX: the next number would overflow.
    let dir = tmp.path().join("planted");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("app.18446744073709551615.2026-01-01T00-00-00Z.log"),
        b"{}\n",
    )
    .unwrap();
    let (layer, guard) = FileSink::builder(&dir, "app").build().expect("build");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("after the last number"));
    let _ = guard.rotate();
    guard.flush().expect("flush");
    let _ = guard.shutdown(Duration::from_secs(10));
}
