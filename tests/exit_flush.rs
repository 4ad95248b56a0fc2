//! Events logged before `std::process::exit` or a panic reach the file when the user opted
//! into the exit or panic hook, even though the guard is never dropped.

use std::process::Command;

use tracing_filesink::FileSink;
use tracing_subscriber::prelude::*;

const EVENTS: usize = 5_000;

/// Runs this test binary again as a child acting out `mode` in `dir`.
fn child(mode: &str, dir: &std::path::Path) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("FILESINK_EXIT_CHILD", mode)
        .env("FILESINK_EXIT_DIR", dir)
        .output()
        .unwrap()
}

fn lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("app.log")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

/// The child's body; a no-op when run as an ordinary test.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var("FILESINK_EXIT_CHILD") else {
        return;
    };
    let dir = std::env::var("FILESINK_EXIT_DIR").unwrap();
    let builder = FileSink::builder(&dir, "app");
    let builder = match mode.as_str() {
        "exit-hook" => builder.flush_on_exit(true),
        "panic-hook" => builder.flush_on_panic(true),
        _ => builder,
    };
    let (layer, guard) = builder.build().unwrap();
    // The guard is never dropped: only the hooks can flush.
    std::mem::forget(guard);
    tracing_subscriber::registry().with(layer).init();
    for i in 0..EVENTS {
        tracing::info!(i, "before the end");
    }
    match mode.as_str() {
        "panic-hook" => panic!("the application panics"),
        _ => std::process::exit(0),
    }
}

#[test]
fn process_exit_flushes_with_the_exit_hook() {
    let dir = tempfile::tempdir().unwrap();
    let out = child("exit-hook", dir.path());
    assert!(out.status.success(), "{out:?}");
    let got = lines(dir.path());
    assert_eq!(got.len(), EVENTS);
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v["fields"]["i"], i as u64);
    }
}

#[test]
fn panic_flushes_with_the_panic_hook() {
    let dir = tempfile::tempdir().unwrap();
    let out = child("panic-hook", dir.path());
    assert!(!out.status.success(), "the child must have panicked");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the application panics"));
    assert_eq!(lines(dir.path()).len(), EVENTS);
}

/// Without a hook, `process::exit` loses what is still queued; this shows the hook is what
/// makes the difference (the count may be anything from 0 to all, so only the hooked runs
/// assert completeness). It must at least never produce a torn or invalid line.
#[test]
fn exit_without_hook_never_tears_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = child("no-hook", dir.path());
    assert!(out.status.success(), "{out:?}");
    let got = lines(dir.path());
    assert!(got.len() <= EVENTS);
}
