//! One-line forms of the settings, for configuration files and environment variables:
//! `"64 MiB or daily"`, `"30 files, 7 days"`, `"gzip 9"`, `"+05:30"`, `"block for 100 ms"`.
//!
//! Every `FromStr` here fails with an [`Error`] of kind `InvalidConfig` that names the
//! setting and quotes the value it could not read, and never panics, whatever the string
//! (`tests/settings_props.rs`). Sizes and durations share no unit: sizes `B`, `kB`..`TB`,
//! `KiB`..`TiB`; durations `ms`, `s`, `min`, `h`, `days`, `weeks`. A unit that could be read
//! two ways (a bare `M`: minutes or megabytes) is refused with what to write instead.

use std::str::FromStr;
use std::time::Duration;

use tracing::Level;

use crate::error::Error;
use crate::format::{Format, TimeFormat, TimeZone};
use crate::retain::Retention;
use crate::rotate::Rotation;
use crate::settings::Compression;
use crate::settings::Fsync;
use crate::settings::Overflow;
use crate::settings::{Backtrace, RateLimit, Shedding};

pub(crate) fn bad(setting: &'static str, value: &str, expected: &str) -> Error {
    Error::config(
        setting,
        format!("cannot read {value:?}; expected {expected}"),
    )
}

/// Splits `"64 MiB"`, `"64MiB"`, `"7 days"` into the number and the (lowercased) unit.
fn number_unit(s: &str) -> Option<(u64, String)> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = s[..digits].parse().ok()?;
    Some((n, s[digits..].trim().to_ascii_lowercase()))
}

/// `"64 MiB"` (binary units KiB to TiB), `"64 MB"` (decimal units kB to TB), `"100 B"`,
/// or a plain number of bytes. A bare `K`, `M`, `G` or `T` is no unit: decimal or binary,
/// and `M` minutes or megabytes, is for the user to say (see [`unit_hint`]).
pub(crate) fn size(s: &str) -> Option<u64> {
    let (n, unit) = number_unit(s)?;
    let mul: u64 = match unit.as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// `bytes` in the units [`size`] reads: the largest binary unit that divides it, else the
/// largest decimal one, else bytes (`"64 MiB"`, `"500 MB"`, `"1001 bytes"`).
pub(crate) fn size_text(bytes: u64) -> String {
    const UNITS: [(u64, &str); 8] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
        (1_000_000_000_000, "TB"),
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1_000, "kB"),
    ];
    match UNITS
        .iter()
        .find(|(unit, _)| bytes > 0 && bytes.is_multiple_of(*unit))
    {
        Some((unit, name)) => format!("{} {name}", bytes / unit),
        None => format!("{bytes} bytes"),
    }
}

/// `"500 ms"`, `"90 s"`, `"30 min"`, `"6 hours"`, `"7 days"`, `"2 weeks"` (singular and
/// plural, short and long unit names). Minutes are `min`, never a bare `m`.
pub(crate) fn duration(s: &str) -> Option<Duration> {
    let (n, unit) = number_unit(s)?;
    let secs: u64 = match unit.as_str() {
        "ms" | "millisecond" | "milliseconds" => return Some(Duration::from_millis(n)),
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        // Not a bare "m": minutes to some, megabytes (or months) to others; `unit_hint`
        // says what to write instead.
        "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs).map(Duration::from_secs)
}

/// What a setting's term may be, for [`unit_hint`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// A size (`queue_bytes`, a free-space limit).
    Size,
    /// A duration (timeouts, intervals).
    Duration,
    /// A size or an age (a retention limit).
    SizeOrAge,
    /// A size, or an interval after `every` (a rotation term).
    SizeOrEvery,
}

/// What to write instead of a term whose unit could be read two ways: a bare `K`, `M`, `G`
/// or `T` (decimal or binary; `M` is also minutes), or, for a retention limit, a number
/// with no unit at all (files or bytes).
pub(crate) fn unit_hint(term: &str, want: Want) -> Option<String> {
    let (n, unit) = number_unit(term)?;
    if unit.is_empty() {
        return (want == Want::SizeOrAge).then(|| {
            format!(
                "a number alone could be files or bytes: write \"{n} files\", or a size with \
                 its unit (\"{n} MiB\", \"{n} B\")"
            )
        });
    }
    let (decimal, binary) = match unit.as_str() {
        "k" => ("kB", "KiB"),
        "m" => ("MB", "MiB"),
        "g" => ("GB", "GiB"),
        "t" => ("TB", "TiB"),
        _ => return None,
    };
    let letter = unit.to_ascii_uppercase();
    let sizes = format!("\"{n} {decimal}\" or \"{n} {binary}\"");
    Some(match (want, unit == "m") {
        (Want::Duration, false) => return None,
        (Want::Duration, true) => {
            format!("\"m\" alone could be minutes or megabytes: write \"{n} min\" for minutes")
        }
        (Want::Size, _) | (_, false) => format!(
            "\"{letter}\" alone does not say whether the size is decimal or binary: write {sizes}"
        ),
        (Want::SizeOrAge, true) => format!(
            "\"M\" alone could be minutes or megabytes: write {sizes} for a size, \
             \"{n} min\" for an age"
        ),
        (Want::SizeOrEvery, true) => format!(
            "\"M\" alone could be minutes or megabytes: write {sizes} for a size, \
             \"every {n} min\" for an interval"
        ),
    })
}

/// [`bad`] for `value` (the whole setting) whose `term` did not read: with what to write
/// instead when the term's unit is ambiguous, else the forms `expected`.
pub(crate) fn bad_term(
    setting: &'static str,
    value: &str,
    term: &str,
    want: Want,
    expected: &str,
) -> Error {
    match unit_hint(term, want) {
        Some(hint) => Error::config(setting, format!("cannot read {value:?}: {hint}")),
        None => bad(setting, value, expected),
    }
}

/// Words of `s`, lowercased, split on whitespace.
fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_ascii_lowercase).collect()
}

const ROTATION: &str = "\"never\", \"minutely\", \"hourly\", \"daily\", \"weekly\", \
                        \"every 6 hours\" or a size like \"64 MiB\", combined with \"or\"";

impl FromStr for Rotation {
    type Err = Error;

    /// `"64 MiB"`, `"daily"`, `"64 MiB or daily"`, `"every 6 hours"`, `"never"`. A plain
    /// number is bytes (`"67108864"`); `"64 M"` is refused (write `"64 MB"`, `"64 MiB"` or
    /// `"every 64 min"`).
    fn from_str(s: &str) -> Result<Rotation, Error> {
        let lower = s.to_ascii_lowercase();
        let mut rotation = Rotation::never();
        for term in lower.split(" or ") {
            let term = term.trim();
            let one = match term {
                "never" => Rotation::never(),
                "minutely" => Rotation::minutely(),
                "hourly" => Rotation::hourly(),
                "daily" => Rotation::daily(),
                "weekly" => Rotation::weekly(),
                _ => match term.strip_prefix("every ") {
                    Some(d) => Rotation::every(
                        duration(d)
                            .ok_or_else(|| bad_term("rotation", s, d, Want::Duration, ROTATION))?,
                    ),
                    None => Rotation::size(size(term).ok_or_else(|| {
                        bad_term("rotation", s, term, Want::SizeOrEvery, ROTATION)
                    })?),
                },
            };
            rotation = rotation.or(one);
        }
        Ok(rotation)
    }
}

const RETENTION: &str = "\"keep all\" or limits like \"30 files\", \"7 days\", \"10 GiB\", \
                         \"5 GiB free\", separated by \",\" or \"and\"";

impl FromStr for Retention {
    type Err = Error;

    /// `"30 files"`, `"7 days"`, `"10 GiB"` (total size), `"5 GiB free"` (free space),
    /// combined with `,` or `and`: `"30 files, 7 days"`; `"keep all"`. A size needs its unit
    /// (`"30"` could be files or bytes) and `"500 M"` is refused (write `"500 MB"`,
    /// `"500 MiB"` or `"500 min"`).
    fn from_str(s: &str) -> Result<Retention, Error> {
        let lower = s.to_ascii_lowercase();
        if matches!(lower.trim(), "keep all" | "all") {
            return Ok(Retention::keep_all());
        }
        let mut r = Retention::keep_all();
        // A size needs its unit here: a number alone could be a count of files.
        let sized = |t: &str| match number_unit(t) {
            Some((_, unit)) if !unit.is_empty() => size(t),
            _ => None,
        };
        for term in lower.split(',').flat_map(|t| t.split(" and ")) {
            let term = term.trim();
            let err = |t: &str, want| bad_term("retention", s, t, want, RETENTION);
            if let Some(n) = term
                .strip_suffix("files")
                .or_else(|| term.strip_suffix("file"))
            {
                let n = n
                    .trim()
                    .parse()
                    .map_err(|_| bad("retention", s, RETENTION))?;
                r.files = Some(n);
            } else if let Some(free) = term.strip_suffix("free") {
                r = r.min_free_bytes(sized(free).ok_or_else(|| err(free, Want::Size))?);
            } else if let Some(d) = duration(term) {
                r = r.max_age(d);
            } else {
                r = r.max_bytes(sized(term).ok_or_else(|| err(term, Want::SizeOrAge))?);
            }
        }
        Ok(r)
    }
}

impl FromStr for Compression {
    type Err = Error;

    /// `"none"`, `"gzip"`, `"gzip 9"` (also `"gzip:9"`, `"gzip level 9"`).
    fn from_str(s: &str) -> Result<Compression, Error> {
        let w = words(&s.replace(':', " "));
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        let err = || bad("compression", s, "\"none\", \"gzip\" or \"gzip 9\"");
        match w.as_slice() {
            ["none"] => Ok(Compression::none()),
            ["gzip"] => Ok(Compression::gzip()),
            ["gzip", n] | ["gzip", "level", n] => {
                Ok(Compression::gzip().level(n.parse().map_err(|_| err())?))
            }
            _ => Err(err()),
        }
    }
}

impl FromStr for Format {
    type Err = Error;

    /// `"json"`, `"text"`, `"compact"` or `"logfmt"`.
    fn from_str(s: &str) -> Result<Format, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "text" => Ok(Format::Text),
            "compact" => Ok(Format::Compact),
            "logfmt" => Ok(Format::Logfmt),
            _ => Err(bad(
                "format",
                s,
                "\"json\", \"text\", \"compact\" or \"logfmt\"",
            )),
        }
    }
}

impl FromStr for TimeZone {
    type Err = Error;

    /// `"utc"`, `"local"`, a fixed offset (`"+05:30"`, `"-0800"`, `"UTC+01:00"`) or an
    /// IANA zone name (`"Europe/Paris"`).
    fn from_str(s: &str) -> Result<TimeZone, Error> {
        let err = || {
            bad(
                "time_zone",
                s,
                "\"utc\", \"local\", an offset like \"+05:30\" or an IANA zone like \
                 \"Europe/Paris\"",
            )
        };
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "utc" | "z" => return Ok(TimeZone::Utc),
            "local" => return Ok(TimeZone::Local),
            _ => {}
        }
        if s.contains('/') || s.trim().chars().next().is_some_and(char::is_alphabetic) {
            if let Ok(tz) = TimeZone::iana(s) {
                return Ok(tz);
            }
            if !lower.starts_with("utc") {
                return Err(err());
            }
        }
        let offset = lower.strip_prefix("utc").unwrap_or(&lower);
        let (sign, hm) = match offset.split_at_checked(1) {
            Some(("+", hm)) => (1, hm),
            Some(("-", hm)) => (-1, hm),
            _ => return Err(err()),
        };
        let (h, m) = match hm.split_once(':') {
            Some(hm) => hm,
            // Checked: a non-ASCII character may straddle the middle.
            None if hm.len() == 4 => hm.split_at_checked(2).ok_or_else(err)?,
            None => (hm, "0"),
        };
        let h: i32 = h.parse().map_err(|_| err())?;
        let m: i32 = m.parse().map_err(|_| err())?;
        if !(0..60).contains(&m) || !(0..24).contains(&h) {
            return Err(err());
        }
        Ok(TimeZone::fixed(sign * (h * 3600 + m * 60)))
    }
}

impl FromStr for TimeFormat {
    type Err = Error;

    /// `"rfc3339"` (microseconds, the default), `"rfc3339 millis"`, `"rfc3339 nanos"`, or a
    /// strftime pattern (checked by `build()`).
    fn from_str(s: &str) -> Result<TimeFormat, Error> {
        let w = words(&s.replace('_', " "));
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        Ok(match w.as_slice() {
            ["rfc3339"] | ["rfc3339", "micros"] => TimeFormat::rfc3339_micros(),
            ["rfc3339", "millis"] => TimeFormat::rfc3339_millis(),
            ["rfc3339", "nanos"] => TimeFormat::rfc3339_nanos(),
            _ => TimeFormat::custom(s),
        })
    }
}

const OVERFLOW: &str = "\"block\", \"drop\" or \"block for 100 ms\"";

impl FromStr for Overflow {
    type Err = Error;

    /// `"block"`, `"drop"`, `"block for 100 ms"`.
    fn from_str(s: &str) -> Result<Overflow, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let err = || bad("overflow", s, OVERFLOW);
        match lower.as_str() {
            "block" => Ok(Overflow::Block),
            "drop" => Ok(Overflow::Drop),
            _ => match lower.strip_prefix("block for ") {
                Some(d) => Ok(Overflow::BlockFor(duration(d).ok_or_else(|| {
                    bad_term("overflow", s, d, Want::Duration, OVERFLOW)
                })?)),
                None => Err(err()),
            },
        }
    }
}

const FSYNC: &str = "\"never\", \"always\", \"every 1 s\" or \"on error\"";

impl FromStr for Fsync {
    type Err = Error;

    /// `"never"`, `"always"`, `"every 1 s"`, `"on error"` (batches holding a record at that
    /// level or more severe).
    fn from_str(s: &str) -> Result<Fsync, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let err = || bad("fsync", s, FSYNC);
        match lower.as_str() {
            "never" => Ok(Fsync::Never),
            "always" => Ok(Fsync::Always),
            _ => {
                if let Some(d) = lower.strip_prefix("every ") {
                    Ok(Fsync::Every(duration(d).ok_or_else(|| {
                        bad_term("fsync", s, d, Want::Duration, FSYNC)
                    })?))
                } else if let Some(l) = lower.strip_prefix("on ") {
                    let l = if l.trim() == "warning" { "warn" } else { l };
                    Ok(Fsync::OnLevel(
                        Level::from_str(l.trim()).map_err(|_| err())?,
                    ))
                } else {
                    Err(err())
                }
            }
        }
    }
}

/// A level by name, as `Level::from_str` reads it, `"warning"` too.
fn level(s: &str) -> Option<Level> {
    let s = s.trim();
    let s = if s.eq_ignore_ascii_case("warning") {
        "warn"
    } else {
        s
    };
    Level::from_str(s).ok()
}

impl FromStr for Shedding {
    type Err = Error;

    /// `"off"`, `"below warn"` (above 80% full), `"below info at 90%"`.
    fn from_str(s: &str) -> Result<Shedding, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let err = || {
            bad(
                "shedding",
                s,
                "\"off\", \"below warn\" or \"below info at 90%\"",
            )
        };
        if lower == "off" {
            return Ok(Shedding::off());
        }
        let rest = lower.strip_prefix("below ").ok_or_else(err)?;
        let (l, pct) = match rest.split_once(" at ") {
            Some((l, p)) => {
                let p = p.trim().strip_suffix('%').unwrap_or(p).trim();
                (l, Some(p.parse::<u8>().map_err(|_| err())?))
            }
            None => (rest, None),
        };
        let shed = Shedding::below(level(l).ok_or_else(err)?);
        Ok(match pct {
            Some(p) => shed.when_fuller_than(p),
            None => shed,
        })
    }
}

impl FromStr for RateLimit {
    type Err = Error;

    /// `"off"`, `"100 per 1 s"` (at most 100 events per second from each callsite).
    fn from_str(s: &str) -> Result<RateLimit, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let err = || bad("rate_limit", s, "\"off\" or \"100 per 1 s\"");
        if lower == "off" {
            return Ok(RateLimit::off());
        }
        let (n, d) = lower.split_once(" per ").ok_or_else(err)?;
        let n = n.trim().parse::<u32>().map_err(|_| err())?;
        Ok(RateLimit::per_callsite(n, duration(d).ok_or_else(err)?))
    }
}

impl FromStr for Backtrace {
    type Err = Error;

    /// `"off"`, `"last 32"` (DEBUG and above), `"last 32 from trace"`.
    fn from_str(s: &str) -> Result<Backtrace, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let err = || {
            bad(
                "backtrace",
                s,
                "\"off\", \"last 32\" or \"last 32 from trace\"",
            )
        };
        if lower == "off" {
            return Ok(Backtrace::off());
        }
        let rest = lower.strip_prefix("last ").ok_or_else(err)?;
        let (n, from) = match rest.split_once(" from ") {
            Some((n, l)) => (n, Some(level(l).ok_or_else(err)?)),
            None => (rest, None),
        };
        let bt = Backtrace::last(n.trim().parse().map_err(|_| err())?);
        Ok(match from {
            Some(l) => bt.at_or_above(l),
            None => bt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_settings_read_from_one_line() {
        use std::time::Duration;
        assert_eq!(
            "below warn".parse::<Shedding>().unwrap(),
            Shedding::below(Level::WARN)
        );
        assert_eq!(
            "below INFO at 90%".parse::<Shedding>().unwrap(),
            Shedding::below(Level::INFO).when_fuller_than(90)
        );
        assert_eq!("off".parse::<Shedding>().unwrap(), Shedding::off());
        assert_eq!(
            "100 per 1 s".parse::<RateLimit>().unwrap(),
            RateLimit::per_callsite(100, Duration::from_secs(1))
        );
        assert_eq!(
            "last 32 from trace".parse::<Backtrace>().unwrap(),
            Backtrace::last(32).at_or_above(Level::TRACE)
        );
        assert_eq!("last 8".parse::<Backtrace>().unwrap(), Backtrace::last(8));
        for (bad, key) in [
            ("below loud", "shedding"),
            ("sometimes", "shedding"),
            ("100 per fortnight", "rate_limit"),
            ("last few", "backtrace"),
        ] {
            let err = match key {
                "shedding" => bad.parse::<Shedding>().unwrap_err(),
                "rate_limit" => bad.parse::<RateLimit>().unwrap_err(),
                _ => bad.parse::<Backtrace>().unwrap_err(),
            };
            let msg = err.to_string();
            assert!(msg.contains(key) && msg.contains(bad), "{msg}");
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(size("64 MiB"), Some(64 << 20));
        assert_eq!(size("64MiB"), Some(64 << 20));
        assert_eq!(size("64 mb"), Some(64_000_000));
        assert_eq!(size("4096"), Some(4096));
        assert_eq!(size("1 KB"), Some(1000));
        assert_eq!(size("64 MiBs"), None);
        assert_eq!(size("MiB"), None);
        assert_eq!(size("1.5 GiB"), None);
        assert_eq!(size("99999999999 TiB"), None, "overflow is refused");
        assert_eq!(duration("7 days"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(duration("1 day"), Some(Duration::from_secs(86_400)));
        assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration("6 hours"), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(duration("7 fortnights"), None);
    }

    #[test]
    fn units_that_could_be_read_two_ways_are_refused_with_a_hint() {
        assert_eq!(duration("5 m"), None, "minutes are `min`");
        assert_eq!(duration("5 min"), Some(Duration::from_secs(300)));
        assert_eq!(size("5 M"), None);
        let hint = |t, w| unit_hint(t, w).unwrap_or_default();
        assert!(hint("500 M", Want::SizeOrAge).contains("\"500 MB\" or \"500 MiB\""));
        assert!(hint("500 M", Want::SizeOrAge).contains("\"500 min\""));
        assert!(hint("64m", Want::SizeOrEvery).contains("\"every 64 min\""));
        assert!(hint("5 m", Want::Duration).contains("\"5 min\""));
        assert!(hint("2 g", Want::Size).contains("\"2 GB\" or \"2 GiB\""));
        assert!(hint("30", Want::SizeOrAge).contains("\"30 files\""));
        for (term, want) in [
            ("2 g", Want::Duration),
            ("30", Want::Size),
            ("5 MiB", Want::Size),
            ("fortnight", Want::SizeOrAge),
        ] {
            assert_eq!(unit_hint(term, want), None, "{term}");
        }
        let e = "500 M".parse::<Retention>().unwrap_err();
        assert_eq!(e.setting(), Some("retention"));
        assert!(e.to_string().contains("\"500 MiB\""), "{e}");
        assert!("30".parse::<Retention>().is_err());
        assert!("5 free".parse::<Retention>().is_err());
        assert!("every 5 m".parse::<Rotation>().is_err());
        assert!("every 5 m".parse::<Fsync>().is_err());
        assert!("block for 5 m".parse::<Overflow>().is_err());
    }

    #[test]
    fn size_text_reads_back() {
        for (bytes, text) in [
            (0, "0 bytes"),
            (1001, "1001 bytes"),
            (64 << 20, "64 MiB"),
            (10_000_000, "10 MB"),
            (1536, "1536 bytes"),
            (3072, "3 KiB"),
            (5 << 40, "5 TiB"),
        ] {
            assert_eq!(size_text(bytes), text);
            assert_eq!(size(text), Some(bytes), "{text}");
        }
    }

    #[test]
    fn non_ascii_offsets_do_not_panic() {
        for s in ["+aüa", "-üü", "UTC+éé", "+ü:00"] {
            let e = s.parse::<TimeZone>().unwrap_err();
            assert_eq!(e.setting(), Some("time_zone"), "{s}");
        }
    }

    #[test]
    fn rotation() {
        assert_eq!(
            "64 MiB".parse::<Rotation>().unwrap(),
            Rotation::size(64 << 20)
        );
        assert_eq!("daily".parse::<Rotation>().unwrap(), Rotation::daily());
        assert_eq!(
            "64 MiB or daily".parse::<Rotation>().unwrap(),
            Rotation::size(64 << 20).or(Rotation::daily())
        );
        assert_eq!(
            "Hourly or every 6 hours".parse::<Rotation>().unwrap(),
            Rotation::hourly().or(Rotation::every(Duration::from_secs(6 * 3600)))
        );
        assert_eq!("never".parse::<Rotation>().unwrap(), Rotation::never());
        let e = "64 MB or fortnightly".parse::<Rotation>().unwrap_err();
        assert_eq!(e.setting(), Some("rotation"));
        assert!(e.to_string().contains("\"64 MB or fortnightly\""), "{e}");
    }

    #[test]
    fn retention() {
        assert_eq!(
            "30 files".parse::<Retention>().unwrap(),
            Retention::files(30)
        );
        assert_eq!(
            "7 days".parse::<Retention>().unwrap(),
            Retention::keep_all().max_age(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            "30 files, 10 GiB and 5 GiB free"
                .parse::<Retention>()
                .unwrap(),
            Retention::files(30)
                .max_bytes(10 << 30)
                .min_free_bytes(5 << 30)
        );
        assert_eq!(
            "keep all".parse::<Retention>().unwrap(),
            Retention::keep_all()
        );
        for bad in ["thirty files", "7 eons", "", "files"] {
            let e = bad.parse::<Retention>().unwrap_err();
            assert_eq!(e.setting(), Some("retention"), "{bad}");
        }
    }

    #[test]
    fn small_settings() {
        assert_eq!("gzip".parse::<Compression>().unwrap(), Compression::gzip());
        assert_eq!(
            "gzip 9".parse::<Compression>().unwrap(),
            Compression::gzip().level(9)
        );
        assert_eq!(
            "gzip:1".parse::<Compression>().unwrap(),
            Compression::gzip().level(1)
        );
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::none());
        assert!("zstd".parse::<Compression>().is_err());
        assert_eq!("TEXT".parse::<Format>().unwrap(), Format::Text);
        assert!("yaml".parse::<Format>().is_err());
        assert_eq!("utc".parse::<TimeZone>().unwrap(), TimeZone::Utc);
        assert_eq!("local".parse::<TimeZone>().unwrap(), TimeZone::Local);
        assert_eq!(
            "+05:30".parse::<TimeZone>().unwrap(),
            TimeZone::fixed(5 * 3600 + 1800)
        );
        assert_eq!(
            "UTC-0800".parse::<TimeZone>().unwrap(),
            TimeZone::fixed(-8 * 3600)
        );
        assert!("+25:00".parse::<TimeZone>().is_err());
        // IANA names are zones now; a name not in the database is not.
        assert_eq!(
            "Europe/Paris".parse::<TimeZone>().unwrap(),
            TimeZone::iana("Europe/Paris").unwrap()
        );
        assert!("Europe/Atlantis".parse::<TimeZone>().is_err());
        assert!("compact".parse::<Format>().is_ok() && "logfmt".parse::<Format>().is_ok());
        assert_eq!(
            "block for 100 ms".parse::<Overflow>().unwrap(),
            Overflow::BlockFor(Duration::from_millis(100))
        );
        assert_eq!("drop".parse::<Overflow>().unwrap(), Overflow::Drop);
        assert_eq!(
            "on error".parse::<Fsync>().unwrap(),
            Fsync::OnLevel(Level::ERROR)
        );
        assert_eq!(
            "every 1 s".parse::<Fsync>().unwrap(),
            Fsync::Every(Duration::from_secs(1))
        );
        assert!("sometimes".parse::<Fsync>().is_err());
    }
}
