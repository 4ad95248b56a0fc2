//! Several sinks in one subscriber, wired the way an application wires them: a JSON file, a
//! text file and an errors-only text file (a per-layer `LevelFilter`) beside
//! `fmt::layer()`, installed with `init()` (which also installs tracing-log's `LogTracer`),
//! spans at every level, `#[instrument]`ed tasks on a multi-thread tokio runtime, records
//! from the `log` crate, and a program that ends with `std::process::exit`.
//!
//! The test binary runs itself again as that program and then reads every file line by line.
// Unix only: the child ends with `process::exit`, which on Windows ends the writer thread
// without running any exit handler (docs/guarantees.md says so).
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use tracing::{instrument, Level};
use tracing_filesink::{FileSink, Format};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

const CHILD: &str = "FILESINK_MULTI_SINK_DIR";
const LEVELS: [Level; 5] = [
    Level::TRACE,
    Level::DEBUG,
    Level::INFO,
    Level::WARN,
    Level::ERROR,
];
const JOBS: u64 = 8;

/// One event at `level` (the macros need the level as a constant).
macro_rules! event_at {
    ($level:expr, $($rest:tt)*) => {
        match $level {
            Level::TRACE => tracing::trace!($($rest)*),
            Level::DEBUG => tracing::debug!($($rest)*),
            Level::INFO => tracing::info!($($rest)*),
            Level::WARN => tracing::warn!($($rest)*),
            _ => tracing::error!($($rest)*),
        }
    };
}

fn span_at(level: Level, sp: usize) -> tracing::Span {
    match level {
        Level::TRACE => tracing::trace_span!("lvl", sp),
        Level::DEBUG => tracing::debug_span!("lvl", sp),
        Level::INFO => tracing::info_span!("lvl", sp),
        Level::WARN => tracing::warn_span!("lvl", sp),
        _ => tracing::error_span!("lvl", sp),
    }
}

#[instrument(level = "debug")]
async fn job(job: u64) {
    tracing::info!(step = 1, "job started");
    tokio::task::yield_now().await;
    tracing::error!("job failed");
}

/// The program run by the test below.
#[test]
#[ignore = "the child process of json_text_errors_only_and_fmt_in_one_registry; does nothing unless FILESINK_MULTI_SINK_DIR is set"]
fn child_entry() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let (json, json_guard) = FileSink::builder(&dir, "app").build().unwrap();
    let (text, text_guard) = FileSink::builder(&dir, "human")
        .format(Format::Text)
        .build()
        .unwrap();
    let (errors, errors_guard) = FileSink::builder(&dir, "errors")
        .format(Format::Text)
        .build()
        .unwrap();
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_ansi(false))
        .with(json)
        .with(text)
        .with(errors.with_filter(LevelFilter::ERROR))
        .init();

    for (sp, span_level) in LEVELS.into_iter().enumerate() {
        let span = span_at(span_level, sp);
        let _entered = span.enter();
        for level in LEVELS {
            event_at!(level, "{level} in span {sp}");
        }
    }
    // Records of different threads keep no order among themselves; a flush is the barrier
    // that puts everything logged before it ahead of everything logged after it.
    let barrier = || {
        for g in [&json_guard, &text_guard, &errors_guard] {
            g.flush().unwrap();
        }
    };
    barrier();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..JOBS).map(|j| tokio::spawn(job(j))).collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    barrier();
    log::warn!(target: "dep_target", "from the log crate {}", 1);
    log::error!(target: "dep_target", "a log error");
    // The guards are never dropped: the default at-exit flush must write everything.
    std::process::exit(0);
}

fn run_child(dir: &Path) -> String {
    let out = common::rerun_ignored("child_entry")
        .env(CHILD, dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn file(dir: &Path, stem: &str) -> Vec<String> {
    common::lines(&common::read_active(dir, stem), stem)
}

/// A text line without its timestamp.
fn untimed(line: &str) -> &str {
    let (ts, rest) = line.split_once(' ').unwrap();
    assert!(ts.starts_with("20") && ts.ends_with('Z'), "{line:?}");
    rest
}

fn padded(level: Level) -> String {
    format!("{:>5}", level.as_str())
}

/// What the text layout shows for the span-at-every-level section, in order.
fn span_section(errors_only: bool) -> Vec<String> {
    let mut want = Vec::new();
    for (sp, span_level) in LEVELS.into_iter().enumerate() {
        for level in LEVELS {
            if errors_only && level != Level::ERROR {
                continue;
            }
            // The errors-only sink never saw the spans its filter rejected.
            let scope = if errors_only && span_level != Level::ERROR {
                String::new()
            } else {
                format!("lvl{{sp={sp}}}: ")
            };
            want.push(format!(
                "{} {scope}multi_sink: {level} in span {sp}",
                padded(level)
            ));
        }
    }
    want
}

fn job_lines(errors_only: bool) -> Vec<String> {
    let mut want = Vec::new();
    for j in 0..JOBS {
        let scope = if errors_only {
            String::new()
        } else {
            format!("job{{job={j}}}: ")
        };
        if !errors_only {
            want.push(format!(" INFO {scope}multi_sink: job started step=1"));
        }
        want.push(format!("ERROR {scope}multi_sink: job failed"));
    }
    want.sort();
    want
}

fn log_lines(errors_only: bool) -> Vec<String> {
    let mut want = vec![
        " WARN dep_target: from the log crate 1".to_string(),
        "ERROR dep_target: a log error".to_string(),
    ];
    if errors_only {
        want.remove(0);
    }
    want
}

/// Checks a text file: spans in order, the tasks' lines as a multiset, the log records last.
fn check_text(lines: &[String], errors_only: bool, what: &str) {
    let spans = span_section(errors_only);
    let jobs = job_lines(errors_only);
    let logs = log_lines(errors_only);
    assert_eq!(lines.len(), spans.len() + jobs.len() + logs.len(), "{what}");
    let got: Vec<&str> = lines.iter().map(|l| untimed(l)).collect();
    assert_eq!(got[..spans.len()], spans, "{what}: spans");
    let mut got_jobs = got[spans.len()..spans.len() + jobs.len()].to_vec();
    got_jobs.sort();
    assert_eq!(got_jobs, jobs, "{what}: instrumented tasks");
    assert_eq!(got[spans.len() + jobs.len()..], logs, "{what}: log records");
}

#[test]
fn json_text_errors_only_and_fmt_in_one_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = run_child(tmp.path());

    check_text(&file(tmp.path(), "human"), false, "human.log");
    check_text(&file(tmp.path(), "errors"), true, "errors.log");

    // fmt::layer() saw the same events and printed the same text (timestamps aside).
    // libtest's "test child_entry ... " precedes the first line, unterminated.
    let fmt: Vec<&str> = stdout
        .lines()
        .map(|l| l.trim_start_matches("test child_entry ... "))
        .filter(|l| l.starts_with("20"))
        .map(untimed)
        .collect();
    let mut ours: Vec<String> = file(tmp.path(), "human")
        .iter()
        .map(|l| untimed(l).to_string())
        .collect();
    let mut fmt: Vec<String> = fmt.into_iter().map(str::to_string).collect();
    ours.sort();
    fmt.sort();
    assert_eq!(ours, fmt, "text sink vs fmt::layer()");

    // The JSON file: every event, with its span and its scope.
    let json: Vec<serde_json::Value> = file(tmp.path(), "app")
        .iter()
        .map(|l| common::json(l))
        .collect();
    assert_eq!(json.len(), human_len(tmp.path()));
    let mut i = 0;
    for sp in 0..LEVELS.len() {
        for level in LEVELS {
            let v = &json[i];
            i += 1;
            assert_eq!(v["level"], level.as_str(), "{v}");
            assert_eq!(v["target"], "multi_sink", "{v}");
            assert_eq!(
                v["fields"]["message"],
                format!("{level} in span {sp}"),
                "{v}"
            );
            assert_eq!(v["span"], serde_json::json!({"sp": sp, "name": "lvl"}));
            assert_eq!(v["spans"], serde_json::json!([{"sp": sp, "name": "lvl"}]));
        }
    }
    let mut per_job: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for v in &json[i..i + 2 * JOBS as usize] {
        let j = v["span"]["job"].as_u64().unwrap_or_else(|| panic!("{v}"));
        assert_eq!(v["span"]["name"], "job", "{v}");
        assert_eq!(v["spans"], serde_json::json!([{"job": j, "name": "job"}]));
        per_job
            .entry(j)
            .or_default()
            .push(v["fields"]["message"].as_str().unwrap().to_string());
    }
    assert_eq!(per_job.len(), JOBS as usize);
    for msgs in per_job.values_mut() {
        // A task's two events may come from two worker threads: no order between them.
        msgs.sort();
        assert_eq!(msgs, &["job failed", "job started"]);
    }
    let logs = &json[i + 2 * JOBS as usize..];
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["target"], "dep_target");
    assert_eq!(logs[0]["level"], "WARN");
    assert_eq!(logs[0]["fields"]["message"], "from the log crate 1");
    assert_eq!(logs[1]["target"], "dep_target");
    assert_eq!(logs[1]["level"], "ERROR");
}

fn human_len(dir: &Path) -> usize {
    file(dir, "human").len()
}
