//! The time arguments of `--since` / `--until`.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// RFC 3339; a date or a date and time without zone (UTC); or an age (`90s`, `15m`, `2h`, `7d`).
pub(crate) fn parse(s: &str) -> Result<SystemTime, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.into());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc().into());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().into());
        }
    }
    if let Some(age) = age(s) {
        return SystemTime::now()
            .checked_sub(age)
            .ok_or_else(|| format!("{s:?} reaches before the epoch"));
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339 (2026-11-26T03:14:48Z), a UTC date or time \
         (2026-11-26, 2026-11-26T03:14) or an age (90s, 15m, 2h, 7d)"
    ))
}

fn age(s: &str) -> Option<Duration> {
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn forms() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_662_888);
        assert_eq!(parse("2026-11-26T03:14:48Z"), Ok(t));
        assert_eq!(parse("2026-11-26T04:14:48+01:00"), Ok(t));
        assert_eq!(parse("2026-11-26T03:14:48"), Ok(t));
        assert_eq!(parse("2026-11-26 03:14:48"), Ok(t));
        assert_eq!(parse("2026-11-26T03:14"), Ok(t - Duration::from_secs(48)));
        assert_eq!(
            parse("2026-11-26"),
            Ok(t - Duration::from_secs(3 * 3600 + 14 * 60 + 48))
        );
        let ago = parse("2h").unwrap();
        let want = SystemTime::now() - Duration::from_secs(7200);
        assert!(ago <= want && ago > want - Duration::from_secs(60));
        assert!(parse("yesterday").is_err());
        assert!(parse("5w").is_err());
    }
}
