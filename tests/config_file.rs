//! Settings from a configuration file (the `serde` feature): every setting reads from TOML in
//! its one-line form, environment-style overrides go through `set`, and every bad value is
//! refused with an error naming the key and quoting the value.
#![cfg(feature = "serde")]

mod platform_support;

use std::time::Duration;

use tracing_subscriber::prelude::*;

use tracing_filesink::{
    Compression, ErrorKind, FileSinkConfig, Format, Fsync, Overflow, Retention, Rotation,
    TimeFormat, TimeZone,
};

fn full(dir: &std::path::Path) -> String {
    format!(
        r#"
dir = {dir:?}
stem = "app"
format = "text"
rotation = "64 MiB or daily"
compression = "gzip 9"
retention = "30 files, 7 days"
time_zone = "+05:30"
time_format = "rfc3339 millis"
overflow = "block for 100 ms"
fsync = "on error"
queue_capacity = 1024
queue_bytes = "8 MiB"
file_mode = 0o640
dir_mode = "0750"
shutdown_timeout = "2 s"
compress_after = 1
rotate_on_startup = true
flush_on_panic = true
flush_on_exit = false
"#
    )
}

#[test]
fn every_setting_reads_from_toml() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let c: FileSinkConfig = toml::from_str(&full(&dir)).unwrap();
    assert_eq!(c.dir, dir);
    assert_eq!(c.stem, "app");
    assert_eq!(c.format, Some(Format::Text));
    assert_eq!(
        c.rotation,
        Some(Rotation::size(64 << 20).or(Rotation::daily()))
    );
    assert_eq!(c.compression, Some(Compression::gzip().level(9)));
    assert_eq!(
        c.retention,
        Some(Retention::files(30).max_age(Duration::from_secs(7 * 86_400)))
    );
    assert_eq!(c.time_zone, Some(TimeZone::fixed(5 * 3600 + 30 * 60)));
    assert_eq!(c.time_format, Some(TimeFormat::rfc3339_millis()));
    assert_eq!(
        c.overflow,
        Some(Overflow::BlockFor(Duration::from_millis(100)))
    );
    assert_eq!(c.fsync, Some(Fsync::OnLevel(tracing::Level::ERROR)));
    assert_eq!(c.queue_capacity, Some(1024));
    assert_eq!(c.queue_bytes, Some(8 << 20));
    assert_eq!(c.file_mode, Some(0o640));
    assert_eq!(c.dir_mode, Some(0o750));
    assert_eq!(c.shutdown_timeout, Some(Duration::from_secs(2)));
    assert_eq!(c.compress_after, Some(1));
    assert_eq!(c.rotate_on_startup, Some(true));
    assert_eq!(c.flush_on_panic, Some(true));
    assert_eq!(c.flush_on_exit, Some(false));

    // The builder gets them: the directory and the file have the configured modes.
    let (_layer, guard) = c.builder().build().unwrap();
    platform_support::assert_mode(&dir, 0o750, "dir_mode");
    platform_support::assert_mode(guard.active_path(), 0o640, "file_mode");
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn settings_left_out_keep_the_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let c: FileSinkConfig =
        toml::from_str(&format!("dir = {:?}\nstem = \"app\"\n", tmp.path())).unwrap();
    assert_eq!(c.rotation, None);
    let (_layer, guard) = c.builder().build().unwrap();
    platform_support::assert_mode(guard.active_path(), 0o600, "the default file mode");
}

/// Each bad value is refused; the message names the key and quotes the value.
#[test]
fn bad_values_name_the_key_and_the_value() {
    let cases = [
        (
            "rotation",
            "\"64 MB or fortnightly\"",
            "64 MB or fortnightly",
        ),
        ("rotation", "\"64 MiBs\"", "64 MiBs"),
        ("retention", "\"thirty files\"", "thirty files"),
        ("compression", "\"zstd\"", "zstd"),
        ("format", "\"yaml\"", "yaml"),
        ("time_zone", "\"Mars/Olympus\"", "Mars/Olympus"),
        ("overflow", "\"wait\"", "wait"),
        ("fsync", "\"sometimes\"", "sometimes"),
        ("queue_capacity", "-1", "-1"),
        ("queue_capacity", "\"lots\"", "lots"),
        ("queue_bytes", "\"64 MB/s\"", "64 MB/s"),
        ("file_mode", "\"rw-r-----\"", "rw-r-----"),
        ("shutdown_timeout", "\"soon\"", "soon"),
        ("flush_on_exit", "\"maybe\"", "maybe"),
        ("rotate_on_startup", "3", "3"),
        ("stem", "7", "7"),
    ];
    for (key, value, shown) in cases {
        let text = format!("dir = \"logs\"\nstem = \"app\"\n{key} = {value}\n");
        let text = if key == "stem" {
            format!("dir = \"logs\"\nstem = {value}\n")
        } else {
            text
        };
        let err = toml::from_str::<FileSinkConfig>(&text)
            .expect_err(&format!("{key} = {value} was accepted"))
            .to_string();
        assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        assert!(err.contains(shown), "{key}: {err}");
    }
}

#[test]
fn unknown_and_missing_keys_are_named() {
    let err =
        toml::from_str::<FileSinkConfig>("dir = \"logs\"\nstem = \"app\"\nrotaton = \"daily\"\n")
            .unwrap_err()
            .to_string();
    assert!(err.contains("unknown setting `rotaton`"), "{err}");
    let err = toml::from_str::<FileSinkConfig>("stem = \"app\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("dir"), "{err}");
}

/// Values a file reads but `build()` refuses still name the setting.
#[test]
fn values_refused_by_build_name_the_setting() {
    let c: FileSinkConfig =
        toml::from_str("dir = \"logs\"\nstem = \"app\"\nretention = \"0 files\"\n").unwrap();
    let e = c.builder().build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert_eq!(e.setting(), Some("retention"));
}

/// Environment-style overrides: strings for every key, the same errors.
#[test]
fn set_overrides_from_strings() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c: FileSinkConfig = toml::from_str(&full(tmp.path())).unwrap();
    c.set("rotation", "hourly").unwrap();
    c.set("queue_capacity", "64").unwrap();
    c.set("file_mode", "0600").unwrap();
    c.set("flush_on_exit", "true").unwrap();
    c.set("dir", "/somewhere/else").unwrap();
    assert_eq!(c.rotation, Some(Rotation::hourly()));
    assert_eq!(c.queue_capacity, Some(64));
    assert_eq!(c.file_mode, Some(0o600));
    assert_eq!(c.flush_on_exit, Some(true));
    assert_eq!(c.dir, std::path::Path::new("/somewhere/else"));

    let e = c.set("rotation", "sometimes").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert_eq!(e.setting(), Some("rotation"));
    assert!(e.to_string().contains("\"sometimes\""), "{e}");
    let e = c.set("queue_capacity", "-5").unwrap_err();
    assert_eq!(e.setting(), Some("queue_capacity"));
    assert!(e.to_string().contains("-5"), "{e}");
    let e = c.set("colour", "blue").unwrap_err();
    assert!(e.to_string().contains("`colour`"), "{e}");
    // A failed set leaves the value as it was.
    assert_eq!(c.rotation, Some(Rotation::hourly()));
}

/// The setting types also deserialize on their own, inside an application's own struct.
#[test]
fn setting_types_deserialize_on_their_own() {
    let r: Rotation = serde_json::from_str("\"64 MiB or daily\"").unwrap();
    assert_eq!(r, Rotation::size(64 << 20).or(Rotation::daily()));
    let r: Retention = serde_json::from_str("\"7 days\"").unwrap();
    assert_eq!(
        r,
        Retention::keep_all().max_age(Duration::from_secs(7 * 86_400))
    );
    let err = serde_json::from_str::<Retention>("\"7 eons\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`retention`") && err.contains("7 eons"),
        "{err}"
    );
    assert!(serde_json::from_str::<Rotation>("64").is_err());
}

/// `examples/config_file.rs` as a user runs it: a TOML file, an environment override, and a
/// bad override refused with the key and the value.
#[test]
fn the_example_reads_a_file_and_honours_the_environment() {
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples/config_file");
    assert!(
        example.exists(),
        "{} is missing: `cargo test --features serde` builds the examples",
        example.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let settings = tmp.path().join("settings.toml");
    let logs = tmp.path().join("logs");
    std::fs::write(
        &settings,
        format!("[log]\ndir = {logs:?}\nstem = \"svc\"\nformat = \"json\"\n"),
    )
    .unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(&example);
        cmd.arg(&settings);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[("FILESINK_FORMAT", "text")]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(logs.join("svc.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[3].ends_with(" WARN some_dependency: a record from the log crate"),
        "the override (text) wins over the file (json): {text}"
    );

    let out = run(&[("FILESINK_ROTATION", "64 MB or fortnightly")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FILESINK_ROTATION") && stderr.contains("64 MB or fortnightly"),
        "{stderr}"
    );
}

/// The record options read from a file under the builder's names, overridden from strings as
/// an environment would, and the sink built from them writes what they say.
#[test]
fn record_options_read_from_toml_and_strings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut c: FileSinkConfig = toml::from_str(&format!(
        r#"
dir = {dir:?}
stem = "app"
file_extension = "jsonl"
time_zone = "Europe/Paris"
flatten_event = true
with_current_span = false
with_span_list = false
with_target = false
with_level = true
with_file = true
with_line_number = "yes"
with_thread_names = false
with_thread_ids = true
with_opentelemetry_ids = false
rename_key = {{ timestamp = "@timestamp", level = "log.level" }}
static_field = {{ "service.name" = "checkout", "service.version" = "1.4.2" }}
"#
    ))
    .unwrap();
    assert_eq!(c.file_extension.as_deref(), Some("jsonl"));
    assert_eq!(c.time_zone, Some(TimeZone::iana("Europe/Paris").unwrap()));
    assert_eq!(
        (
            c.flatten_event,
            c.with_current_span,
            c.with_line_number,
            c.with_thread_ids
        ),
        (Some(true), Some(false), Some(true), Some(true))
    );
    // A TOML table's entries come in the order the deserializer gives (`toml` sorts them
    // unless built with `preserve_order`), so they are compared as sets.
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<_> = v
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        v.sort();
        v
    };
    c.rename_key.sort();
    c.static_field.sort();
    assert_eq!(
        c.rename_key,
        pairs(&[("timestamp", "@timestamp"), ("level", "log.level")])
    );
    assert_eq!(
        c.static_field,
        pairs(&[("service.name", "checkout"), ("service.version", "1.4.2")])
    );
    // Environment-style overrides: one entry, a whole list, a flag.
    c.set("static_field.service.version", "1.5.0").unwrap();
    c.set("static_field.env", "prod").unwrap();
    c.set(
        "rename_key",
        "timestamp=@timestamp, level=log.level, message=msg",
    )
    .unwrap();
    c.set("with_thread_ids", "false").unwrap();
    c.set("without_time", "no").unwrap();
    assert_eq!(c.without_time, Some(false));
    c.static_field.sort();
    assert_eq!(
        c.static_field,
        pairs(&[
            ("service.name", "checkout"),
            ("service.version", "1.5.0"),
            ("env", "prod")
        ])
    );

    let (layer, guard) = c.builder().build().unwrap();
    assert!(guard.active_path().ends_with("app.jsonl"));
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!(k = 1, "hello"));
    guard.flush().unwrap();
    let text = std::fs::read_to_string(guard.active_path()).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "@timestamp",
        "log.level",
        "msg",
        "k",
        "filename",
        "line_number",
        "service.name",
        "service.version",
        "env",
    ];
    expected.sort();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, expected, "{text}");
    assert_eq!(v["msg"], "hello");
    assert_eq!(v["service.version"], "1.5.0");
    let ts = v["@timestamp"].as_str().unwrap();
    assert!(ts.ends_with("+01:00") || ts.ends_with("+02:00"), "{ts}");
    guard.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn bad_record_options_name_the_key() {
    let base = "dir = \"/tmp\"\nstem = \"app\"\n";
    for (line, key) in [
        ("with_file = \"maybe\"", "with_file"),
        ("static_field = 3", "static_field"),
        ("static_field = { a = 1 }", "static_field"),
        ("rename_key = \"level\"", "rename_key"),
        ("time_zone = \"Europe/Pariss\"", "time_zone"),
        ("file_extension = 1", "file_extension"),
    ] {
        let e = toml::from_str::<FileSinkConfig>(&format!("{base}{line}\n"))
            .expect_err(line)
            .to_string();
        assert!(e.contains(key), "{line}: {e}");
    }
    let mut c: FileSinkConfig = toml::from_str(base).unwrap();
    let e = c.set("with_level", "perhaps").unwrap_err();
    assert_eq!(e.setting(), Some("with_level"), "{e}");
    let e = c.set("rename_key", "level").unwrap_err();
    assert_eq!(e.setting(), Some("rename_key"), "{e}");
    // Names are checked by build(), like the builder's.
    c.set("rename_key.lvl", "x").unwrap();
    let e = c.builder().build().unwrap_err();
    assert_eq!(e.setting(), Some("rename_key"), "{e}");
}

/// `base` plus `line`, read: the error's text.
fn toml_error(line: &str) -> String {
    toml::from_str::<FileSinkConfig>(&format!("dir = \"logs\"\nstem = \"app\"\n{line}\n"))
        .expect_err(line)
        .to_string()
}

/// `M` is minutes to some and megabytes to others: sizes and durations take units that
/// cannot be mistaken for each other, the same in rotation and retention, and an ambiguous
/// one is refused with what to write instead.
#[test]
fn sizes_and_durations_cannot_be_mistaken() {
    let mut c = FileSinkConfig::default();
    for (key, value, hints) in [
        (
            "retention",
            "500 M",
            &["\"500 MB\"", "\"500 MiB\"", "\"500 min\""][..],
        ),
        ("retention", "500m", &["\"500 MB\"", "\"500 min\""]),
        ("retention", "30 files, 2 G", &["\"2 GB\"", "\"2 GiB\""]),
        (
            "rotation",
            "64 M",
            &["\"64 MB\"", "\"64 MiB\"", "\"every 64 min\""],
        ),
        ("rotation", "every 5 m", &["\"5 min\""]),
        ("shutdown_timeout", "5 m", &["\"5 min\""]),
        ("queue_bytes", "8 M", &["\"8 MB\"", "\"8 MiB\""]),
        ("retention", "30", &["\"30 files\"", "\"30 B\""]),
    ] {
        let e = c.set(key, value).expect_err(value);
        assert_eq!(e.setting(), Some(key), "{e}");
        let msg = e.to_string();
        for hint in hints {
            assert!(msg.contains(hint), "{key} = {value:?}: no {hint} in {msg}");
        }
    }
    // The units that say what they mean read the same in both settings.
    c.set("retention", "500 MB, 500 min").unwrap();
    assert_eq!(
        c.retention,
        Some(
            Retention::keep_all()
                .max_bytes(500_000_000)
                .max_age(Duration::from_secs(500 * 60))
        )
    );
    c.set("rotation", "500 MiB or every 500 min").unwrap();
    assert_eq!(
        c.rotation,
        Some(Rotation::size(500 << 20).or(Rotation::every(Duration::from_secs(500 * 60))))
    );
}

/// Values set from strings are quoted once in errors, numbers and durations included.
#[test]
fn set_quotes_the_value_once() {
    let mut c = FileSinkConfig::default();
    for key in [
        "queue_capacity",
        "queue_bytes",
        "shutdown_timeout",
        "file_mode",
        "with_level",
    ] {
        let msg = c.set(key, "-1").unwrap_err().to_string();
        assert!(msg.contains("cannot read \"-1\""), "{key}: {msg}");
        assert!(!msg.contains("\\\"-1\\\""), "{key}: {msg}");
    }
}

/// A table, an array, a float or a date where a setting takes a string or a number is an
/// error naming the key.
#[test]
fn a_value_of_the_wrong_type_names_the_key() {
    for line in [
        "retention = { files = 3 }",
        "rotation = [\"daily\"]",
        "queue_bytes = 1.5",
        "rotation = 64.0",
        "shutdown_timeout = 1979-05-27",
        "with_level = [true]",
        "static_field = [\"a=b\"]",
    ] {
        let key = line.split(' ').next().unwrap();
        let msg = toml_error(line);
        assert!(msg.contains(&format!("`{key}`")), "{line}: {msg}");
    }
}

/// Every builder setting is a key: each `pub fn` of the builder (but the test clock) is
/// known to `set`.
#[test]
fn every_builder_setting_is_a_key() {
    let source = include_str!("../src/builder.rs");
    let mut c = FileSinkConfig::default();
    let mut names = Vec::new();
    for line in source.lines() {
        let Some(rest) = line.trim().strip_prefix("pub fn ") else {
            continue;
        };
        let name = rest.split(['(', '<']).next().unwrap();
        if ["builder", "build", "build_writer", "clock"].contains(&name) {
            continue;
        }
        names.push(name);
        if let Err(e) = c.set(name, "") {
            assert_eq!(e.setting(), Some(name), "`{name}` is not a key: {e}");
        }
    }
    assert!(names.contains(&"stall_timeout"), "{names:?}");
    c.set("stall_timeout", "10 s").unwrap();
    assert_eq!(c.stall_timeout, Some(Duration::from_secs(10)));
    let c: FileSinkConfig =
        toml::from_str("dir = \"logs\"\nstem = \"app\"\nstall_timeout = \"500 ms\"\n").unwrap();
    assert_eq!(c.stall_timeout, Some(Duration::from_millis(500)));
}

/// A size written as a TOML integer reads as bytes wherever a size is the only reading
/// (`rotation` like `queue_bytes`); where it could be a count too (`retention`) the error
/// says what to write.
#[test]
fn integers_read_as_bytes_where_that_is_the_only_reading() {
    let c: FileSinkConfig = toml::from_str(
        "dir = \"logs\"\nstem = \"app\"\nrotation = 67108864\nqueue_bytes = 1048576\n",
    )
    .unwrap();
    assert_eq!(c.rotation, Some(Rotation::size(64 << 20)));
    assert_eq!(c.queue_bytes, Some(1 << 20));
    let msg = toml_error("retention = 30");
    assert!(
        msg.contains("`retention`") && msg.contains("\"30 files\""),
        "{msg}"
    );
}

/// Errors a configuration file's user sees say what to write in the file: no Rust names.
#[test]
fn errors_speak_the_file_s_language() {
    for (line, key) in [
        ("retention = \"0 files\"", "retention"),
        ("retention = \"0 B\"", "retention"),
        ("retention = \"0 s\"", "retention"),
        ("fsync = \"every 0 s\"", "fsync"),
        ("rotation = \"every 0 s\"", "rotation"),
        ("rotation = 0", "rotation"),
        ("compression = \"gzip 10\"", "compression"),
        ("dir = \"\"", "dir"),
    ] {
        let text = match line.strip_prefix("dir = ") {
            Some(_) => format!("stem = \"app\"\n{line}\n"),
            None => format!("dir = \"logs\"\nstem = \"app\"\n{line}\n"),
        };
        let c: FileSinkConfig = match toml::from_str(&text) {
            Ok(c) => c,
            Err(e) => panic!("{line}: {e}"),
        };
        let e = c.builder().build().unwrap_err();
        assert_eq!(e.setting(), Some(key), "{line}: {e}");
        let msg = e.to_string();
        assert!(!msg.contains("::") && !msg.contains("()"), "{line}: {msg}");
    }
}

/// `file_mode = 640` is decimal in TOML (0o1200): the error says to write octal.
#[test]
fn a_decimal_mode_in_toml_gets_a_hint() {
    for (line, hint) in [("file_mode = 640", "0o640"), ("dir_mode = 750", "0o750")] {
        let msg = toml_error(line);
        assert!(
            msg.contains(hint) && msg.contains("\"0") && msg.contains("octal"),
            "{line}: {msg}"
        );
    }
    // The decimal spelling of valid bits, and octal strings, still read.
    let c: FileSinkConfig =
        toml::from_str("dir = \"logs\"\nstem = \"app\"\nfile_mode = 416\ndir_mode = \"750\"\n")
            .unwrap();
    assert_eq!((c.file_mode, c.dir_mode), (Some(0o640), Some(0o750)));
}
