//! Settings from a configuration file or the environment (the `serde` feature).
//!
//! [`FileSinkConfig`] reads every builder setting from any serde format (TOML, YAML, JSON)
//! in the one-line forms of `parse.rs`, and [`FileSinkConfig::set`] applies the same forms
//! from strings (environment variables, command-line flags). Every error names the key and
//! quotes the value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::builder::{Builder, FileSink};
use crate::error::Error;
use crate::format::{Format, TimeFormat, TimeZone};
use crate::parse::{bad, bad_term, duration, size, unit_hint, Want};
use crate::retain::Retention;
use crate::rotate::Rotation;
use crate::settings::Compression;
use crate::settings::Fsync;
use crate::settings::Overflow;
use crate::settings::{Backtrace, RateLimit, Shedding};

/// Every [`Builder`] setting, as read from a configuration file; a setting left out keeps
/// the builder's default. Keys are the builder's method names; values take the one-line
/// forms of the settings' `FromStr` implementations. Sizes and durations take units that
/// cannot be mistaken for each other: sizes `B`, `kB`/`MB`/`GB`/`TB` (powers of 1000) and
/// `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024); durations `ms`, `s`, `min`, `h`, `days`,
/// `weeks`. A bare `K`, `M`, `G` or `T` is refused (is `M` minutes or megabytes, decimal or
/// binary?) with what to write instead, and so is a retention limit without a unit (`"30"`:
/// files or bytes?). A size may also be a whole number of bytes (`rotation = 67108864`,
/// `queue_bytes = 1048576`).
///
/// ```toml
/// dir = "/var/log/app"
/// stem = "app"
/// format = "json"                  # "text", "compact", "logfmt"
/// rotation = "64 MiB or daily"     # "never", "hourly", "every 6 hours", ...
/// compression = "gzip"             # "none", "gzip 9"
/// retention = "30 files, 7 days"   # "10 GiB", "5 GiB free", "keep all"
/// time_zone = "Europe/Paris"       # "utc", "local", "+05:30"
/// time_format = "rfc3339 millis"   # or a strftime pattern
/// overflow = "block"               # "drop", "block for 100 ms"
/// fsync = "on error"               # "never", "always", "every 1 s"
/// shedding = "below warn"          # "off", "below info at 90%"
/// rate_limit = "100 per 1 s"       # "off"
/// backtrace = "last 32"            # "off", "last 32 from trace"
/// queue_capacity = 65536
/// queue_bytes = "64 MiB"           # or a number of bytes
/// file_mode = 0o640                # or "0640" (octal; a decimal 640 is refused)
/// dir_mode = 0o750                 # default: from file_mode (0o640 -> 0o750)
/// shutdown_timeout = "5 s"
/// stall_timeout = "2 s"
/// fsync_stall_timeout = "30 s"
/// compress_after = 1
/// rotate_on_startup = false
/// flush_on_panic = false
/// flush_on_exit = true
/// file_extension = "jsonl"
/// without_time = false
/// flatten_event = true             # and with_current_span, with_span_list, with_target,
/// with_line_number = true          # with_level, with_file, with_thread_names,
///                                  # with_thread_ids, with_opentelemetry_ids
/// rename_key = { timestamp = "@timestamp", level = "log.level" }
/// static_field = { "service.name" = "checkout" }
/// ```
///
/// ```
/// use tracing_filesink::FileSinkConfig;
/// # let tmp = tempfile::tempdir()?;
/// # let dir = tmp.path().display().to_string();
/// let mut config: FileSinkConfig = serde_json::from_str(&format!(
///     r#"{{"dir": {dir:?}, "stem": "app", "rotation": "64 MiB or daily", "retention": "30 files"}}"#
/// ))?;
/// config.set("compression", "gzip")?; // e.g. from an environment variable
/// let (layer, guard) = config.builder().build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct FileSinkConfig {
    /// The log directory (required).
    pub dir: PathBuf,
    /// The file stem (required): the active file is `<dir>/<stem>.log`.
    pub stem: String,
    /// [`Builder::format`].
    pub format: Option<Format>,
    /// [`Builder::rotation`].
    pub rotation: Option<Rotation>,
    /// [`Builder::compression`].
    pub compression: Option<Compression>,
    /// [`Builder::retention`].
    pub retention: Option<Retention>,
    /// [`Builder::time_zone`].
    pub time_zone: Option<TimeZone>,
    /// [`Builder::time_format`].
    pub time_format: Option<TimeFormat>,
    /// [`Builder::overflow`].
    pub overflow: Option<Overflow>,
    /// [`Builder::fsync`].
    pub fsync: Option<Fsync>,
    /// [`Builder::shedding`].
    pub shedding: Option<Shedding>,
    /// [`Builder::rate_limit`].
    pub rate_limit: Option<RateLimit>,
    /// [`Builder::backtrace`].
    pub backtrace: Option<Backtrace>,
    /// [`Builder::queue_capacity`].
    pub queue_capacity: Option<usize>,
    /// [`Builder::queue_bytes`].
    pub queue_bytes: Option<usize>,
    /// [`Builder::file_mode`].
    pub file_mode: Option<u32>,
    /// [`Builder::dir_mode`].
    pub dir_mode: Option<u32>,
    /// [`Builder::shutdown_timeout`].
    pub shutdown_timeout: Option<Duration>,
    /// [`Builder::stall_timeout`].
    pub stall_timeout: Option<Duration>,
    /// [`Builder::fsync_stall_timeout`].
    pub fsync_stall_timeout: Option<Duration>,
    /// [`Builder::compress_after`].
    pub compress_after: Option<usize>,
    /// [`Builder::rotate_on_startup`].
    pub rotate_on_startup: Option<bool>,
    /// [`Builder::flush_on_panic`].
    pub flush_on_panic: Option<bool>,
    /// [`Builder::flush_on_exit`].
    pub flush_on_exit: Option<bool>,
    /// [`Builder::file_extension`].
    pub file_extension: Option<String>,
    /// [`Builder::without_time`] when `true`.
    pub without_time: Option<bool>,
    /// [`Builder::flatten_event`].
    pub flatten_event: Option<bool>,
    /// [`Builder::with_current_span`].
    pub with_current_span: Option<bool>,
    /// [`Builder::with_span_list`].
    pub with_span_list: Option<bool>,
    /// [`Builder::with_target`].
    pub with_target: Option<bool>,
    /// [`Builder::with_level`].
    pub with_level: Option<bool>,
    /// [`Builder::with_file`].
    pub with_file: Option<bool>,
    /// [`Builder::with_line_number`].
    pub with_line_number: Option<bool>,
    /// [`Builder::with_thread_names`].
    pub with_thread_names: Option<bool>,
    /// [`Builder::with_thread_ids`].
    pub with_thread_ids: Option<bool>,
    /// [`Builder::with_opentelemetry_ids`].
    pub with_opentelemetry_ids: Option<bool>,
    /// [`Builder::rename_key`], each (key, new name), in the order the file's deserializer
    /// gives a table (the `toml` crate sorts it unless built with `preserve_order`): a table in a file
    /// (`rename_key = { level = "severity" }`), `"level=severity, timestamp=time"` or
    /// `set("rename_key.level", "severity")` from a string.
    pub rename_key: Vec<(String, String)>,
    /// [`Builder::static_field`], each (key, value), written in this order (a table's order as
    /// its deserializer gives it, see `rename_key`): a table in a file
    /// (`static_field = { service = "checkout" }`), `"service=checkout, env=prod"` or
    /// `set("static_field.service", "checkout")` from a string.
    pub static_field: Vec<(String, String)>,
}

/// A value as the configuration file wrote it. Every type a format can hold has a variant,
/// so that a value of the wrong type is refused by `apply`, naming its key.
enum Raw {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Null,
    List(Vec<Raw>),
    Map(Vec<(String, Raw)>),
}

/// The key under which the `toml` crate hands a date or time to `deserialize_any`.
const TOML_DATETIME: &str = "$__toml_private_datetime";

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Bool(b) => write!(f, "{b}"),
            Raw::Int(i) => write!(f, "{i}"),
            Raw::Float(x) => write!(f, "{x:?}"),
            Raw::Str(s) => write!(f, "{s:?}"),
            Raw::Null => f.write_str("null"),
            Raw::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    write!(f, "{}{v}", if i == 0 { "" } else { ", " })?;
                }
                f.write_str("]")
            }
            Raw::Map(m) => match m.as_slice() {
                [(k, Raw::Str(date))] if k == TOML_DATETIME => f.write_str(date),
                _ => {
                    f.write_str("{")?;
                    for (i, (k, v)) in m.iter().enumerate() {
                        write!(f, "{}{k} = {v}", if i == 0 { " " } else { ", " })?;
                    }
                    f.write_str(" }")
                }
            },
        }
    }
}

impl FileSinkConfig {
    /// A builder with these settings (see [`FileSink::builder`]); `build()` validates them.
    pub fn builder(&self) -> Builder {
        let mut b = FileSink::builder(&self.dir, self.stem.clone());
        macro_rules! apply {
            ($($field:ident),*) => {$(
                if let Some(v) = self.$field.clone() {
                    b = b.$field(v);
                }
            )*};
        }
        apply!(
            format,
            rotation,
            compression,
            retention,
            time_zone,
            time_format,
            overflow,
            fsync,
            shedding,
            rate_limit,
            backtrace,
            queue_capacity,
            queue_bytes,
            file_mode,
            dir_mode,
            shutdown_timeout,
            stall_timeout,
            fsync_stall_timeout,
            compress_after,
            rotate_on_startup,
            flush_on_panic,
            flush_on_exit,
            file_extension,
            flatten_event,
            with_current_span,
            with_span_list,
            with_target,
            with_level,
            with_file,
            with_line_number,
            with_thread_names,
            with_thread_ids,
            with_opentelemetry_ids
        );
        if self.without_time == Some(true) {
            b = b.without_time();
        }
        for (k, v) in &self.rename_key {
            b = b.rename_key(k, v);
        }
        for (k, v) in &self.static_field {
            b = b.static_field(k, v);
        }
        b
    }

    /// Sets `key` (a field name, as in the configuration file) from its one-line form, as an
    /// environment variable or a command-line flag gives it: `set("rotation", "daily")`.
    /// `rename_key` and `static_field` take `"k=v, k2=v2"` (replacing the list) or one entry
    /// at a time: `set("static_field.service", "checkout")` adds or replaces `service`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming the key and
    /// quoting the value, for an unknown key or a value that does not read.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        self.apply(key, Raw::Str(value.to_string()))
    }

    fn apply(&mut self, key: &str, raw: Raw) -> Result<(), Error> {
        macro_rules! parsed {
            ($field:ident) => {
                self.$field = Some(text(stringify!($field), &raw)?.parse()?)
            };
        }
        match key {
            "dir" => self.dir = PathBuf::from(text("dir", &raw)?),
            "stem" => self.stem = text("stem", &raw)?.to_string(),
            "format" => parsed!(format),
            // A whole number of bytes, like queue_bytes.
            "rotation" => match raw {
                Raw::Int(i) => {
                    let n = u64::try_from(i).map_err(|_| refuse("rotation", &raw, ROTATION))?;
                    self.rotation = Some(Rotation::size(n));
                }
                _ => parsed!(rotation),
            },
            "compression" => parsed!(compression),
            "retention" => {
                // A number alone could be files or bytes: say what to write.
                let hint = unit_hint(&raw.to_string(), Want::SizeOrAge);
                if let (Raw::Int(_), Some(hint)) = (&raw, hint) {
                    return Err(Error::config(
                        "retention",
                        format!("cannot read {raw}: {hint}"),
                    ));
                }
                parsed!(retention)
            }
            "time_zone" => parsed!(time_zone),
            "time_format" => parsed!(time_format),
            "overflow" => parsed!(overflow),
            "fsync" => parsed!(fsync),
            "shedding" => parsed!(shedding),
            "rate_limit" => parsed!(rate_limit),
            "backtrace" => parsed!(backtrace),
            "queue_capacity" => self.queue_capacity = Some(count("queue_capacity", &raw)?),
            "queue_bytes" => self.queue_bytes = Some(bytes("queue_bytes", &raw)?),
            "file_mode" => self.file_mode = Some(mode("file_mode", &raw)?),
            "dir_mode" => self.dir_mode = Some(mode("dir_mode", &raw)?),
            "shutdown_timeout" => {
                self.shutdown_timeout = Some(time("shutdown_timeout", &raw)?);
            }
            "stall_timeout" => self.stall_timeout = Some(time("stall_timeout", &raw)?),
            "fsync_stall_timeout" => {
                self.fsync_stall_timeout = Some(time("fsync_stall_timeout", &raw)?);
            }
            "compress_after" => self.compress_after = Some(count("compress_after", &raw)?),
            "rotate_on_startup" => self.rotate_on_startup = Some(flag("rotate_on_startup", &raw)?),
            "flush_on_panic" => self.flush_on_panic = Some(flag("flush_on_panic", &raw)?),
            "flush_on_exit" => self.flush_on_exit = Some(flag("flush_on_exit", &raw)?),
            "file_extension" => {
                self.file_extension = Some(text("file_extension", &raw)?.to_string());
            }
            "without_time" => self.without_time = Some(flag("without_time", &raw)?),
            "flatten_event" => self.flatten_event = Some(flag("flatten_event", &raw)?),
            "with_current_span" => {
                self.with_current_span = Some(flag("with_current_span", &raw)?);
            }
            "with_span_list" => self.with_span_list = Some(flag("with_span_list", &raw)?),
            "with_target" => self.with_target = Some(flag("with_target", &raw)?),
            "with_level" => self.with_level = Some(flag("with_level", &raw)?),
            "with_file" => self.with_file = Some(flag("with_file", &raw)?),
            "with_line_number" => self.with_line_number = Some(flag("with_line_number", &raw)?),
            "with_thread_names" => {
                self.with_thread_names = Some(flag("with_thread_names", &raw)?);
            }
            "with_thread_ids" => self.with_thread_ids = Some(flag("with_thread_ids", &raw)?),
            "with_opentelemetry_ids" => {
                self.with_opentelemetry_ids = Some(flag("with_opentelemetry_ids", &raw)?);
            }
            "rename_key" => self.rename_key = pairs("rename_key", raw)?,
            "static_field" => self.static_field = pairs("static_field", raw)?,
            _ => {
                let entry = |list: &mut Vec<(String, String)>, setting, k: &str| {
                    let v = text(setting, &raw)?.to_string();
                    match list.iter_mut().find(|(have, _)| have == k) {
                        Some(e) => e.1 = v,
                        None => list.push((k.to_string(), v)),
                    }
                    Ok::<(), Error>(())
                };
                if let Some(k) = key.strip_prefix("rename_key.") {
                    entry(&mut self.rename_key, "rename_key", k)?;
                } else if let Some(k) = key.strip_prefix("static_field.") {
                    entry(&mut self.static_field, "static_field", k)?;
                } else {
                    return Err(Error::unknown_setting(key));
                }
            }
        }
        Ok(())
    }
}

/// `{ k = "v", .. }` from a file, or `"k=v, k2=v2"` from a string.
fn pairs(key: &'static str, raw: Raw) -> Result<Vec<(String, String)>, Error> {
    match raw {
        Raw::Map(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Raw::Str(v) => Ok((k, v)),
                other => Err(refuse(key, &other, "a string value for each key")),
            })
            .collect(),
        Raw::Str(s) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
                None => Err(bad(key, &s, "pairs like \"key=value, key2=value2\"")),
            })
            .collect(),
        other => Err(refuse(
            key,
            &other,
            "a table of strings or \"key=value, key2=value2\"",
        )),
    }
}

/// `raw` did not read as `key`: the value as the file wrote it (a string quoted once).
fn refuse(key: &'static str, raw: &Raw, expected: &str) -> Error {
    match raw {
        Raw::Str(s) => bad(key, s, expected),
        other => Error::config(key, format!("cannot read {other}; expected {expected}")),
    }
}

const ROTATION: &str = "a size like \"64 MiB\" or a whole number of bytes";

fn text<'a>(key: &'static str, raw: &'a Raw) -> Result<&'a str, Error> {
    match raw {
        Raw::Str(s) => Ok(s),
        other => Err(Error::config(
            key,
            format!("expected a string, found {other}"),
        )),
    }
}

fn count(key: &'static str, raw: &Raw) -> Result<usize, Error> {
    let n = match raw {
        Raw::Int(i) => usize::try_from(*i).ok(),
        Raw::Str(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| refuse(key, raw, "a whole number"))
}

fn bytes(key: &'static str, raw: &Raw) -> Result<usize, Error> {
    const EXPECTED: &str = "a size like \"64 MiB\"";
    let n = match raw {
        Raw::Int(i) => usize::try_from(*i).ok(),
        Raw::Str(s) => match size(s) {
            Some(n) => usize::try_from(n).ok(),
            None => return Err(bad_term(key, s, s, Want::Size, EXPECTED)),
        },
        _ => None,
    };
    n.ok_or_else(|| refuse(key, raw, EXPECTED))
}

fn mode(key: &'static str, raw: &Raw) -> Result<u32, Error> {
    let n = match raw {
        // TOML and YAML read `640` as decimal (0o1200): refused here with a hint about octal,
        // rather than by build() as bits it cannot make sense of.
        Raw::Int(i) => match u32::try_from(*i) {
            Ok(m) => match crate::builder::decimal_mode_digits(m) {
                None => Some(m),
                Some(d) => {
                    return Err(Error::config(
                        key,
                        format!(
                            "cannot read {raw}: a number is decimal here ({m} is {m:#o}), and \
                             permission bits are octal: write 0o{d} or the string \"0{d}\""
                        ),
                    ))
                }
            },
            Err(_) => None,
        },
        // Strings are octal, as chmod reads them: "0640", "0o640", "640".
        Raw::Str(s) => {
            let s = s.trim();
            let digits = s.strip_prefix("0o").unwrap_or(s);
            u32::from_str_radix(digits, 8).ok()
        }
        _ => None,
    };
    n.ok_or_else(|| refuse(key, raw, "octal permission bits like 0o640 or \"0640\""))
}

fn time(key: &'static str, raw: &Raw) -> Result<Duration, Error> {
    const EXPECTED: &str = "a duration like \"5 s\"";
    match raw {
        Raw::Str(s) => duration(s).ok_or_else(|| bad_term(key, s, s, Want::Duration, EXPECTED)),
        other => Err(refuse(key, other, EXPECTED)),
    }
}

fn flag(key: &'static str, raw: &Raw) -> Result<bool, Error> {
    let b = match raw {
        Raw::Bool(b) => Some(*b),
        Raw::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    b.ok_or_else(|| refuse(key, raw, "true or false"))
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
                Ok(Raw::Int(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Raw>()? {
                    items.push(v);
                }
                Ok(Raw::List(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Raw>()? {
                    entries.push((k, v));
                }
                Ok(Raw::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for FileSinkConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FileSinkConfig, D::Error> {
        let map = BTreeMap::<String, Raw>::deserialize(d)?;
        let mut config = FileSinkConfig::default();
        for key in ["dir", "stem"] {
            if !map.contains_key(key) {
                return Err(de::Error::missing_field(key));
            }
        }
        for (key, raw) in map {
            config.apply(&key, raw).map_err(de::Error::custom)?;
        }
        Ok(config)
    }
}

/// `Deserialize` through the one-line `FromStr` form, for settings embedded in an
/// application's own configuration struct.
macro_rules! deserialize_from_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(de::Error::custom)
            }
        }
    )*};
}

deserialize_from_str!(
    Rotation,
    Retention,
    Compression,
    Format,
    TimeZone,
    TimeFormat,
    Overflow,
    Fsync,
    Shedding,
    RateLimit,
    Backtrace
);
