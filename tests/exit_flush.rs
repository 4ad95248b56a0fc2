//! Events logged before `std::process::exit` reach the file by default, wherever the guard
//! is (never dropped, in a `static`, or discarded at once with `let (layer, _) = ...`), and
//! before a panic when the user opted into the panic hook.

mod common;

use std::sync::OnceLock;

use tracing_filesink::{FileSink, FileSinkGuard};
use tracing_subscriber::prelude::*;

/// A global logger's guard, as applications keep it.
static GUARD: OnceLock<FileSinkGuard> = OnceLock::new();

const EVENTS: usize = 5_000;

/// Runs this test binary again as a child acting out `mode` in `dir`.
fn child(mode: &str, dir: &std::path::Path) -> std::process::Output {
    common::rerun_ignored("child_entry")
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

/// The child's body.
#[test]
#[ignore = "the child process of the other tests; does nothing unless FILESINK_EXIT_CHILD is set"]
fn child_entry() {
    let Ok(mode) = std::env::var("FILESINK_EXIT_CHILD") else {
        return;
    };
    let dir = std::env::var("FILESINK_EXIT_DIR").unwrap();
    let builder = FileSink::builder(&dir, "app");
    let builder = match mode.as_str() {
        "no-hook" => builder.flush_on_exit(false),
        // No exit flush: only the panic hook can save what is queued.
        "panic-hook" => builder.flush_on_panic(true).flush_on_exit(false),
        _ => builder,
    };
    if mode == "discarded-writer-guard" {
        // `build_writer()` under fmt's own JSON layer, its guard dropped at once too.
        let (writer, _) = builder.build_writer().unwrap();
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
            .init();
        for i in 0..EVENTS {
            tracing::info!(i, "before the end");
        }
        std::process::exit(0);
    }
    if mode == "panic-hook" {
        // The harness's hook would print (and take its time) before the process ends: the
        // sink's hook, installed by `build()`, chains to a silent one instead.
        std::panic::set_hook(Box::new(|_| {}));
    }
    let (layer, guard) = builder.build().unwrap();
    if mode == "panic-hook" {
        // Abort right after the sink's hook: no unwinding, no test harness going on, no exit
        // handler; nothing else can flush.
        let hooks = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            hooks(info);
            eprintln!("{info}");
            std::process::abort();
        }));
    }
    match mode.as_str() {
        // Kept in a `static`: never dropped.
        "static-guard" => GUARD.set(guard).unwrap(),
        // `let (layer, _) = ...`: dropped at once, while the layer lives on.
        "discarded-guard" => drop(guard),
        // Never dropped: only the hooks can flush.
        _ => std::mem::forget(guard),
    }
    tracing_subscriber::registry().with(layer).init();
    for i in 0..EVENTS {
        tracing::info!(i, "before the end");
    }
    match mode.as_str() {
        "panic-hook" => panic!("the application panics"),
        _ => std::process::exit(0),
    }
}

/// Runs the child in `mode` and checks that every event reached the file, in order.
#[cfg(unix)]
fn child_keeps_every_event(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = child(mode, dir.path());
    assert!(out.status.success(), "{out:?}");
    let got = lines(dir.path());
    assert_eq!(got.len(), EVENTS, "{mode}");
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v["fields"]["i"], i as u64);
    }
}

/// The default configuration flushes at `process::exit` (a guard that is never dropped).
// Unix only: the child ends with `process::exit`, which on Windows ends the writer thread
// without running any exit handler (docs/guarantees.md says so).
#[cfg(unix)]
#[test]
fn process_exit_flushes_by_default() {
    child_keeps_every_event("default");
}

// Unix only: the child ends with `process::exit`, which on Windows ends the writer thread
// without running any exit handler (docs/guarantees.md says so).
#[cfg(unix)]
#[test]
fn process_exit_with_the_guard_in_a_static_keeps_every_event() {
    child_keeps_every_event("static-guard");
}

/// `let (layer, _) = build()?` drops the guard at once; the sink keeps running for the layer.
// Unix only: the child ends with `process::exit`, which on Windows ends the writer thread
// without running any exit handler (docs/guarantees.md says so).
#[cfg(unix)]
#[test]
fn a_discarded_guard_loses_nothing() {
    child_keeps_every_event("discarded-guard");
    child_keeps_every_event("discarded-writer-guard");
}

#[test]
fn panic_flushes_with_the_panic_hook() {
    let dir = tempfile::tempdir().unwrap();
    let out = child("panic-hook", dir.path());
    assert!(!out.status.success(), "the child must have panicked");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the application panics"));
    assert_eq!(lines(dir.path()).len(), EVENTS);
}

/// With `flush_on_exit(false)`, `process::exit` loses what is still queued, and may even cut the batch
/// being written (the kernel can stop a write of an exiting process between pages). The next
/// start trims such a torn line and reports it; afterwards every line is whole.
#[test]
fn exit_without_hook_then_restart_leaves_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = child("no-hook", dir.path());
    assert!(out.status.success(), "{out:?}");
    let (_layer, guard) = FileSink::builder(dir.path(), "app").build().unwrap();
    guard.shutdown(std::time::Duration::from_secs(5)).unwrap();
    let got = lines(dir.path());
    // The restart may have added its own recovery record.
    let events: Vec<_> = got
        .iter()
        .filter(|v| v["target"] != "tracing_filesink")
        .collect();
    assert!(events.len() <= EVENTS);
    for (i, v) in events.iter().enumerate() {
        assert_eq!(v["fields"]["i"], i as u64, "a prefix, in order");
    }
}
