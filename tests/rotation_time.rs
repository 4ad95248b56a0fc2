//! Time rotation through a manual clock (no sleeps): after moving the clock, `flush()`
//! returns once the writer has checked the boundary. Every trigger kind in UTC and in fixed
//! offsets, boundaries crossed while idle, a clock jumping backwards, restarts within the same
//! period and in a later one, the weekly boundary across a year end, `rotate_on_startup`, and
//! `guard.rotate()`.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use tracing_filesink::{FileSink, FileSinkGuard, Format, ManualClock, Rotation, TimeZone};

const START: &str = "2026-11-26T03:14:48Z"; // a Thursday

struct Sink {
    _tmp: Option<tempfile::TempDir>,
    guard: FileSinkGuard,
    dispatch: tracing::Dispatch,
}

fn build(
    dir: &Path,
    clock: &ManualClock,
    rotation: Rotation,
    tz: TimeZone,
) -> (FileSinkGuard, tracing::Dispatch) {
    let (layer, guard) = FileSink::builder(dir, "app")
        .clock(clock.clone())
        .rotation(rotation)
        .time_zone(tz)
        .build()
        .unwrap();
    (guard, common::dispatch(layer))
}

impl Sink {
    fn log(&self, msg: &str) {
        tracing::dispatcher::with_default(&self.dispatch, || tracing::info!("{msg}"));
        self.guard.flush().unwrap();
    }
}

/// Messages per file: finished segments in name order, then the active file.
fn messages(dir: &Path) -> Vec<Vec<String>> {
    common::all_files_lines(dir, "app")
        .into_iter()
        .map(|(_, lines)| {
            lines
                .iter()
                .map(|l| {
                    common::json(l)["fields"]["message"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        })
        .collect()
}

fn labels(dir: &Path) -> Vec<String> {
    common::segments(dir, "app")
        .into_iter()
        .map(|s| s.label)
        .collect()
}

/// The instant a JSON record's timestamp denotes.
fn record_time(line: &str) -> SystemTime {
    let v = common::json(line);
    let ts = v["timestamp"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap_or_else(|e| panic!("{ts}: {e}"))
        .into()
}

/// One trigger: starting at START, the first two boundaries are `boundaries`. Just before
/// each nothing happens; at it, the active file becomes a segment named after its start,
/// holding exactly what was logged in that period.
fn check_trigger(what: &str, rotation: Rotation, tz: TimeZone, offset: i32, boundaries: [&str; 2]) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = ManualClock::new(common::at(START));
    let (guard, dispatch) = build(dir, &clock, rotation, tz);
    let sink = Sink {
        _tmp: None,
        guard,
        dispatch,
    };
    let utc = tz == TimeZone::Utc;
    let mut period_start = common::at(START);
    sink.log("period 0");
    for (k, b) in boundaries.iter().enumerate() {
        let b = common::at(b);
        clock.set(b - Duration::from_millis(1));
        sink.guard.flush().unwrap();
        assert_eq!(
            common::segments(dir, "app").len(),
            k,
            "{what}: rotated before the boundary {b:?}"
        );
        clock.set(b);
        sink.guard.flush().unwrap();
        let segs = common::segments(dir, "app");
        assert_eq!(segs.len(), k + 1, "{what}: no rotation at boundary {k}");
        assert_eq!(
            segs[k].label,
            common::label(period_start, offset, utc),
            "{what}: segment {k} is not named after its start"
        );
        assert!(common::read_active(dir, "app").is_empty());
        sink.log(&format!("period {}", k + 1));
        let active = common::lines(&common::read_active(dir, "app"), "app.log");
        assert_eq!(
            record_time(&active[0]),
            b,
            "{what}: first record's timestamp"
        );
        period_start = b;
    }
    let expected: Vec<Vec<String>> = (0..=2).map(|k| vec![format!("period {k}")]).collect();
    assert_eq!(messages(dir), expected, "{what}");
    assert_eq!(sink.guard.stats().rotations, 2);
}

const PLUS_0530: i32 = 5 * 3600 + 1800;
const MINUS_0800: i32 = -8 * 3600;

#[test]
fn minutely() {
    check_trigger(
        "UTC",
        Rotation::minutely(),
        TimeZone::Utc,
        0,
        ["2026-11-26T03:15:00Z", "2026-11-26T03:16:00Z"],
    );
    check_trigger(
        "+05:30",
        Rotation::minutely(),
        TimeZone::fixed(PLUS_0530),
        PLUS_0530,
        ["2026-11-26T08:45:00+05:30", "2026-11-26T08:46:00+05:30"],
    );
}

#[test]
fn hourly() {
    check_trigger(
        "UTC",
        Rotation::hourly(),
        TimeZone::Utc,
        0,
        ["2026-11-26T04:00:00Z", "2026-11-26T05:00:00Z"],
    );
    // A half-hour offset: local hours begin at :30 UTC.
    check_trigger(
        "+05:30",
        Rotation::hourly(),
        TimeZone::fixed(PLUS_0530),
        PLUS_0530,
        ["2026-11-26T09:00:00+05:30", "2026-11-26T10:00:00+05:30"],
    );
}

#[test]
fn daily() {
    check_trigger(
        "UTC",
        Rotation::daily(),
        TimeZone::Utc,
        0,
        ["2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z"],
    );
    check_trigger(
        "+05:30",
        Rotation::daily(),
        TimeZone::fixed(PLUS_0530),
        PLUS_0530,
        ["2026-11-27T00:00:00+05:30", "2026-11-28T00:00:00+05:30"],
    );
    // 03:14:48Z is still the 25th in UTC-8: the first local midnight is 08:00Z the same day.
    check_trigger(
        "-08:00",
        Rotation::daily(),
        TimeZone::fixed(MINUS_0800),
        MINUS_0800,
        ["2026-11-26T00:00:00-08:00", "2026-11-27T00:00:00-08:00"],
    );
}

#[test]
fn weekly() {
    check_trigger(
        "UTC",
        Rotation::weekly(),
        TimeZone::Utc,
        0,
        ["2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"],
    );
    check_trigger(
        "+05:30",
        Rotation::weekly(),
        TimeZone::fixed(PLUS_0530),
        PLUS_0530,
        ["2026-11-30T00:00:00+05:30", "2026-12-07T00:00:00+05:30"],
    );
    check_trigger(
        "-08:00",
        Rotation::weekly(),
        TimeZone::fixed(MINUS_0800),
        MINUS_0800,
        ["2026-11-30T00:00:00-08:00", "2026-12-07T00:00:00-08:00"],
    );
}

#[test]
fn every_interval() {
    let six_hours = || Rotation::every(Duration::from_secs(6 * 3600));
    check_trigger(
        "6h UTC",
        six_hours(),
        TimeZone::Utc,
        0,
        ["2026-11-26T06:00:00Z", "2026-11-26T12:00:00Z"],
    );
    check_trigger(
        "6h +05:30",
        six_hours(),
        TimeZone::fixed(PLUS_0530),
        PLUS_0530,
        ["2026-11-26T12:00:00+05:30", "2026-11-26T18:00:00+05:30"],
    );
    // 90 s from the epoch: START is 1,795,662,888 s; the next multiples of 90 are 12 s and
    // 102 s later.
    check_trigger(
        "90s UTC",
        Rotation::every(Duration::from_secs(90)),
        TimeZone::Utc,
        0,
        ["2026-11-26T03:15:00Z", "2026-11-26T03:16:30Z"],
    );
}

#[test]
fn weekly_across_the_year_end() {
    let start = "2026-12-30T12:00:00Z"; // a Wednesday
    for (what, offset, utc, boundaries) in [
        (
            "UTC",
            0,
            true,
            ["2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z"],
        ),
        (
            "-08:00",
            MINUS_0800,
            false,
            ["2027-01-04T00:00:00-08:00", "2027-01-11T00:00:00-08:00"],
        ),
        // Already Thursday the 31st in UTC+14.
        (
            "+14:00",
            14 * 3600,
            false,
            ["2027-01-04T00:00:00+14:00", "2027-01-11T00:00:00+14:00"],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(common::at(start));
        let tz = if utc {
            TimeZone::Utc
        } else {
            TimeZone::fixed(offset)
        };
        let (guard, dispatch) = build(tmp.path(), &clock, Rotation::weekly(), tz);
        let sink = Sink {
            _tmp: None,
            guard,
            dispatch,
        };
        sink.log("2026");
        clock.set(common::at("2027-01-01T00:00:00Z"));
        sink.guard.flush().unwrap();
        assert!(
            common::segments(tmp.path(), "app").is_empty(),
            "{what}: rotated at new year"
        );
        clock.set(common::at(boundaries[0]) - Duration::from_secs(1));
        sink.guard.flush().unwrap();
        assert!(
            common::segments(tmp.path(), "app").is_empty(),
            "{what}: rotated early"
        );
        clock.set(common::at(boundaries[0]));
        sink.guard.flush().unwrap();
        sink.log("2027 week 1");
        clock.set(common::at(boundaries[1]));
        sink.guard.flush().unwrap();
        assert_eq!(
            labels(tmp.path()),
            [
                common::label(common::at(start), offset, utc),
                common::label(common::at(boundaries[0]), offset, utc)
            ],
            "{what}"
        );
        assert_eq!(
            messages(tmp.path()),
            [vec!["2026"], vec!["2027 week 1"], vec![]],
            "{what}"
        );
    }
}

/// The writer wakes for a boundary by itself: an idle service still gets its hourly file,
/// without any call on the guard.
#[test]
fn boundary_crossed_while_idle_rotates_without_a_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(common::at(START));
    let (guard, dispatch) = build(tmp.path(), &clock, Rotation::hourly(), TimeZone::Utc);
    let sink = Sink {
        _tmp: None,
        guard,
        dispatch,
    };
    sink.log("before");
    clock.set(common::at("2026-11-26T04:00:00Z"));
    common::wait_until("the idle writer to rotate", Duration::from_secs(10), || {
        sink.guard.stats().rotations == 1
    });
    assert_eq!(messages(tmp.path()), [vec!["before"], vec![]]);
    assert_eq!(labels(tmp.path()), ["20261126T031448Z"]);
}

/// Periods that pass with nothing logged leave no empty segments, and the next segment is
/// named after the period its data started in.
#[test]
fn idle_periods_make_no_empty_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(common::at(START));
    let (guard, dispatch) = build(tmp.path(), &clock, Rotation::hourly(), TimeZone::Utc);
    let sink = Sink {
        _tmp: None,
        guard,
        dispatch,
    };
    sink.log("a");
    for h in ["04", "05", "06"] {
        clock.set(common::at(&format!("2026-11-26T{h}:00:00Z")));
        sink.guard.flush().unwrap();
    }
    assert_eq!(common::segments(tmp.path(), "app").len(), 1);
    sink.log("b");
    clock.set(common::at("2026-11-26T07:00:00Z"));
    sink.guard.flush().unwrap();
    assert_eq!(labels(tmp.path()), ["20261126T031448Z", "20261126T060000Z"]);
    assert_eq!(messages(tmp.path()), [vec!["a"], vec!["b"], vec![]]);
    assert_eq!(sink.guard.stats().rotations, 2);
}

/// A clock jumping backwards: no rotation because of it, nothing overwritten, and names
/// still sort in write order although the later segment's start label is earlier.
#[test]
fn clock_jumping_backwards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = ManualClock::new(common::at(START));
    let (guard, dispatch) = build(dir, &clock, Rotation::hourly(), TimeZone::Utc);
    let sink = Sink {
        _tmp: None,
        guard,
        dispatch,
    };
    sink.log("a");
    clock.set(common::at("2026-11-26T04:00:00Z"));
    sink.guard.flush().unwrap();
    sink.log("b");
    // Back two and a half hours, across two hour boundaries.
    clock.set(common::at("2026-11-26T01:30:00Z"));
    sink.guard.flush().unwrap();
    assert_eq!(
        common::segments(dir, "app").len(),
        1,
        "the jump back rotated"
    );
    sink.log("c");
    sink.guard.rotate().unwrap();
    sink.log("d");
    sink.guard.rotate().unwrap();
    // The same start label twice: the sequence number keeps the names apart.
    sink.log("e");
    sink.guard.rotate().unwrap();
    sink.log("f");
    let segs = common::segments(dir, "app");
    assert_eq!(
        segs.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
        [
            "20261126T031448Z",
            "20261126T040000Z",
            "20261126T013000Z",
            "20261126T013000Z"
        ]
    );
    for w in segs.windows(2) {
        assert!(
            w[0].seq < w[1].seq && w[0].name < w[1].name,
            "{} / {}",
            w[0].name,
            w[1].name
        );
    }
    assert_eq!(
        messages(dir),
        [vec!["a"], vec!["b", "c"], vec!["d"], vec!["e"], vec!["f"]],
        "write order and contents"
    );
    // Forward again: the boundary after the rotation at 01:30 is 02:00.
    clock.set(common::at("2026-11-26T02:00:00Z"));
    sink.guard.flush().unwrap();
    assert_eq!(common::segments(dir, "app").len(), 5);
    assert_eq!(sink.guard.stats().rotations, 5);
}

#[test]
fn restart_within_the_same_period_appends() {
    for format in [Format::Json, Format::Text] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let clock = ManualClock::new(common::at(START));
        let log_run = |msg: &str| {
            let (layer, guard) = FileSink::builder(dir, "app")
                .clock(clock.clone())
                .format(format)
                .rotation(Rotation::hourly())
                .build()
                .unwrap();
            tracing::dispatcher::with_default(&common::dispatch(layer), || tracing::info!("{msg}"));
            guard
        };
        drop(log_run("first run"));
        clock.set(common::at("2026-11-26T03:40:00Z"));
        let guard = log_run("second run");
        guard.flush().unwrap();
        assert!(
            common::segments(dir, "app").is_empty(),
            "{format:?}: restart rotated"
        );
        let active = common::lines(&common::read_active(dir, "app"), "app.log");
        assert_eq!(active.len(), 2, "{format:?}: {active:?}");
        assert!(active[0].contains("first run") && active[1].contains("second run"));
        // The period still ends at 04:00, and its segment is named after the first run.
        clock.set(common::at("2026-11-26T04:00:00Z"));
        guard.flush().unwrap();
        let segs = common::segments(dir, "app");
        assert_eq!(segs.len(), 1, "{format:?}");
        assert_eq!(segs[0].label, "20261126T031448Z", "{format:?}");
        let seg = common::lines(&std::fs::read(dir.join(&segs[0].name)).unwrap(), "segment");
        assert_eq!(seg, active, "{format:?}");
    }
}

#[test]
fn restart_in_a_later_period_rotates_the_old_file_at_startup() {
    for (format, tz, offset) in [
        (Format::Json, TimeZone::Utc, 0),
        (Format::Text, TimeZone::Utc, 0),
        (Format::Json, TimeZone::fixed(PLUS_0530), PLUS_0530),
        (Format::Text, TimeZone::fixed(MINUS_0800), MINUS_0800),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let clock = ManualClock::new(common::at(START));
        let run = || {
            let (layer, guard) = FileSink::builder(dir, "app")
                .clock(clock.clone())
                .format(format)
                .time_zone(tz)
                .rotation(Rotation::daily())
                .build()
                .unwrap();
            (guard, common::dispatch(layer))
        };
        let (guard, d) = run();
        tracing::dispatcher::with_default(&d, || tracing::info!("yesterday"));
        drop((guard, d));
        // Two days later: the old file belongs to a finished period.
        clock.set(common::at("2026-11-28T12:00:00Z"));
        let (guard, d) = run();
        guard.flush().unwrap();
        let segs = common::segments(dir, "app");
        assert_eq!(segs.len(), 1, "{format:?} {tz:?}: not rotated at startup");
        // Named after the old file's first record, not after the restart.
        assert_eq!(
            segs[0].label,
            common::label(common::at(START), offset, tz == TimeZone::Utc)
        );
        tracing::dispatcher::with_default(&d, || tracing::info!("today"));
        guard.flush().unwrap();
        let all = common::all_files_lines(dir, "app");
        assert_eq!(all.len(), 2);
        assert!(
            all[0].1.len() == 1 && all[0].1[0].contains("yesterday"),
            "{all:?}"
        );
        assert!(
            all[1].1.len() == 1 && all[1].1[0].contains("today"),
            "{all:?}"
        );
        // The next segment continues the sequence.
        guard.rotate().unwrap();
        let segs = common::segments(dir, "app");
        assert!(segs[1].seq > segs[0].seq);
        assert_eq!(
            segs[1].label,
            common::label(
                common::at("2026-11-28T12:00:00Z"),
                offset,
                tz == TimeZone::Utc
            )
        );
    }
}

#[test]
fn rotate_on_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = ManualClock::new(common::at(START));
    let run = |rotate: bool| {
        let (layer, guard) = FileSink::builder(dir, "app")
            .clock(clock.clone())
            .rotate_on_startup(rotate)
            .build()
            .unwrap();
        (guard, common::dispatch(layer))
    };
    // Nothing to rotate in a fresh directory.
    let (guard, d) = run(true);
    guard.flush().unwrap();
    assert!(common::segments(dir, "app").is_empty());
    tracing::dispatcher::with_default(&d, || tracing::info!("run 1"));
    drop((guard, d));
    clock.set(common::at("2026-11-26T03:20:00Z"));
    let (guard, d) = run(true);
    guard.flush().unwrap();
    let segs = common::segments(dir, "app");
    assert_eq!(segs.len(), 1, "not rotated at startup");
    assert_eq!(
        segs[0].label, "20261126T031448Z",
        "the segment must be named after its start (its first record), not the restart"
    );
    assert!(common::read_active(dir, "app").is_empty());
    drop((guard, d));
    // An empty active file is not turned into an empty segment.
    drop(run(true));
    assert_eq!(common::segments(dir, "app").len(), 1);
    let (guard, d) = run(true);
    tracing::dispatcher::with_default(&d, || tracing::info!("run 4"));
    drop((guard, d));
    assert_eq!(messages(dir), [vec!["run 1"], vec!["run 4"]]);
    // Without the option, the next run appends.
    let (guard, d) = run(false);
    tracing::dispatcher::with_default(&d, || tracing::info!("run 5"));
    drop((guard, d));
    assert_eq!(messages(dir), [vec!["run 1"], vec!["run 4", "run 5"]]);
}

#[test]
fn manual_rotate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = ManualClock::new(common::at(START));
    let (guard, dispatch) = build(dir, &clock, Rotation::never(), TimeZone::Utc);
    let sink = Sink {
        _tmp: None,
        guard,
        dispatch,
    };
    sink.guard.rotate().unwrap();
    assert!(
        common::segments(dir, "app").is_empty(),
        "rotated an empty file"
    );
    sink.log("a");
    clock.advance(Duration::from_secs(3600 * 30));
    sink.guard.rotate().unwrap();
    sink.guard.rotate().unwrap();
    sink.log("b");
    sink.log("c");
    clock.advance(Duration::from_secs(61));
    sink.guard.rotate().unwrap();
    assert_eq!(messages(dir), [vec!["a"], vec!["b", "c"], vec![]]);
    assert_eq!(labels(dir), ["20261126T031448Z", "20261127T091448Z"]);
    assert_eq!(sink.guard.stats().rotations, 2);
    // Rotation::never() never rotates by itself, whatever the clock does.
    sink.log("d");
    clock.advance(Duration::from_secs(86_400 * 400));
    sink.guard.flush().unwrap();
    assert_eq!(common::segments(dir, "app").len(), 2);
}
