//! Rotation policy: when does the active file become a finished segment?
//!
//! Pure functions of (bytes in the active file, the time it was opened, now); the writer
//! thread asks them and acts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::format::timestamp::{split, TimeZone};

/// When to finish the active file and start a new one. Combine triggers with [`Rotation::or`].
/// Also reads from one line (`"64 MiB or daily"`, `"every 6 hours"`) through `FromStr`.
///
/// ```
/// use tracing_filesink::Rotation;
/// let r = Rotation::size(64 << 20).or(Rotation::daily());
/// # let _ = r;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rotation {
    pub(crate) size: Option<u64>,
    pub(crate) periods: Vec<Period>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Period {
    Minutely,
    Hourly,
    Daily,
    /// Starting Monday 00:00.
    Weekly,
    /// Aligned to multiples of the duration since the epoch, in the configured time zone.
    Every(Duration),
}

/// The longest `Rotation::every` interval: a century. Longer ones would overflow the period
/// arithmetic (and never rotate anyway).
const MAX_INTERVAL_SECS: u64 = 100 * 365 * 86_400;

impl Rotation {
    /// Never rotate (the default): one active file grows without bound.
    pub fn never() -> Rotation {
        Rotation::default()
    }
    /// Rotate before a record would push the active file past `bytes`. A record larger than
    /// the limit gets a segment to itself; a record never spans two files.
    pub fn size(bytes: u64) -> Rotation {
        Rotation {
            size: Some(bytes),
            periods: Vec::new(),
        }
    }
    /// Rotate at every minute boundary.
    pub fn minutely() -> Rotation {
        Self::period(Period::Minutely)
    }
    /// Rotate at every hour boundary.
    pub fn hourly() -> Rotation {
        Self::period(Period::Hourly)
    }
    /// Rotate at midnight in the configured time zone.
    pub fn daily() -> Rotation {
        Self::period(Period::Daily)
    }
    /// Rotate at Monday 00:00 in the configured time zone.
    pub fn weekly() -> Rotation {
        Self::period(Period::Weekly)
    }
    /// Rotate at every multiple of `interval` (at least one second) counted from the epoch in
    /// the configured time zone: `every(6 hours)` rotates at 00:00, 06:00, 12:00 and 18:00.
    pub fn every(interval: Duration) -> Rotation {
        Self::period(Period::Every(interval))
    }

    fn period(p: Period) -> Rotation {
        Rotation {
            size: None,
            periods: vec![p],
        }
    }

    /// Rotates when either policy says so.
    #[must_use]
    pub fn or(mut self, other: Rotation) -> Rotation {
        self.size = match (self.size, other.size) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for p in other.periods {
            if !self.periods.contains(&p) {
                self.periods.push(p);
            }
        }
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.size == Some(0) {
            return Err("size limit must be greater than zero".into());
        }
        for p in &self.periods {
            if let Period::Every(d) = p {
                if d.as_secs() == 0 {
                    return Err(format!("interval {d:?} is shorter than one second"));
                }
                if d.as_secs() > MAX_INTERVAL_SECS {
                    return Err(format!(
                        "interval {d:?} is longer than {} years",
                        MAX_INTERVAL_SECS / (365 * 86_400)
                    ));
                }
            }
        }
        Ok(())
    }

    /// How much of `batch` (whole records) goes into a file of `file_size` bytes before size
    /// rotation is due: all of it while it fits, else its records up to the last newline that
    /// does. An empty file takes at least one record, so an oversized record gets a segment of
    /// its own; a record never spans two files.
    pub(crate) fn fitting_prefix(&self, file_size: u64, batch: &[u8]) -> usize {
        let Some(limit) = self.size else {
            return batch.len();
        };
        if file_size.saturating_add(batch.len() as u64) <= limit {
            return batch.len();
        }
        let room = usize::try_from(limit.saturating_sub(file_size)).unwrap_or(usize::MAX);
        match batch[..room.min(batch.len())]
            .iter()
            .rposition(|&b| b == b'\n')
        {
            Some(i) => i + 1,
            None if file_size == 0 => batch
                .iter()
                .position(|&b| b == b'\n')
                .map_or(batch.len(), |i| i + 1),
            None => 0,
        }
    }

    /// The first time-rotation boundary strictly after `opened`, or `None` without time triggers.
    pub(crate) fn next_boundary(&self, opened: SystemTime, tz: TimeZone) -> Option<SystemTime> {
        self.periods
            .iter()
            .filter_map(|p| next_boundary(*p, opened, tz))
            .min()
    }
}

/// The period start (in seconds since the epoch, UTC) containing `t`, and the next one.
fn next_boundary(p: Period, t: SystemTime, tz: TimeZone) -> Option<SystemTime> {
    let (secs, _) = split(t);
    let offset = tz.offset_at(secs) as i64;
    let local = secs + offset;
    let len: i64 = match p {
        Period::Minutely => 60,
        Period::Hourly => 3600,
        Period::Daily => 86_400,
        Period::Weekly => 7 * 86_400,
        Period::Every(d) => d.as_secs().max(1) as i64,
    };
    // The epoch was a Thursday; Monday-aligned weeks start 4 days later.
    let phase = if p == Period::Weekly { 4 * 86_400 } else { 0 };
    let start = (local - phase).div_euclid(len) * len + phase;
    let next_local = start + len;
    // Back to UTC with the offset in force. When the offset changes before the boundary
    // (daylight saving), find the change (the offset is constant on each side of it) and
    // use the new offset; a boundary that falls in the hour the change skipped is the
    // change itself.
    let a = next_local - offset;
    let next_utc = if tz.offset_at(a) as i64 == offset {
        a
    } else {
        let (mut lo, mut hi) = (secs, a);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if tz.offset_at(mid) as i64 == offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let changed = hi;
        (next_local - tz.offset_at(changed) as i64).max(changed)
    };
    if next_utc < 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs(next_utc as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone as _, Timelike};

    fn at(s: &str) -> SystemTime {
        let dt = chrono::DateTime::parse_from_rfc3339(s).unwrap();
        UNIX_EPOCH + Duration::from_secs(dt.timestamp() as u64)
    }

    fn fmt(t: SystemTime, tz: TimeZone) -> String {
        let (s, _) = split(t);
        let off = tz.offset_at(s);
        chrono::FixedOffset::east_opt(off)
            .unwrap()
            .timestamp_opt(s, 0)
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn boundaries_utc() {
        let t = at("2026-11-26T03:14:48Z");
        let u = TimeZone::Utc;
        assert_eq!(
            fmt(Rotation::minutely().next_boundary(t, u).unwrap(), u),
            "2026-11-26T03:15:00+00:00"
        );
        assert_eq!(
            fmt(Rotation::hourly().next_boundary(t, u).unwrap(), u),
            "2026-11-26T04:00:00+00:00"
        );
        assert_eq!(
            fmt(Rotation::daily().next_boundary(t, u).unwrap(), u),
            "2026-11-27T00:00:00+00:00"
        );
        // 2026-11-26 is a Thursday: next Monday is the 30th.
        assert_eq!(
            fmt(Rotation::weekly().next_boundary(t, u).unwrap(), u),
            "2026-11-30T00:00:00+00:00"
        );
        let six = Rotation::every(Duration::from_secs(6 * 3600));
        assert_eq!(
            fmt(six.next_boundary(t, u).unwrap(), u),
            "2026-11-26T06:00:00+00:00"
        );
    }

    #[test]
    fn boundaries_fixed_offset() {
        let tz = TimeZone::fixed(5 * 3600 + 1800);
        let t = at("2026-11-26T20:00:00Z"); // 01:30 on the 27th local
        assert_eq!(
            fmt(Rotation::daily().next_boundary(t, tz).unwrap(), tz),
            "2026-11-28T00:00:00+05:30"
        );
        assert_eq!(
            fmt(Rotation::hourly().next_boundary(t, tz).unwrap(), tz),
            "2026-11-27T02:00:00+05:30"
        );
        let tz = TimeZone::fixed(-8 * 3600);
        let t = at("2026-11-27T07:59:59Z"); // 23:59:59 on the 26th local
        assert_eq!(
            fmt(Rotation::daily().next_boundary(t, tz).unwrap(), tz),
            "2026-11-27T00:00:00-08:00"
        );
    }

    #[test]
    fn weekly_across_year_end() {
        let u = TimeZone::Utc;
        let t = at("2026-12-30T12:00:00Z"); // Wednesday
        let b = Rotation::weekly().next_boundary(t, u).unwrap();
        assert_eq!(fmt(b, u), "2027-01-04T00:00:00+00:00");
        // Exactly on a boundary: the next one is a week later.
        let b2 = Rotation::weekly().next_boundary(b, u).unwrap();
        assert_eq!(fmt(b2, u), "2027-01-11T00:00:00+00:00");
    }

    fn iana(name: &str) -> TimeZone {
        TimeZone::iana(name).unwrap()
    }

    /// A daily boundary in Paris on the 23-hour day (2026-03-29) and the 25-hour day
    /// (2026-10-25): local midnight, with the offset in force then.
    #[test]
    fn daily_across_daylight_saving_days() {
        let paris = iana("Europe/Paris");
        let d = Rotation::daily();
        let start = at("2026-03-29T00:00:00+01:00");
        let b = d.next_boundary(start, paris).unwrap();
        assert_eq!(fmt(b, paris), "2026-03-30T00:00:00+02:00");
        assert_eq!(
            b.duration_since(start).unwrap(),
            Duration::from_secs(23 * 3600)
        );
        let start = at("2026-10-25T00:00:00+02:00");
        let b = d.next_boundary(start, paris).unwrap();
        assert_eq!(fmt(b, paris), "2026-10-26T00:00:00+01:00");
        assert_eq!(
            b.duration_since(start).unwrap(),
            Duration::from_secs(25 * 3600)
        );
        // Santiago skips midnight in spring (00:00 -> 01:00) and repeats the last hour of
        // the day in autumn (24:00 -> 23:00): the day starts at 01:00, then at the second
        // 00:00... of the next day.
        let scl = iana("America/Santiago");
        let b = d
            .next_boundary(at("2026-09-05T12:00:00-04:00"), scl)
            .unwrap();
        assert_eq!(fmt(b, scl), "2026-09-06T01:00:00-03:00");
        let b = d
            .next_boundary(at("2026-04-04T12:00:00-03:00"), scl)
            .unwrap();
        assert_eq!(fmt(b, scl), "2026-04-05T00:00:00-04:00");
        // An hourly boundary in the skipped hour is the change itself.
        let b = Rotation::hourly()
            .next_boundary(at("2026-03-29T01:30:00+01:00"), paris)
            .unwrap();
        assert_eq!(fmt(b, paris), "2026-03-29T03:00:00+02:00");
    }

    /// Property, in zones with daylight saving (Lord Howe's is 30 minutes): the boundary is
    /// the first instant after t at which the local period (hour, day) differs from t's
    /// (naive oracle: step through local times minute by minute).
    #[test]
    fn dst_boundaries_match_naive_oracle() {
        let zones = [
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "America/Santiago",
        ];
        let local = |tz: TimeZone, s: i64| s + tz.offset_at(s) as i64;
        for name in zones {
            let tz = iana(name);
            // Around each change of 2026: a day before to a day after, every 37 minutes.
            let mut changes = Vec::new();
            let mut s = split(at("2026-01-01T00:00:00Z")).0;
            while s < split(at("2027-01-01T00:00:00Z")).0 {
                if tz.offset_at(s) != tz.offset_at(s + 3600) {
                    changes.push(s);
                }
                s += 3600;
            }
            assert!(!changes.is_empty(), "{name}");
            for c in changes {
                let mut t = c - 86_400;
                while t < c + 86_400 {
                    for (r, len) in [(Rotation::hourly(), 3600), (Rotation::daily(), 86_400)] {
                        let tt = UNIX_EPOCH + Duration::from_secs(t as u64);
                        let b = split(r.next_boundary(tt, tz).unwrap()).0;
                        let period = |s: i64| local(tz, s).div_euclid(len);
                        let mut o = t + 1;
                        while period(o) == period(t) {
                            o += if o % 60 == 0 {
                                60
                            } else {
                                60 - o.rem_euclid(60)
                            };
                        }
                        assert_eq!(
                            b,
                            o,
                            "{name} {r:?} from {}: {} vs oracle {}",
                            fmt(tt, tz),
                            fmt(UNIX_EPOCH + Duration::from_secs(b as u64), tz),
                            fmt(UNIX_EPOCH + Duration::from_secs(o as u64), tz)
                        );
                    }
                    t += 37 * 60;
                }
            }
        }
    }

    /// Property: for many instants and every period, the boundary is after t, is aligned, and no
    /// earlier aligned instant lies strictly between t and it (naive oracle: step by seconds
    /// for minutely, by minutes for the rest).
    #[test]
    fn boundaries_match_naive_oracle() {
        let tzs = [
            TimeZone::Utc,
            TimeZone::fixed(3600),
            TimeZone::fixed(-9 * 3600 - 1800),
        ];
        let mut t = at("2026-12-28T00:00:00Z");
        for i in 0..200u64 {
            t += Duration::from_secs(i * 7919 + 13);
            for tz in tzs {
                for (r, aligned) in [
                    (
                        Rotation::minutely(),
                        &(|s: i64| s % 60 == 0) as &dyn Fn(i64) -> bool,
                    ),
                    (Rotation::hourly(), &|s: i64| s % 3600 == 0),
                    (Rotation::daily(), &|s: i64| s % 86_400 == 0),
                ] {
                    let b = r.next_boundary(t, tz).unwrap();
                    let (bs, _) = split(b);
                    let (ts, _) = split(t);
                    let off = tz.offset_at(bs) as i64;
                    assert!(bs > ts);
                    assert!(aligned(bs + off), "{} not aligned", fmt(b, tz));
                    let mut s = ts + 1;
                    while s < bs {
                        assert!(!aligned(s + off), "missed boundary before {}", fmt(b, tz));
                        s += if r == Rotation::minutely() { 1 } else { 60 };
                    }
                }
                let w = Rotation::weekly().next_boundary(t, tz).unwrap();
                let (ws, _) = split(w);
                let local =
                    chrono::DateTime::from_timestamp(ws + tz.offset_at(ws) as i64, 0).unwrap();
                assert_eq!(local.weekday(), chrono::Weekday::Mon);
                assert_eq!((local.hour(), local.minute(), local.second()), (0, 0, 0));
                assert!(ws - split(t).0 <= 7 * 86_400);
            }
        }
    }

    #[test]
    fn size_rule() {
        let r = Rotation::size(100);
        let batch = b"aaaaaaaaa\nbbbbbbbbb\n";
        assert_eq!(r.fitting_prefix(50, batch), 20, "fits whole");
        assert_eq!(r.fitting_prefix(80, batch), 20, "fits to the byte");
        assert_eq!(r.fitting_prefix(81, batch), 10, "splits between records");
        assert_eq!(
            r.fitting_prefix(95, batch),
            0,
            "not even one record: rotate first"
        );
        let big = [b'x'; 300];
        let mut oversized = big.to_vec();
        oversized.extend_from_slice(b"\nnext\n");
        assert_eq!(
            r.fitting_prefix(0, &oversized),
            301,
            "an empty file takes an oversized record, and only it"
        );
        assert_eq!(Rotation::daily().fitting_prefix(u64::MAX - 1, batch), 20);
    }

    proptest::proptest! {
        /// Against a naive oracle: the longest run of whole records that fits, at least one
        /// record into an empty file.
        #[test]
        fn fitting_prefix_is_the_longest_run_of_whole_records_that_fits(
            lens in proptest::collection::vec(1usize..40, 0..12),
            file_size in 0u64..120,
            limit in 1u64..150,
        ) {
            let mut batch = Vec::new();
            let mut ends = Vec::new();
            for l in lens {
                batch.extend(std::iter::repeat_n(b'x', l - 1));
                batch.push(b'\n');
                ends.push(batch.len());
            }
            let fit = Rotation::size(limit).fitting_prefix(file_size, &batch);
            let mut expected = ends
                .iter()
                .copied()
                .filter(|&e| file_size + e as u64 <= limit)
                .max()
                .unwrap_or(0);
            if expected == 0 && file_size == 0 {
                expected = ends.first().copied().unwrap_or(0);
            }
            proptest::prop_assert_eq!(fit, expected);
        }
    }

    #[test]
    fn or_combines() {
        let r = Rotation::size(10)
            .or(Rotation::daily())
            .or(Rotation::size(5))
            .or(Rotation::hourly());
        assert_eq!(r.size, Some(5));
        assert_eq!(r.periods, vec![Period::Daily, Period::Hourly]);
        let t = at("2026-11-26T03:14:48Z");
        assert_eq!(
            r.next_boundary(t, TimeZone::Utc),
            Some(at("2026-11-26T04:00:00Z"))
        );
        assert!(Rotation::size(0).validate().is_err());
        assert!(Rotation::every(Duration::from_millis(10))
            .validate()
            .is_err());
    }
}
