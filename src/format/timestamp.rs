//! Timestamps: time zones, formats, and the per-thread cache that keeps them cheap.
//!
//! The default RFC 3339 rendering is cached per thread by whole second: an event pays for
//! the clock read and six digits of microseconds, not for a calendar computation.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::format::{Item, StrftimeItems};
use chrono::{Offset, TimeZone as _};

/// The time zone used for timestamps in records, for segment names and for aligning time
/// rotation to the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(Tz);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tz {
    Utc,
    Local,
    Fixed(i32),
    Iana(chrono_tz::Tz),
}

impl TimeZone {
    /// Coordinated Universal Time (the default).
    #[allow(non_upper_case_globals)]
    pub const Utc: TimeZone = TimeZone(Tz::Utc);
    /// The system's local time zone, daylight saving included, as reported by the C library.
    #[allow(non_upper_case_globals)]
    pub const Local: TimeZone = TimeZone(Tz::Local);

    /// A fixed offset east of UTC, in seconds (`TimeZone::fixed(3600)` is UTC+01:00).
    /// `build()` rejects offsets of a day or more.
    pub const fn fixed(seconds_east: i32) -> TimeZone {
        TimeZone(Tz::Fixed(seconds_east))
    }

    /// A zone of the IANA time zone database by name (`"Europe/Paris"`,
    /// `"America/New_York"`), daylight saving included: timestamps carry the offset in force
    /// (`+02:00` in summer), and daily rotation follows local midnight, on 23- and 25-hour
    /// days too. The database is compiled in (chrono-tz), so it works wherever the platform
    /// has none (Windows, minimal containers).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) for `time_zone` when
    /// the name is not in the database (names are case-sensitive).
    pub fn iana(name: &str) -> Result<TimeZone, crate::Error> {
        name.trim()
            .parse::<chrono_tz::Tz>()
            .map(|tz| TimeZone(Tz::Iana(tz)))
            .map_err(|_| {
                crate::Error::config(
                    "time_zone",
                    format!(
                        "{name:?} is not a time zone of the IANA database (e.g. \"Europe/Paris\")"
                    ),
                )
            })
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.0 {
            Tz::Fixed(s) if s.unsigned_abs() >= 86_400 => Err(format!(
                "fixed offset of {s} s is not within one day of UTC"
            )),
            _ => Ok(()),
        }
    }

    /// Seconds east of UTC in force at `unix_secs`.
    pub(crate) fn offset_at(&self, unix_secs: i64) -> i32 {
        match self.0 {
            Tz::Utc => 0,
            Tz::Fixed(s) => s,
            Tz::Local => match chrono::DateTime::from_timestamp(unix_secs, 0) {
                Some(utc) => chrono::Local
                    .offset_from_utc_datetime(&utc.naive_utc())
                    .fix()
                    .local_minus_utc(),
                None => 0,
            },
            Tz::Iana(tz) => match chrono::DateTime::from_timestamp(unix_secs, 0) {
                Some(utc) => tz
                    .offset_from_utc_datetime(&utc.naive_utc())
                    .fix()
                    .local_minus_utc(),
                None => 0,
            },
        }
    }

    pub(crate) fn is_utc(&self) -> bool {
        self.0 == Tz::Utc
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone::Utc
    }
}

/// How timestamps are written in records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat(Tf);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tf {
    Rfc3339 { digits: u8 },
    Custom(String),
}

impl TimeFormat {
    /// RFC 3339 with microseconds, `2026-11-26T03:14:48.123456Z` in UTC (the default, and what
    /// `tracing_subscriber::fmt` writes).
    pub fn rfc3339_micros() -> TimeFormat {
        TimeFormat(Tf::Rfc3339 { digits: 6 })
    }
    /// RFC 3339 with milliseconds, `2026-11-26T03:14:48.123Z`.
    pub fn rfc3339_millis() -> TimeFormat {
        TimeFormat(Tf::Rfc3339 { digits: 3 })
    }
    /// RFC 3339 with nanoseconds.
    pub fn rfc3339_nanos() -> TimeFormat {
        TimeFormat(Tf::Rfc3339 { digits: 9 })
    }
    /// A `strftime`-like format as understood by chrono (`"%Y-%m-%d %H:%M:%S%.3f %z"`).
    /// `build()` rejects a format chrono cannot parse. Slower than the RFC 3339 formats.
    pub fn custom(format: impl Into<String>) -> TimeFormat {
        TimeFormat(Tf::Custom(format.into()))
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Tf::Custom(f) = &self.0 {
            if f.is_empty() {
                return Err("custom time format is empty".into());
            }
            if StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
                return Err(format!("`{f}` is not a valid chrono strftime format"));
            }
        }
        Ok(())
    }
}

impl Default for TimeFormat {
    fn default() -> Self {
        TimeFormat::rfc3339_micros()
    }
}

/// Frozen timestamp settings used by the formatter.
#[derive(Debug, Clone)]
pub(crate) struct Timestamper {
    pub(crate) tz: TimeZone,
    format: Tf,
}

struct Cache {
    /// The second the cached prefix is for, and the settings it was made with.
    secs: i64,
    tz: TimeZone,
    prefix: [u8; 24],
    prefix_len: u8,
    suffix: [u8; 8],
    suffix_len: u8,
}

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Cache {
        secs: i64::MIN,
        tz: TimeZone::Utc,
        prefix: [0; 24],
        prefix_len: 0,
        suffix: [0; 8],
        suffix_len: 0,
    }) };
}

impl Timestamper {
    pub(crate) fn new(tz: TimeZone, format: &TimeFormat) -> Timestamper {
        Timestamper {
            tz,
            format: format.0.clone(),
        }
    }

    /// Appends the timestamp for `now`. The output never needs escaping for the built-in
    /// formats; custom formats go through `escape` (the record format's escaper).
    pub(crate) fn write(&self, out: &mut Vec<u8>, now: SystemTime, escape: fn(&mut Vec<u8>, &str)) {
        let (secs, nanos) = split(now);
        match &self.format {
            Tf::Rfc3339 { digits } => {
                let ok = CACHE
                    .try_with(|c| {
                        let Ok(mut c) = c.try_borrow_mut() else {
                            return false;
                        };
                        if c.secs != secs || c.tz != self.tz {
                            fill_cache(&mut c, secs, self.tz);
                        }
                        out.extend_from_slice(&c.prefix[..c.prefix_len as usize]);
                        push_fraction(out, nanos, *digits);
                        out.extend_from_slice(&c.suffix[..c.suffix_len as usize]);
                        true
                    })
                    .unwrap_or(false);
                if !ok {
                    let mut c = Cache {
                        secs: 0,
                        tz: self.tz,
                        prefix: [0; 24],
                        prefix_len: 0,
                        suffix: [0; 8],
                        suffix_len: 0,
                    };
                    fill_cache(&mut c, secs, self.tz);
                    out.extend_from_slice(&c.prefix[..c.prefix_len as usize]);
                    push_fraction(out, nanos, *digits);
                    out.extend_from_slice(&c.suffix[..c.suffix_len as usize]);
                }
            }
            Tf::Custom(f) => {
                let offset = self.tz.offset_at(secs);
                let fixed = chrono::FixedOffset::east_opt(offset)
                    .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
                let mut s = String::with_capacity(40);
                if let Some(dt) = chrono::DateTime::from_timestamp(secs, nanos) {
                    let dt = dt.with_timezone(&fixed);
                    if write!(s, "{}", dt.format(f)).is_err() {
                        s.clear();
                        s.push_str("<invalid time format>");
                    }
                }
                escape(out, &s);
            }
        }
    }
}

pub(crate) fn split(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            if d.subsec_nanos() == 0 {
                (-(d.as_secs() as i64), 0)
            } else {
                (-(d.as_secs() as i64) - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    }
}

fn push_fraction(out: &mut Vec<u8>, nanos: u32, digits: u8) {
    let mut buf = [b'0'; 9];
    let mut n = nanos;
    for i in (0..9).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[..digits as usize]);
}

fn fill_cache(c: &mut Cache, secs: i64, tz: TimeZone) {
    let offset = tz.offset_at(secs);
    let local = secs + offset as i64;
    let (y, mo, d, h, mi, s) = civil(local);
    let mut p = Vec::with_capacity(24);
    if (0..=9999).contains(&y) {
        push_num(&mut p, y as u32, 4);
    } else {
        // Outside RFC 3339's range; keep it readable rather than wrong.
        p.extend_from_slice(format!("{y:+}").as_bytes());
    }
    p.push(b'-');
    push_num(&mut p, mo, 2);
    p.push(b'-');
    push_num(&mut p, d, 2);
    p.push(b'T');
    push_num(&mut p, h, 2);
    p.push(b':');
    push_num(&mut p, mi, 2);
    p.push(b':');
    push_num(&mut p, s, 2);
    p.push(b'.');
    let n = p.len().min(24);
    c.prefix[..n].copy_from_slice(&p[..n]);
    c.prefix_len = n as u8;
    let mut suf = Vec::with_capacity(6);
    if tz.is_utc() {
        suf.push(b'Z');
    } else {
        suf.push(if offset < 0 { b'-' } else { b'+' });
        let a = offset.unsigned_abs();
        push_num(&mut suf, a / 3600, 2);
        suf.push(b':');
        push_num(&mut suf, (a % 3600) / 60, 2);
    }
    c.suffix[..suf.len()].copy_from_slice(&suf);
    c.suffix_len = suf.len() as u8;
    c.secs = secs;
    c.tz = tz;
}

fn push_num(out: &mut Vec<u8>, mut v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// Civil date and time from seconds since the epoch (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn render(ts: &Timestamper, t: SystemTime) -> String {
        let mut v = Vec::new();
        ts.write(&mut v, t, crate::format::escape::json_escape_into);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn matches_chrono_for_many_instants() {
        let ts = Timestamper::new(TimeZone::Utc, &TimeFormat::rfc3339_micros());
        let mut t: i64 = -86_400 * 400;
        while t < 4_102_444_800 {
            let st = UNIX_EPOCH + Duration::from_secs(0);
            let st = if t >= 0 {
                st + Duration::new(t as u64, 123_456_789)
            } else {
                st - Duration::new((-t) as u64, 0) + Duration::new(0, 123_456_789)
            };
            let expect = chrono::DateTime::<chrono::Utc>::from(st)
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            assert_eq!(render(&ts, st), expect);
            t += 3_599_999;
        }
    }

    #[test]
    fn fixed_offset_and_precisions() {
        let st = UNIX_EPOCH + Duration::new(1_764_126_888, 5_000_000);
        let ts = Timestamper::new(
            TimeZone::fixed(-(5 * 3600 + 1800)),
            &TimeFormat::rfc3339_millis(),
        );
        assert_eq!(render(&ts, st), "2025-11-25T21:44:48.005-05:30");
        let ts = Timestamper::new(TimeZone::Utc, &TimeFormat::rfc3339_nanos());
        assert_eq!(render(&ts, st), "2025-11-26T03:14:48.005000000Z");
        let ts = Timestamper::new(
            TimeZone::fixed(3600),
            &TimeFormat::custom("%Y/%m/%d %H\"%M"),
        );
        assert_eq!(render(&ts, st), "2025/11/26 04\\\"14");
    }

    #[test]
    fn validation() {
        assert!(TimeFormat::custom("%Q").validate().is_err());
        assert!(TimeFormat::custom("").validate().is_err());
        assert!(TimeFormat::custom("%F %T").validate().is_ok());
        assert!(TimeZone::fixed(86_400).validate().is_err());
        assert!(TimeZone::fixed(-50_400).validate().is_ok());
    }
}
