//! Retention: which finished segments to delete. [`plan`] is a pure function of the
//! segments on disk; the maintenance thread executes its answer.

use std::time::{Duration, SystemTime};

/// Which finished segments to keep. Limits combine: a segment is deleted when any limit asks.
/// Also reads from one line (`"30 files, 7 days"`, `"10 GiB"`, `"5 GiB free"`) through
/// `FromStr`.
/// Only this sink's finished segments are ever deleted: never the active file, never a
/// segment being compressed, never another stem's or a foreign file.
///
/// ```
/// use std::time::Duration;
/// use tracing_filesink::Retention;
/// let r = Retention::files(30)
///     .max_bytes(10 << 30)
///     .max_age(Duration::from_secs(30 * 86_400));
/// # let _ = r;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub(crate) files: Option<usize>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) min_free: Option<u64>,
}

impl Retention {
    /// Keep every finished segment (the default).
    pub const fn keep_all() -> Retention {
        Retention {
            files: None,
            max_bytes: None,
            max_age: None,
            min_free: None,
        }
    }
    /// Keep the newest `n` finished segments (plain or compressed; the active file is not
    /// counted). Exact, also across restarts. `build()` refuses 0.
    pub const fn files(n: usize) -> Retention {
        Retention {
            files: Some(n),
            ..Retention::keep_all()
        }
    }
    /// Also keep the sink's files (active file included) within `bytes` on disk, deleting the
    /// oldest finished segments first. Because the active file counts, `build()` refuses 0
    /// and a limit below a size [`Rotation`](crate::Rotation) (the active file alone would
    /// fill it and every finished segment would go); a limit of a few times the rotation size
    /// keeps a few finished segments. With time rotation only, the limit is not checked
    /// against anything: an active file larger than the limit leaves no finished segment.
    #[must_use]
    pub const fn max_bytes(mut self, bytes: u64) -> Retention {
        self.max_bytes = Some(bytes);
        self
    }
    /// Also delete finished segments last written more than `age` ago.
    #[must_use]
    pub const fn max_age(mut self, age: Duration) -> Retention {
        self.max_age = Some(age);
        self
    }
    /// Also delete the oldest finished segments while the file system has less than `bytes`
    /// free.
    #[must_use]
    pub const fn min_free_bytes(mut self, bytes: u64) -> Retention {
        self.min_free = Some(bytes);
        self
    }

    /// Refuses limits that would delete every finished segment as soon as it is finished:
    /// 0 files, 0 bytes, an age of 0, or a size limit below `rotation_size` (the active file,
    /// counted in the limit, would fill it alone). The messages speak of values, not of
    /// this API, because a configuration file's user reads them too.
    pub(crate) fn validate(&self, rotation_size: Option<u64>) -> Result<(), String> {
        const EVERY: &str = "would delete every finished segment as soon as it is finished";
        if self.files == Some(0) {
            return Err(format!(
                "keeping 0 files {EVERY}: keep at least 1 file, or set no file limit to keep \
                 them all"
            ));
        }
        if self.max_bytes == Some(0) {
            return Err(format!(
                "a size limit of 0 bytes {EVERY}: give a size of at least the rotation size, \
                 or set no size limit"
            ));
        }
        if self.max_age == Some(Duration::ZERO) {
            return Err(format!(
                "an age limit of 0 {EVERY}: give an age greater than zero, or set no age limit"
            ));
        }
        if let (Some(limit), Some(rotation)) = (self.max_bytes, rotation_size) {
            if limit < rotation {
                return Err(format!(
                    "a size limit of {} is below the rotation size of {} (`rotation`): the \
                     active file, counted in the limit, fills it alone, so every finished \
                     segment would be deleted. Make the limit at least the rotation size (a few \
                     times it keeps a few segments), or rotate at a smaller size",
                    crate::parse::size_text(limit),
                    crate::parse::size_text(rotation)
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn is_on(&self) -> bool {
        *self != Retention::keep_all()
    }
}

/// One finished segment as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegInfo {
    pub(crate) seq: u64,
    /// Bytes on disk (plain and compressed copies together, if both exist).
    pub(crate) bytes: u64,
    pub(crate) modified: SystemTime,
}

/// The sequence numbers to delete, oldest first. `segs` must be sorted by sequence number.
pub(crate) fn plan(
    segs: &[SegInfo],
    active_bytes: u64,
    policy: &Retention,
    now: SystemTime,
    free_bytes: Option<u64>,
) -> Vec<u64> {
    let n = segs.len();
    // Everything before index `cut` goes.
    let mut cut = 0usize;
    if let Some(keep) = policy.files {
        cut = cut.max(n.saturating_sub(keep));
    }
    if let Some(age) = policy.max_age {
        if let Some(limit) = now.checked_sub(age) {
            // Ages are not monotone in seq if the clock moved; delete only the old ones, but
            // keep the plan a prefix so the newest data always survives.
            if let Some(last_old) = segs.iter().rposition(|s| s.modified < limit) {
                cut = cut.max(last_old + 1);
            }
        }
    }
    if let Some(max) = policy.max_bytes {
        let mut total: u64 = active_bytes + segs[cut..].iter().map(|s| s.bytes).sum::<u64>();
        while total > max && cut < n {
            total -= segs[cut].bytes;
            cut += 1;
        }
    }
    if let (Some(min_free), Some(free)) = (policy.min_free, free_bytes) {
        // Deleting what the other limits already doomed frees space too.
        let mut free = free + segs[..cut].iter().map(|s| s.bytes).sum::<u64>();
        while free < min_free && cut < n {
            free += segs[cut].bytes;
            cut += 1;
        }
    }
    segs[..cut].iter().map(|s| s.seq).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn segs(sizes: &[u64]) -> Vec<SegInfo> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &b)| SegInfo {
                seq: i as u64 + 1,
                bytes: b,
                modified: UNIX_EPOCH + Duration::from_secs(1000 + i as u64 * 100),
            })
            .collect()
    }

    /// The naive oracle: try every prefix length, take the shortest that satisfies all limits.
    fn naive(
        s: &[SegInfo],
        active: u64,
        p: &Retention,
        now: SystemTime,
        free: Option<u64>,
    ) -> Vec<u64> {
        for cut in 0..=s.len() {
            let kept = &s[cut..];
            let ok_files = p.files.is_none_or(|k| kept.len() <= k);
            let ok_age = p.max_age.is_none_or(|a| {
                let limit = now.checked_sub(a).unwrap();
                kept.iter().all(|x| x.modified >= limit)
            });
            let ok_bytes = p
                .max_bytes
                .is_none_or(|m| active + kept.iter().map(|x| x.bytes).sum::<u64>() <= m);
            let ok_free = match (p.min_free, free) {
                (Some(m), Some(f)) => f + s[..cut].iter().map(|x| x.bytes).sum::<u64>() >= m,
                _ => true,
            };
            if ok_files && ok_age && ok_bytes && ok_free {
                return s[..cut].iter().map(|x| x.seq).collect();
            }
        }
        s.iter().map(|x| x.seq).collect()
    }

    #[test]
    fn matches_naive_oracle() {
        let mut rng = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..5000 {
            let n = (next() % 12) as usize;
            let sizes: Vec<u64> = (0..n).map(|_| next() % 100 + 1).collect();
            let s = segs(&sizes);
            let mut p = Retention::keep_all();
            if next() % 2 == 0 {
                p = Retention::files((next() % 8) as usize);
            }
            if next() % 2 == 0 {
                p = p.max_bytes(next() % 600);
            }
            if next() % 2 == 0 {
                p = p.max_age(Duration::from_secs(next() % 1500 + 1));
            }
            let free = if next() % 2 == 0 {
                p = p.min_free_bytes(next() % 400);
                Some(next() % 300)
            } else {
                None
            };
            let active = next() % 50;
            let now = UNIX_EPOCH + Duration::from_secs(2200);
            assert_eq!(
                plan(&s, active, &p, now, free),
                naive(&s, active, &p, now, free),
                "{p:?} {sizes:?} active {active} free {free:?}"
            );
        }
    }

    #[test]
    fn files_keeps_exactly_n() {
        let s = segs(&[1; 10]);
        let now = UNIX_EPOCH;
        assert_eq!(
            plan(&s, 0, &Retention::files(3), now, None),
            (1..=7).collect::<Vec<_>>()
        );
        assert!(plan(&s, 0, &Retention::files(30), now, None).is_empty());
        assert_eq!(plan(&s, 0, &Retention::files(0), now, None).len(), 10);
        assert!(plan(&s, 0, &Retention::keep_all(), now, None).is_empty());
    }
}
