//! No string panics a setting: every `FromStr` type of the crate and, with the `serde`
//! feature, `FileSinkConfig::set` for every key take arbitrary strings (non-ASCII, odd
//! units, huge numbers, control characters) and either read them or give an error of kind
//! `InvalidConfig` that names the key and quotes the value once. What reads also goes
//! through `build()`'s validation without panicking.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use proptest::prelude::*;
use tracing_filesink::{
    Builder, Compression, ErrorKind, FileSink, Format, Fsync, Overflow, Retention, Rotation,
    TimeFormat, TimeZone,
};

/// Pieces the parsers look for, with neighbours that trip byte-indexed slicing: multi-byte
/// letters, letters whose lowercase is longer (`İ`), the Kelvin sign, digits of other scripts.
const PIECES: &[&str] = &[
    "+",
    "-",
    ":",
    ",",
    "/",
    ".",
    " ",
    "  ",
    "\t",
    "0",
    "00",
    "05",
    "12",
    "30",
    "60",
    "640",
    "0o",
    "99999999999999999999",
    "utc",
    "UTC",
    "z",
    "local",
    "or",
    " or ",
    " and ",
    "every ",
    "block for ",
    "on ",
    "never",
    "always",
    "daily",
    "gzip",
    "gzip:",
    "level",
    "none",
    "files",
    "file",
    "free",
    "keep all",
    "B",
    "k",
    "K",
    "kB",
    "MiB",
    "M",
    "m",
    "min",
    "ms",
    "s",
    "h",
    "days",
    "weeks",
    "GiB",
    "TB",
    "error",
    "warning",
    "json",
    "rfc3339",
    "millis",
    "=",
    "Europe/Paris",
    "ü",
    "é",
    "ß",
    "İ",
    "\u{212a}",
    "٣",
    "日本",
    "\u{0}",
    "\u{200b}",
    "\"",
    "\\",
    "é:",
    "+é",
    "+aüa",
    "-üü",
    "+0ü:",
    "UTC+ü",
    "5 ü",
];

/// Strings made of the pieces above, plus wholly arbitrary ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(proptest::sample::select(PIECES), 1..4)
            .prop_map(|v| v.concat()),
        2 => proptest::collection::vec(proptest::sample::select(PIECES), 0..8)
            .prop_map(|v| v.concat()),
        1 => "\\PC{0,16}",
        1 => any::<String>(),
    ]
}

/// `e` is an `InvalidConfig` error naming `key` that quotes `value` once.
fn check_error(e: &tracing_filesink::Error, key: &str, value: &str) {
    let msg = e.to_string();
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidConfig,
        "{key} = {value:?}: {msg}"
    );
    assert_eq!(e.setting(), Some(key), "{key} = {value:?}: {msg}");
    assert!(
        msg.contains(&format!("`{key}`")),
        "the error does not name `{key}`: {msg}"
    );
    let quoted = format!("{value:?}");
    assert!(
        msg.contains(&quoted),
        "the error does not quote {quoted}: {msg}"
    );
    assert!(
        !msg.contains(&format!("{quoted:?}")),
        "the error quotes {quoted} twice: {msg}"
    );
}

/// A directory path under a plain file: a builder whose settings pass validation fails right
/// after it, creating the directory, without starting a sink.
fn unbuildable_dir(tmp: &Path) -> PathBuf {
    let file = tmp.join("a-file");
    if !file.exists() {
        std::fs::write(&file, b"").unwrap();
    }
    file.join("logs")
}

/// Reads `s` as a `T`; a value that reads goes through `build()`'s validation.
fn parse_and_validate<T>(key: &str, s: &str, set: impl FnOnce(Builder, T) -> Builder)
where
    T: FromStr<Err = tracing_filesink::Error>,
{
    match s.parse::<T>() {
        Err(e) => check_error(&e, key, s),
        Ok(v) => {
            let tmp = tempfile::tempdir().unwrap();
            let b = set(FileSink::builder(unbuildable_dir(tmp.path()), "app"), v);
            let e = b
                .build()
                .expect_err("a directory under a file never builds");
            assert!(e.setting().is_some(), "{key} = {s:?}: {e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_from_str_takes_any_string(s in text()) {
        parse_and_validate::<Rotation>("rotation", &s, Builder::rotation);
        parse_and_validate::<Retention>("retention", &s, Builder::retention);
        parse_and_validate::<Compression>("compression", &s, Builder::compression);
        parse_and_validate::<Format>("format", &s, Builder::format);
        parse_and_validate::<TimeZone>("time_zone", &s, Builder::time_zone);
        parse_and_validate::<TimeFormat>("time_format", &s, Builder::time_format);
        parse_and_validate::<Overflow>("overflow", &s, Builder::overflow);
        parse_and_validate::<Fsync>("fsync", &s, Builder::fsync);
    }
}

/// The strings that panicked `TimeZone::from_str` by slicing inside a character.
#[test]
fn non_ascii_offsets_are_refused_not_panics() {
    for s in [
        "+aüa",
        "-üü",
        "UTC+éé",
        "+0ü0",
        "+ü:00",
        "+\u{212a}\u{212a}",
    ] {
        let e = s.parse::<TimeZone>().expect_err(s);
        check_error(&e, "time_zone", s);
    }
}

#[cfg(feature = "serde")]
mod config {
    use super::*;
    use tracing_filesink::FileSinkConfig;

    /// Every key `FileSinkConfig` reads, and one entry of each list.
    const KEYS: &[&str] = &[
        "dir",
        "stem",
        "format",
        "rotation",
        "compression",
        "retention",
        "time_zone",
        "time_format",
        "overflow",
        "fsync",
        "queue_capacity",
        "queue_bytes",
        "file_mode",
        "dir_mode",
        "shutdown_timeout",
        "stall_timeout",
        "compress_after",
        "rotate_on_startup",
        "flush_on_panic",
        "flush_on_exit",
        "file_extension",
        "without_time",
        "flatten_event",
        "with_current_span",
        "with_span_list",
        "with_target",
        "with_level",
        "with_file",
        "with_line_number",
        "with_thread_names",
        "with_thread_ids",
        "with_opentelemetry_ids",
        "rename_key",
        "static_field",
        "rename_key.level",
        "static_field.service",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn set_takes_any_string_for_every_key(s in text()) {
            let tmp = tempfile::tempdir().unwrap();
            for key in KEYS {
                let mut c = FileSinkConfig::default();
                match c.set(key, &s) {
                    Err(e) => {
                        let setting = key.split('.').next().unwrap();
                        check_error(&e, setting, &s);
                    }
                    Ok(()) => {
                        // Whatever was read goes through build()'s validation unharmed.
                        c.dir = unbuildable_dir(tmp.path());
                        if c.stem.is_empty() || *key != "stem" {
                            c.stem = "app".into();
                        }
                        let e = c.builder().build().expect_err("never builds");
                        assert!(e.setting().is_some(), "{key} = {s:?}: {e}");
                    }
                }
            }
        }
    }
}
