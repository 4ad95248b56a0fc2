//! The JSON format is `tracing_subscriber::fmt::layer().json()`'s, key by key and value by
//! value: both layers sit on one registry and see the very same events (nested spans, fields
//! of every type, `span.record()` updates, explicit parents), and every line is compared as a
//! `serde_json::Value` (timestamps aside) and by the order of its keys at every level.
//! Records from the `log` crate (through tracing-log's `LogTracer`) are compared too, in JSON
//! and in the text format against fmt's default text layout.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing::field::Empty;
use tracing_filesink::{FileSink, Format};
use tracing_subscriber::prelude::*;

/// A `MakeWriter` collecting fmt's output in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct Wrapped(std::io::Error);
impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wrapped: {}", self.0)
    }
}
impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[derive(Debug)]
#[allow(dead_code)]
struct Point {
    x: i32,
    label: &'static str,
}

/// The events both layers see.
fn log_events() {
    log_events_without_controls();
    tracing::info!("escapes: \" \\ \t \n \r \x1b é ✓ 😀 \u{7f} \u{85} \u{2028}");
}

/// [`log_events`] but the one with control characters, so that fmt's text layouts (which
/// write them raw) can be compared line for line.
fn log_events_without_controls() {
    let err = Wrapped(std::io::Error::other("disk on fire"));
    tracing::info!("plain message");
    tracing::warn!(answer = 42, "with a field");
    tracing::error!(only = "fields", ok = false);
    tracing::debug!(
        s = "str",
        i = -7i64,
        small = 3i64,
        u = u64::MAX,
        f = 2.5f64,
        third = 1.0f64 / 3.0,
        whole = 10.0f64,
        nan = f64::NAN,
        inf = f64::INFINITY,
        neg_inf = f64::NEG_INFINITY,
        neg_zero = -0.0f64,
        tiny = 1e-300f64,
        huge = 1.5e300f64,
        b = true,
        dbg = ?vec![Some(1), None],
        point = ?Point { x: -3, label: "a \"quoted\" label" },
        disp = %"display \"quoted\" \\ text",
        err = &err as &(dyn std::error::Error + 'static),
        i128v = i128::MIN,
        u128v = u128::MAX,
        bytes = &b"\x00\xffab"[..],
        "all types {} {:?}",
        1,
        "two"
    );
    tracing::trace!(target: "custom::target", "targeted");
    tracing::info!(dup = 1, dup = "two", "duplicate field names");
    tracing::info!(r#type = "raw identifier", "raw identifier");
    tracing::info!(message = "message as a field", extra = 1);
    let outer = tracing::info_span!(
        "outer",
        a = 1u64,
        s = "x",
        late = Empty,
        f = 1.5,
        nan = f64::NAN,
        b = true,
        d = ?(1, "two"),
        p = %"disp",
        bytes = &b"ab"[..],
        big = i128::MAX,
    );
    let entered = outer.enter();
    tracing::info!("in outer");
    let inner = tracing::debug_span!("inner", z = -1i64, a = "shadows outer's a");
    inner.in_scope(|| tracing::info!(k = "v", "in inner"));
    outer.record("late", "recorded later");
    outer.record("a", 2u64);
    inner.record("z", 5u64);
    inner.in_scope(|| {
        let empty = tracing::trace_span!(target: "other::target", "empty");
        empty.in_scope(|| tracing::info!("three deep, empty leaf"));
        let blank = tracing::info_span!("blank", later = Empty);
        blank.record("later", "first value of a span without fields");
        blank.record(
            "later",
            tracing::field::debug(Point {
                x: 1,
                label: "second",
            }),
        );
        blank.in_scope(|| tracing::warn!("after two records"));
    });
    let detached = tracing::info_span!("detached", id = 9);
    tracing::info!(parent: &detached, "explicit parent while outer is current");
    tracing::info!(parent: None, "explicit root while outer is current");
    drop(entered);
    tracing::info!(parent: &detached, "explicit parent, no current span");
    tracing::error!("no span at all");
}

/// Records from the `log` crate, as a dependency that logs with `log` sends them.
fn log_records() {
    static TRACER: std::sync::Once = std::sync::Once::new();
    TRACER.call_once(|| tracing_log::LogTracer::init().unwrap());
    log::info!("plain log record");
    log::warn!(target: "dep_target", "with a target {}", 42);
    log::error!(target: "dep::nested", "escapes \" \n \x1b");
    log::trace!(target: "dep_target", "trace level");
    let span = tracing::info_span!("around_log", a = 1);
    span.in_scope(|| log::debug!(target: "dep_target", "inside a span"));
    tracing::info!("a tracing event between log records");
}

/// Keys of every object in document order, as paths (`/fields/message`, `/spans/0/name`).
/// serde_json's `Value` forgets key order and duplicates; this keeps both.
fn key_paths(json: &str) -> Vec<String> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
        out: Vec<String>,
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn string(&mut self) -> String {
            let start = self.i;
            self.i += 1;
            while self.b[self.i] != b'"' {
                self.i += if self.b[self.i] == b'\\' { 2 } else { 1 };
            }
            self.i += 1;
            serde_json::from_slice(&self.b[start..self.i]).unwrap()
        }
        fn value(&mut self, path: &str) {
            self.ws();
            match self.b[self.i] {
                b'{' => {
                    self.i += 1;
                    loop {
                        self.ws();
                        match self.b[self.i] {
                            b'}' => {
                                self.i += 1;
                                return;
                            }
                            b',' => self.i += 1,
                            _ => {
                                let k = self.string();
                                let p = format!("{path}/{k}");
                                self.out.push(p.clone());
                                self.ws();
                                assert_eq!(self.b[self.i], b':');
                                self.i += 1;
                                self.value(&p);
                            }
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    let mut n = 0;
                    loop {
                        self.ws();
                        match self.b[self.i] {
                            b']' => {
                                self.i += 1;
                                return;
                            }
                            b',' => self.i += 1,
                            _ => {
                                self.value(&format!("{path}/{n}"));
                                n += 1;
                            }
                        }
                    }
                }
                b'"' => {
                    self.string();
                }
                _ => {
                    while !matches!(self.b[self.i], b',' | b'}' | b']') {
                        self.i += 1;
                    }
                }
            }
        }
    }
    let mut p = P {
        b: json.as_bytes(),
        i: 0,
        out: Vec::new(),
    };
    p.value("");
    p.out
}

/// Runs `log_events` through the sink's layer and fmt's JSON layer at once; returns
/// (sink lines, fmt lines).
fn both_outputs(events: fn()) -> (Vec<String>, Vec<String>) {
    both_outputs_in(Format::Json, events)
}

/// As [`both_outputs`], in `format`: JSON against `fmt::layer().json()`, text against
/// `fmt::layer()` without colours.
fn both_outputs_in(format: Format, events: fn()) -> (Vec<String>, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .format(format)
        .build()
        .unwrap();
    let capture = Capture::default();
    let c = capture.clone();
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || c.clone());
    let fmt = if format == Format::Json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let subscriber = tracing_subscriber::registry().with(layer).with(fmt);
    tracing::subscriber::with_default(subscriber, events);
    guard.flush().unwrap();
    let ours = common::lines(&common::read_active(tmp.path(), "app"), "app.log");
    let theirs = common::lines(&capture.0.lock().unwrap(), "fmt output");
    (ours, theirs)
}

fn without_timestamp(mut v: Value) -> Value {
    let ts = v
        .as_object_mut()
        .unwrap()
        .remove("timestamp")
        .expect("a timestamp key");
    assert!(ts.is_string());
    v
}

#[test]
fn every_line_matches_fmt_json_value_by_value() {
    let (ours, theirs) = both_outputs(log_events);
    assert_eq!(ours.len(), 17, "the events were not all logged");
    same_values(&ours, &theirs);
}

#[test]
fn every_line_has_fmt_json_key_order() {
    let (ours, theirs) = both_outputs(log_events);
    same_key_order(&ours, &theirs);
}

/// `log` records get the log record's target (not `log`), and keep fmt's `log.target`,
/// `log.module_path`, `log.file` and `log.line` fields, key for key and value for value.
#[test]
fn log_records_match_fmt_json() {
    let (ours, theirs) = both_outputs(log_records);
    assert_eq!(ours.len(), 6, "the records were not all logged");
    same_values(&ours, &theirs);
    same_key_order(&ours, &theirs);
    let v = common::json(&ours[1]);
    assert_eq!(v["target"], "dep_target", "{v}");
    assert_eq!(v["fields"]["log.target"], "dep_target", "{v}");
    assert_eq!(v["fields"]["log.module_path"], "json_compat", "{v}");
    assert!(v["fields"]["log.file"]
        .as_str()
        .is_some_and(|f| f.ends_with("json_compat.rs")));
    assert!(v["fields"]["log.line"].as_u64().is_some(), "{v}");
    assert_eq!(common::json(&ours[0])["target"], "json_compat");
    assert_eq!(common::json(&ours[4])["span"]["name"], "around_log");
}

/// In the text format too: the log record's target, no `log.*` fields, as fmt's text layout.
#[test]
fn log_records_match_fmt_text() {
    let (ours, theirs) = both_outputs_in(Format::Text, log_records);
    assert_eq!(ours.len(), 6, "the records were not all logged");
    // fmt's text layout writes the raw LF and ESC of the third record (two lines); this
    // crate escapes them. Everything else is the same, timestamps aside.
    let mut theirs = theirs;
    let second_half = theirs.remove(3);
    theirs[2] = format!("{}\n{second_half}", theirs[2]);
    assert_eq!(ours.len(), theirs.len());
    let untimed = |l: &str| l.split_once(' ').unwrap().1.to_string();
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(
            untimed(o),
            untimed(t).replace('\n', "\\n").replace('\x1b', "\\x1b")
        );
    }
    assert_eq!(untimed(&ours[2]), "ERROR dep::nested: escapes \" \\n \\x1b");
    assert_eq!(untimed(&ours[1]), " WARN dep_target: with a target 42");
    assert_eq!(
        untimed(&ours[4]),
        "DEBUG around_log{a=1}: dep_target: inside a span"
    );
}

fn same_values(ours: &[String], theirs: &[String]) {
    assert_eq!(ours.len(), theirs.len(), "line counts differ");
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(
            without_timestamp(common::json(o)),
            without_timestamp(common::json(t)),
            "line {i} differs\n ours: {o}\n fmt:  {t}"
        );
    }
}

fn same_key_order(ours: &[String], theirs: &[String]) {
    assert_eq!(ours.len(), theirs.len(), "line counts differ");
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        let (ko, kt) = (key_paths(o), key_paths(t));
        assert_eq!(
            ko, kt,
            "line {i}: key order differs\n ours: {o}\n fmt:  {t}"
        );
        let top: Vec<&str> = ko
            .iter()
            .filter(|k| k.matches('/').count() == 1)
            .map(String::as_str)
            .collect();
        let expected: &[&str] = if top.contains(&"/span") {
            &[
                "/timestamp",
                "/level",
                "/fields",
                "/target",
                "/span",
                "/spans",
            ]
        } else {
            &["/timestamp", "/level", "/fields", "/target"]
        };
        assert_eq!(top, expected, "line {i}: top-level keys: {o}");
    }
}

/// The oracle itself is checked: a parser that cannot tell orders apart proves nothing.
#[test]
fn key_paths_sees_order_and_duplicates() {
    assert_eq!(
        key_paths(r#"{"b":1,"a":{"x":[{"q":"\"}"}]},"a":2}"#),
        ["/b", "/a", "/a/x", "/a/x/0/q", "/a"]
    );
    assert_ne!(key_paths(r#"{"a":1,"b":2}"#), key_paths(r#"{"b":2,"a":1}"#));
}

/// Timestamps are RFC 3339 UTC with microseconds, as fmt's default timer writes them.
#[test]
fn timestamps_have_fmt_shape() {
    let (ours, theirs) = both_outputs(|| tracing::info!("one"));
    let shape = |l: &str| {
        let v = common::json(l);
        let ts = v["timestamp"].as_str().unwrap().to_string();
        chrono::DateTime::parse_from_rfc3339(&ts).unwrap_or_else(|e| panic!("{ts}: {e}"));
        (
            ts.len(),
            ts.ends_with('Z'),
            ts.find('.').map(|i| ts.len() - i),
        )
    };
    assert_eq!(
        shape(&ours[0]),
        shape(&theirs[0]),
        "{} vs {}",
        ours[0],
        theirs[0]
    );
}

/// fmt's options, as one set of switches for both layers.
#[derive(Debug, Clone, Copy)]
struct Opts {
    time: bool,
    flatten_event: bool,
    current_span: bool,
    span_list: bool,
    file: bool,
    line_number: bool,
    thread_ids: bool,
    thread_names: bool,
    target: bool,
    level: bool,
}

impl Opts {
    /// Every combination of the options that apply to `format`.
    fn all(format: Format) -> Vec<Opts> {
        let json = format == Format::Json;
        let bits = if json { 9 } else { 6 };
        (0u32..1 << bits)
            .map(|m| {
                let b = |i: u32| m & (1 << i) != 0;
                Opts {
                    time: true,
                    file: b(0),
                    line_number: b(1),
                    thread_ids: b(2),
                    thread_names: b(3),
                    target: !b(4),
                    level: !b(5),
                    flatten_event: json && b(6),
                    current_span: !(json && b(7)),
                    span_list: !(json && b(8)),
                }
            })
            .collect()
    }

    fn sink(self, b: tracing_filesink::Builder) -> tracing_filesink::Builder {
        let b = if self.time { b } else { b.without_time() };
        let b = b
            .with_file(self.file)
            .with_line_number(self.line_number)
            .with_thread_ids(self.thread_ids)
            .with_thread_names(self.thread_names)
            .with_target(self.target)
            .with_level(self.level);
        if self.flatten_event || !self.current_span || !self.span_list {
            b.flatten_event(self.flatten_event)
                .with_current_span(self.current_span)
                .with_span_list(self.span_list)
        } else {
            b
        }
    }
}

/// The sink configured by `sink` (with `opts` applied) and fmt in `format` with the same
/// options, on one registry, both seeing `events`; returns (sink lines, fmt lines).
fn both_with(
    format: Format,
    opts: Opts,
    sink: impl FnOnce(tracing_filesink::Builder) -> tracing_filesink::Builder,
    events: &dyn Fn(),
) -> (Vec<String>, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let builder = opts.sink(FileSink::builder(tmp.path(), "app").format(format));
    let (layer, guard) = sink(builder).build().unwrap();
    let capture = Capture::default();
    let c = capture.clone();
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || c.clone())
        .with_file(opts.file)
        .with_line_number(opts.line_number)
        .with_thread_ids(opts.thread_ids)
        .with_thread_names(opts.thread_names)
        .with_target(opts.target)
        .with_level(opts.level);
    macro_rules! finish {
        ($fmt:expr) => {
            match format {
                Format::Json => $fmt
                    .json()
                    .flatten_event(opts.flatten_event)
                    .with_current_span(opts.current_span)
                    .with_span_list(opts.span_list)
                    .boxed(),
                Format::Compact => $fmt.compact().boxed(),
                _ => $fmt.boxed(),
            }
        };
    }
    let fmt = if opts.time {
        finish!(fmt)
    } else {
        finish!(fmt.without_time())
    };
    let subscriber = tracing_subscriber::registry().with(layer).with(fmt);
    tracing::subscriber::with_default(subscriber, events);
    guard.flush().unwrap();
    let ours = common::lines(&common::read_active(tmp.path(), "app"), "app.log");
    let theirs = common::lines(&capture.0.lock().unwrap(), "fmt output");
    (ours, theirs)
}

/// Key paths and values equal, the timestamp's value aside (its key is compared).
fn same_json(ours: &[String], theirs: &[String], what: &dyn std::fmt::Debug) {
    assert_eq!(ours.len(), theirs.len(), "line counts differ: {what:?}");
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(
            key_paths(o),
            key_paths(t),
            "line {i}, {what:?}: keys differ\n ours: {o}\n fmt:  {t}"
        );
        assert_eq!(
            without_timestamp(common::json(o)),
            without_timestamp(common::json(t)),
            "line {i}, {what:?}: values differ\n ours: {o}\n fmt:  {t}"
        );
    }
}

fn all_json_events() {
    log_events();
    log_records();
    // A thread without a name: fmt writes its id as `threadName` unless ids are written.
    let d = tracing::dispatcher::get_default(|d| d.clone());
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&d, || tracing::info!("from an unnamed thread"))
    })
    .join()
    .unwrap();
}

/// Every combination of fmt's nine JSON options (512), each compared line by line with
/// `fmt::layer().json()` given the same options, over every event of the other tests, the
/// `log` records and an event from an unnamed thread.
#[test]
fn every_combination_of_fmt_options_matches_fmt_json() {
    let combos = Opts::all(Format::Json);
    assert_eq!(combos.len(), 512);
    for opts in combos {
        let (ours, theirs) = both_with(Format::Json, opts, |b| b, &all_json_events);
        assert_eq!(ours.len(), 24, "{opts:?}");
        same_json(&ours, &theirs, &opts);
    }
}

/// The text layouts (full and compact) with every combination of the options fmt's text
/// formats honour (64 each), compared byte for byte after the timestamp. The test runs on a
/// thread whose name is longer than any test's, so that fmt's thread-name padding (to the
/// longest name it has seen in the process) and the sink's agree; a second, shorter-named
/// thread checks the padding itself.
/// `without_time()` in every format, with the options that move the start of the line
/// (level, target, flattening, spans): lines equal fmt's in full.
#[test]
fn without_time_matches_fmt() {
    for format in [Format::Json, Format::Text, Format::Compact] {
        for opts in Opts::all(format) {
            if opts.file || opts.line_number || opts.thread_ids || opts.thread_names {
                continue;
            }
            let opts = Opts {
                time: false,
                ..opts
            };
            let events: &dyn Fn() = if format == Format::Json {
                &all_json_events
            } else {
                &log_events_without_controls
            };
            let (ours, theirs) = both_with(format, opts, |b| b, events);
            assert!(ours.len() >= 16, "{format:?} {opts:?}");
            assert_eq!(ours.len(), theirs.len(), "{format:?} {opts:?}");
            if format == Format::Json {
                for (o, t) in ours.iter().zip(&theirs) {
                    assert_eq!(
                        key_paths(o),
                        key_paths(t),
                        "{opts:?}\n ours: {o}\n fmt:  {t}"
                    );
                    assert_eq!(common::json(o), common::json(t), "{opts:?}");
                }
            } else {
                assert_eq!(ours, theirs, "{format:?} {opts:?}");
            }
        }
    }
}

#[test]
fn every_combination_of_fmt_options_matches_fmt_text_and_compact() {
    std::thread::Builder::new()
        .name("text-layout-parity-thread-with-a-name-longer-than-any-test-name-0123456789".into())
        .spawn(|| {
            for format in [Format::Text, Format::Compact] {
                let combos = Opts::all(format);
                assert_eq!(combos.len(), 64);
                for opts in combos {
                    let events = || {
                        log_events_without_controls();
                        // The other thread logs through the same subscriber.
                        let d = tracing::dispatcher::get_default(|d| d.clone());
                        std::thread::scope(|s| {
                            std::thread::Builder::new()
                                .name("short".into())
                                .spawn_scoped(s, || {
                                    tracing::dispatcher::with_default(&d, || {
                                        tracing::info!(n = 1, "from a short name")
                                    })
                                })
                                .unwrap();
                        });
                    };
                    let (ours, theirs) = both_with(format, opts, |b| b, &events);
                    assert_eq!(ours.len(), 17, "{format:?} {opts:?}");
                    assert_eq!(ours.len(), theirs.len(), "{format:?} {opts:?}");
                    let untimed = |l: &str| l.split_once(' ').unwrap().1.to_string();
                    for (o, t) in ours.iter().zip(&theirs) {
                        assert_eq!(untimed(o), untimed(t), "{format:?} {opts:?}");
                    }
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// What fmt wrote, with top-level keys renamed as `rename_key` does and `statics` appended:
/// (key paths, value without the timestamp).
fn renamed_fmt(
    line: &str,
    renames: &[(&str, &str)],
    statics: &[(&str, &str)],
    flatten: bool,
) -> (Vec<String>, Value) {
    let to = |k: &str| renames.iter().find(|(f, _)| *f == k).map(|(_, t)| *t);
    let mut paths: Vec<String> = key_paths(line)
        .into_iter()
        .map(|p| {
            let segs: Vec<&str> = p[1..].split('/').collect();
            let mut segs: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
            if segs[0] == "fields" && !flatten && segs.get(1).map(String::as_str) == Some("message")
            {
                if let Some(t) = to("message") {
                    segs[1] = t.to_string();
                }
            }
            if segs[0] != "message" || flatten {
                if let Some(t) = to(&segs[0]) {
                    segs[0] = t.to_string();
                }
            }
            format!("/{}", segs.join("/"))
        })
        .collect();
    let mut v = common::json(line);
    let obj = v.as_object_mut().unwrap();
    for (from, t) in renames {
        let holder = if *from == "message" && !flatten {
            obj.get_mut("fields").and_then(Value::as_object_mut)
        } else {
            Some(&mut *obj)
        };
        if let Some(h) = holder {
            if let Some(x) = h.remove(*from) {
                h.insert(t.to_string(), x);
            }
        }
    }
    let ts_key = to("timestamp").unwrap_or("timestamp");
    assert!(obj.remove(ts_key).is_some_and(|t| t.is_string()));
    for (k, val) in statics {
        paths.push(format!("/{k}"));
        obj.insert(k.to_string(), Value::from(*val));
    }
    (paths, v)
}

/// `rename_key` and `static_field` on top of fmt's options: each line is fmt's, with the
/// renamed keys in their places and the static fields last, for the Elastic Common Schema
/// and Google Cloud Logging recipes of the docs and for every renamable key at once, over
/// the 32 combinations of the options that move keys around.
#[test]
fn renamed_keys_and_static_fields_are_fmt_json_otherwise() {
    type Pairs = &'static [(&'static str, &'static str)];
    let sets: [(Pairs, Pairs); 3] = [
        (
            &[("timestamp", "@timestamp"), ("level", "log.level")],
            &[("service.name", "checkout"), ("service.version", "1.4.2")],
        ),
        (
            &[("timestamp", "time"), ("level", "severity")],
            &[("logging.googleapis.com/labels", "x \"quoted\" \n")],
        ),
        (
            &[
                ("timestamp", "ts"),
                ("level", "lvl"),
                ("message", "msg"),
                ("target", "logger"),
                ("fields", "attrs"),
                ("span", "current"),
                ("spans", "scope"),
            ],
            &[],
        ),
    ];
    let mut compared = 0;
    for (renames, statics) in sets {
        for opts in Opts::all(Format::Json) {
            if opts.file || opts.line_number || opts.thread_ids || opts.thread_names {
                continue;
            }
            let sink = |mut b: tracing_filesink::Builder| {
                for (k, n) in renames {
                    b = b.rename_key(*k, *n);
                }
                for (k, v) in statics {
                    b = b.static_field(*k, *v);
                }
                b
            };
            let (ours, theirs) = both_with(Format::Json, opts, sink, &all_json_events);
            assert_eq!(ours.len(), theirs.len());
            for (o, t) in ours.iter().zip(&theirs) {
                let (paths, value) = renamed_fmt(t, renames, statics, opts.flatten_event);
                assert_eq!(
                    key_paths(o),
                    paths,
                    "{opts:?} {renames:?}\n ours: {o}\n fmt:  {t}"
                );
                let mut mine = common::json(o);
                let ts_key = renames
                    .iter()
                    .find(|(f, _)| *f == "timestamp")
                    .map_or("timestamp", |(_, t)| t);
                assert!(mine.as_object_mut().unwrap().remove(ts_key).is_some());
                assert_eq!(mine, value, "{opts:?} {renames:?}\n ours: {o}\n fmt:  {t}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 3 * 32 * 24);
}
