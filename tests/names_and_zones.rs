//! File names with another extension (`file_extension("jsonl")`) through the whole life of
//! a segment (rotation, compression, retention, restart, reading back), and IANA time zones
//! for timestamps, segment names and daily boundaries across daylight-saving changes.

mod common;

use std::path::Path;
use std::time::Duration;

use tracing_filesink::read::LogDir;
use tracing_filesink::{Compression, FileSink, Retention, Rotation};

/// Every file name in `dir` but the lock file, sorted.
fn names(dir: &Path) -> Vec<String> {
    common::file_names(dir)
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

fn log(from: u64, to: u64) {
    for i in from..to {
        tracing::info!(i, "a line long enough to fill a few small segments quickly");
    }
}

#[test]
fn another_extension_through_rotation_compression_retention_restart_and_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let build = || {
        FileSink::builder(dir, "app")
            .file_extension("jsonl")
            .rotation(Rotation::size(4096))
            .compression(Compression::gzip())
            .compress_after(1)
            .retention(Retention::files(4))
            .build()
            .unwrap()
    };
    let (layer, guard) = build();
    tracing::dispatcher::with_default(&common::dispatch(layer), || log(0, 200));
    guard.flush().unwrap();
    guard.wait_idle(Duration::from_secs(60)).unwrap();
    drop(guard);

    let files = names(dir);
    assert!(files.contains(&"app.jsonl".to_string()), "{files:?}");
    assert!(common::file_names(dir).contains(&"app.jsonl.lock".to_string()));
    assert!(files.iter().all(|n| !n.contains(".log")), "{files:?}");
    let segments: Vec<&String> = files.iter().filter(|n| *n != "app.jsonl").collect();
    // Retention kept four, compression left the newest plain.
    assert_eq!(segments.len(), 4, "{files:?}");
    assert!(
        segments[..3].iter().all(|n| n.ends_with(".jsonl.gz")),
        "{files:?}"
    );
    assert!(segments[3].ends_with(".jsonl"), "{files:?}");
    for n in &segments {
        let base = n.trim_end_matches(".gz").trim_end_matches(".jsonl");
        let (seq, label) = base.strip_prefix("app.").unwrap().split_once('.').unwrap();
        assert_eq!(seq.len(), 10, "{n}");
        assert_eq!(label.len(), 16, "{n}");
    }
    let last_seq = |files: &[String]| {
        files
            .iter()
            .filter_map(|n| {
                n.strip_prefix("app.")?
                    .split_once('.')?
                    .0
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap()
    };
    let before = last_seq(&files);

    // A restart finds them: numbering goes on, and everything reads back in order.
    let (layer, guard) = build();
    guard.rotate().unwrap();
    tracing::dispatcher::with_default(&common::dispatch(layer), || log(200, 210));
    guard.flush().unwrap();
    guard.wait_idle(Duration::from_secs(60)).unwrap();
    let files = names(dir);
    assert!(last_seq(&files) > before, "{files:?}");

    let logs = LogDir::open(dir, "app").unwrap().with_extension("jsonl");
    let read: Vec<u64> = logs
        .lines()
        .unwrap()
        .map(|l| {
            let l = l.unwrap().to_string();
            common::json(&l)["fields"]["i"].as_u64().unwrap()
        })
        .collect();
    assert!(read.len() > 20, "{}", read.len());
    assert_eq!(*read.last().unwrap(), 209);
    assert!(
        read.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, none lost: {read:?}"
    );
    assert_eq!(LogDir::stems_with_extension(dir, "jsonl").unwrap(), ["app"]);
    // The `.log` reader sees nothing of them.
    assert_eq!(
        LogDir::open(dir, "app").unwrap().segments().unwrap().len(),
        0
    );
}

#[test]
fn extensions_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in [
        "", ".jsonl", "js on", "gz", "pending", "lock", "tmp", "unsynced", "a/b",
    ] {
        let e = FileSink::builder(tmp.path(), "app")
            .file_extension(bad)
            .build()
            .expect_err(bad);
        assert_eq!(e.setting(), Some("file_extension"), "{bad:?}: {e}");
    }
    let e = FileSink::builder(tmp.path(), "app.jsonl")
        .file_extension("jsonl")
        .build()
        .unwrap_err();
    assert_eq!(e.setting(), Some("stem"), "{e}");
    // `app.log` is a fine stem for `.jsonl` files.
    let (_layer, guard) = FileSink::builder(tmp.path(), "app.log")
        .file_extension("jsonl")
        .build()
        .unwrap();
    assert!(guard.active_path().ends_with("app.log.jsonl"));
}

/// Europe/Paris through its 23-hour day (2026-03-29): records carry the offset in force,
/// daily rotation happens at local midnight before and after the change, and segment names
/// carry the offset of their start.
#[test]
fn iana_zone_across_the_23_hour_day() {
    use tracing_filesink::{ManualClock, TimeZone};
    let tmp = tempfile::tempdir().unwrap();
    let at = |s: &str| -> std::time::SystemTime {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().into()
    };
    let clock = ManualClock::new(at("2026-03-28T12:00:00+01:00"));
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .clock(clock.clone())
        .time_zone(TimeZone::iana("Europe/Paris").unwrap())
        .rotation(Rotation::daily())
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    let steps = [
        ("2026-03-28T12:00:00+01:00", "sat"),
        ("2026-03-28T23:59:59+01:00", "sat-late"),
        ("2026-03-29T00:00:00+01:00", "sun-midnight"),
        ("2026-03-29T01:59:59+01:00", "sun-before-change"),
        ("2026-03-29T03:00:00+02:00", "sun-after-change"),
        ("2026-03-29T23:59:59+02:00", "sun-late"),
        ("2026-03-30T00:00:00+02:00", "mon"),
    ];
    for (t, msg) in steps {
        clock.set(at(t));
        guard.flush().unwrap();
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("{msg}"));
        guard.flush().unwrap();
    }
    let files = common::all_files_lines(tmp.path(), "app");
    let got: Vec<(String, Vec<(String, String)>)> = files
        .iter()
        .map(|(name, lines)| {
            let recs = lines
                .iter()
                .map(|l| {
                    let v = common::json(l);
                    (
                        v["fields"]["message"].as_str().unwrap().to_string(),
                        v["timestamp"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (name.clone(), recs)
        })
        .collect();
    let msgs: Vec<Vec<&str>> = got
        .iter()
        .map(|(_, r)| r.iter().map(|(m, _)| m.as_str()).collect())
        .collect();
    assert_eq!(
        msgs,
        [
            vec!["sat", "sat-late"],
            vec![
                "sun-midnight",
                "sun-before-change",
                "sun-after-change",
                "sun-late"
            ],
            vec!["mon"],
        ],
        "{got:#?}"
    );
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "app.0000000001.20260328T120000+0100.log",
            "app.0000000002.20260329T000000+0100.log",
            "app.log",
        ]
    );
    let stamps: Vec<&str> = got
        .iter()
        .flat_map(|(_, r)| r.iter().map(|(_, t)| t.as_str()))
        .collect();
    assert_eq!(
        stamps,
        [
            "2026-03-28T12:00:00.000000+01:00",
            "2026-03-28T23:59:59.000000+01:00",
            "2026-03-29T00:00:00.000000+01:00",
            "2026-03-29T01:59:59.000000+01:00",
            "2026-03-29T03:00:00.000000+02:00",
            "2026-03-29T23:59:59.000000+02:00",
            "2026-03-30T00:00:00.000000+02:00",
        ]
    );
}

#[test]
fn zone_names_are_checked() {
    use tracing_filesink::TimeZone;
    let e = TimeZone::iana("Europe/Pariss").unwrap_err();
    assert_eq!(e.setting(), Some("time_zone"), "{e}");
    assert!(e.to_string().contains("Europe/Pariss"), "{e}");
    assert_eq!(
        "Europe/Paris".parse::<TimeZone>().unwrap(),
        TimeZone::iana("Europe/Paris").unwrap()
    );
    assert_eq!("+01:00".parse::<TimeZone>().unwrap(), TimeZone::fixed(3600));
    assert_eq!("utc".parse::<TimeZone>().unwrap(), TimeZone::Utc);
    assert!("Mars/Olympus_Mons".parse::<TimeZone>().is_err());
}
