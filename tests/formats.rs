//! The layouts beyond fmt's JSON: logfmt read back by an independent parser (as Grafana
//! Loki's `logfmt` stage and go-logfmt read it), static fields and renamed keys in logfmt
//! and text, and `build()` refusing option combinations that cannot mean what they say.

mod common;

use std::collections::BTreeMap;

use tracing_filesink::{Builder, ErrorKind, FileSink, Format};

fn refused(b: Builder, setting: &str) -> String {
    let e = b.build().expect_err("build() must refuse this");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert_eq!(e.setting(), Some(setting), "{e}");
    e.to_string()
}

/// The lines `events` produce through a sink built by `b` (in a fresh directory).
fn lines(b: impl FnOnce(Builder) -> Builder, events: impl FnOnce()) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = b(FileSink::builder(tmp.path(), "app")).build().unwrap();
    tracing::dispatcher::with_default(&common::dispatch(layer), events);
    guard.flush().unwrap();
    common::lines(&common::read_active(tmp.path(), "app"), "app.log")
}

/// A logfmt line as go-logfmt decodes it: `key=value` pairs separated by spaces, a value
/// bare (up to the next space) or a quoted string with JSON's escapes. Panics on anything
/// else, so a line that does not read back fails the test. Keys in order, with values.
fn parse_logfmt(line: &str) -> Vec<(String, String)> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        assert_ne!(b[i], b' ', "two spaces at {i}: {line}");
        let k0 = i;
        while i < b.len() && b[i] != b'=' {
            assert!(
                b[i] > b' ' && b[i] != b'"',
                "bad key byte {:?} at {i}: {line}",
                b[i] as char
            );
            i += 1;
        }
        let key = line[k0..i].to_string();
        assert!(!key.is_empty(), "empty key at {k0}: {line}");
        assert_eq!(b.get(i), Some(&b'='), "no `=` after {key:?}: {line}");
        i += 1;
        let value = if b.get(i) == Some(&b'"') {
            let v0 = i;
            i += 1;
            while b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            serde_json::from_str::<String>(&line[v0..i])
                .unwrap_or_else(|e| panic!("quoted value {:?}: {e}", &line[v0..i]))
        } else {
            let v0 = i;
            while i < b.len() && b[i] != b' ' {
                assert!(
                    b[i] > b' ' && b[i] != b'"' && b[i] != b'=',
                    "bare value: {line}"
                );
                i += 1;
            }
            line[v0..i].to_string()
        };
        out.push((key, value));
        if i < b.len() {
            assert_eq!(b[i], b' ', "no space after {:?}: {line}", out.last());
            i += 1;
            assert!(i < b.len(), "trailing space: {line}");
        }
    }
    out
}

#[test]
fn the_logfmt_parser_rejects_what_is_not_logfmt() {
    for bad in [
        "a", "a=b  c=d", "a=\"x", "=1", "a=b c", "a=b=c", "k\"=1", "a=b ",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_logfmt(bad)).is_err(),
            "{bad:?} parsed"
        );
    }
    assert_eq!(
        parse_logfmt(r#"a=1 b="x \"y\"\n" c="#),
        [("a", "1"), ("b", "x \"y\"\n"), ("c", "")].map(|(k, v)| (k.into(), v.into()))
    );
}

const NASTY: [&str; 12] = [
    "plain",
    "with space",
    "eq=sign",
    "quote\"d",
    "back\\slash",
    "line\nbreak",
    "cr\rtab\t",
    "\x1b[31mred",
    "c1\u{85} ls\u{2028} del\u{7f}",
    "",
    "é✓😀",
    "a=\"b c\" d=e",
];

#[test]
fn logfmt_values_read_back_exactly() {
    let got = lines(
        |b| b.format(Format::Logfmt),
        || {
            for s in NASTY {
                tracing::info!(v = s, d = ?s, n = 42, neg = -7i64, f = 2.5, t = true, "m {s}");
            }
            tracing::warn!(target: "a target", "target with a space");
            let span = tracing::info_span!("request", id = 7u64, path = "/a b");
            span.in_scope(|| {
                let inner = tracing::info_span!("db", table = "users");
                inner.in_scope(|| tracing::error!(rows = 0, "in two spans"))
            });
        },
    );
    assert_eq!(got.len(), NASTY.len() + 2);
    for (line, s) in got.iter().zip(NASTY) {
        assert!(!line.chars().any(char::is_control), "{line:?}");
        let kv = parse_logfmt(line);
        let keys: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "target",
                "message",
                "v",
                "d",
                "n",
                "neg",
                "f",
                "t"
            ],
            "{line}"
        );
        let m: BTreeMap<_, _> = kv.into_iter().collect();
        assert!(chrono::DateTime::parse_from_rfc3339(&m["timestamp"]).is_ok());
        assert_eq!(m["level"], "INFO");
        assert_eq!(m["target"], "formats");
        assert_eq!(m["message"], format!("m {s}"));
        assert_eq!(m["v"], s, "{line}");
        assert_eq!(m["d"], format!("{s:?}"), "{line}");
        assert_eq!(
            (&*m["n"], &*m["neg"], &*m["f"], &*m["t"]),
            ("42", "-7", "2.5", "true")
        );
    }
    let target = parse_logfmt(&got[NASTY.len()]);
    assert_eq!(target[2], ("target".into(), "a target".into()));
    let spans = parse_logfmt(&got[NASTY.len() + 1]);
    let keys: Vec<(&str, &str)> = spans[3..]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("message", "in two spans"),
            ("rows", "0"),
            ("spans", "request:db"),
            ("id", "7"),
            ("path", "/a b"),
            ("table", "users"),
        ]
    );
}

#[test]
fn logfmt_honours_renames_static_fields_and_fmt_options() {
    let got = lines(
        |b| {
            b.format(Format::Logfmt)
                .rename_key("timestamp", "time")
                .rename_key("message", "msg")
                .with_target(false)
                .with_line_number(true)
                .with_thread_names(true)
                .static_field("service", "checkout")
                .static_field("env", "prod eu")
        },
        || tracing::info!(k = "v", "hello"),
    );
    let kv = parse_logfmt(&got[0]);
    let keys: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "time",
            "level",
            "line_number",
            "msg",
            "k",
            "threadName",
            "service",
            "env"
        ]
    );
    assert_eq!(kv[3].1, "hello");
    assert_eq!(
        kv[5].1,
        "logfmt_honours_renames_static_fields_and_fmt_options"
    );
    assert_eq!(kv[7].1, "prod eu");
}

#[test]
fn text_layouts_write_static_fields_last() {
    for format in [Format::Text, Format::Compact] {
        let got = lines(
            |b| b.format(format).static_field("service", "checkout"),
            || tracing::info!(k = 1, "hello"),
        );
        assert!(
            got[0].ends_with(": hello k=1 service=checkout"),
            "{format:?}: {}",
            got[0]
        );
    }
}

#[test]
fn options_that_cannot_apply_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let b = || FileSink::builder(tmp.path(), "app");
    let m = refused(b().rename_key("severity", "level"), "rename_key");
    assert!(
        m.contains("\"severity\" is not a key that can be renamed"),
        "{m}"
    );
    let m = refused(b().rename_key("level", "target"), "rename_key");
    assert!(
        m.contains("two top-level keys would be named \"target\""),
        "{m}"
    );
    refused(b().rename_key("level", ""), "rename_key");
    refused(b().rename_key("level", "a\nb"), "rename_key");
    let m = refused(b().static_field("level", "x"), "static_field");
    assert!(m.contains("already a key of every record"), "{m}");
    refused(
        b().static_field("a", "1").static_field("a", "2"),
        "static_field",
    );
    refused(b().static_field("", "1"), "static_field");
    refused(
        b().with_file(true).static_field("filename", "x"),
        "static_field",
    );
    // A renamed key frees its old name, and `fields` is no top-level key once flattened.
    let (_layer, guard) = b()
        .rename_key("level", "severity")
        .static_field("level", "x")
        .build()
        .unwrap();
    drop(guard);
    let m = refused(
        b().format(Format::Text).flatten_event(true),
        "flatten_event",
    );
    assert!(m.contains("JSON format only"), "{m}");
    refused(
        b().format(Format::Logfmt).with_span_list(false),
        "with_span_list",
    );
    refused(
        b().format(Format::Compact).with_current_span(false),
        "with_current_span",
    );
    refused(
        b().format(Format::Text).rename_key("level", "lvl"),
        "rename_key",
    );
    refused(
        b().format(Format::Logfmt).static_field("a b", "x"),
        "static_field",
    );
    refused(
        b().format(Format::Logfmt).rename_key("level", "log level"),
        "rename_key",
    );
    #[cfg(not(feature = "opentelemetry"))]
    {
        let m = refused(b().with_opentelemetry_ids(true), "with_opentelemetry_ids");
        assert!(m.contains("`opentelemetry` feature"), "{m}");
    }
}

/// With no timestamp, level or target, a logfmt line starts with the message, and a JSON
/// object with its first field: no stray separator either way.
#[test]
fn lines_without_a_head_start_with_their_first_pair() {
    let got = lines(
        |b| {
            b.format(Format::Logfmt)
                .without_time()
                .with_level(false)
                .with_target(false)
        },
        || {
            tracing::info!(k = 1, "hello");
            tracing::info!(k = 2);
        },
    );
    assert_eq!(got, ["message=hello k=1", "k=2"]);
    let got = lines(
        |b| {
            b.without_time()
                .with_level(false)
                .with_target(false)
                .flatten_event(true)
                .static_field("service", "checkout")
        },
        || {
            tracing::info!(k = 1, "hello");
            tracing::info!(parent: None, "");
        },
    );
    assert_eq!(
        got,
        [
            r#"{"message":"hello","k":1,"service":"checkout"}"#,
            r#"{"message":"","service":"checkout"}"#
        ]
    );
}
