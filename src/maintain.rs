//! The maintenance thread: compression and retention of finished segments.
//!
//! The writer only pokes it (a non-blocking send into a one-slot channel that coalesces
//! pokes), so compression falling behind never slows the writer or a caller: segments wait
//! plain, counted as backlog. Each pass rescans the directory, so a backlog, a restart or a
//! segment left plain by a failed compression is picked up by the next pass. Compression and
//! retention share this one thread, so retention never deletes a segment being compressed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::error::Error;
use crate::queue::Queue;
use crate::retain::{self, SegInfo};
use crate::segment::{self, name};

/// Without pokes, a pass still runs this often (age-based retention, free-space checks,
/// retrying failed compressions).
const IDLE_PASS: Duration = Duration::from_secs(30);

pub(crate) struct Maintenance {
    tx: Sender<()>,
    /// Requests to be told when a full pass has run (`guard.wait_idle`).
    barrier: Sender<Sender<()>>,
    stop: Arc<AtomicBool>,
    done: Receiver<()>,
    handle: JoinHandle<()>,
}

impl Maintenance {
    /// `lock` is the sink's directory lock, held by this thread until it exits.
    pub(crate) fn start(
        cfg: Arc<Config>,
        queue: Arc<Queue>,
        lock: Arc<std::fs::File>,
    ) -> Result<Option<Maintenance>, Error> {
        if !cfg.compression.is_on() && !cfg.retention.is_on() {
            return Ok(None);
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (barrier, barrier_rx) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let path = cfg.dir.clone();
        let handle = std::thread::Builder::new()
            .name(format!("filesink-{}-maint", cfg.stem))
            .spawn(move || {
                // Compression gets only the CPU the application leaves idle (nice 19 on
                // Linux; each platform's equivalent is in `crate::sys`): on a busy machine
                // segments wait plain, counted as backlog, rather than slow logging.
                // Retention runs between compressions, so it never waits for a whole backlog.
                crate::sys::lower_thread_priority();
                crate::health::mark_sink_thread();
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(&cfg, &queue, &rx, &barrier_rx, &s);
                    // Stopping: retention once more, so the bound holds when the sink has
                    // stopped even if compression was left for the next start (deleting is
                    // cheap; the segments sealed last were finished meanwhile). Still under
                    // the directory's lock.
                    retain_pass(&cfg, &queue, &AtomicBool::new(false));
                }));
                if ran.is_err() {
                    // Compression and retention stop; the writer goes on writing.
                    queue.counters.error(Error::panicked("maintenance"));
                }
                drop(lock);
                let _ = done_tx.send(());
            })
            .map_err(|e| Error::io("spawn maintenance thread", &path, e))?;
        let _ = tx.try_send(());
        Ok(Some(Maintenance {
            tx,
            barrier,
            stop,
            done,
            handle,
        }))
    }

    pub(crate) fn notifier(&self) -> Sender<()> {
        self.tx.clone()
    }

    /// Asks for a full pass; the returned channel answers once it has run.
    pub(crate) fn request_pass(&self) -> Receiver<()> {
        let (ack, rx) = crossbeam_channel::bounded(1);
        let _ = self.barrier.send(ack);
        rx
    }

    /// Stops after the current step (an unfinished compression is abandoned, its temp file
    /// removed), applies retention once more, and joins, waiting at most until `deadline`.
    pub(crate) fn stop(self, deadline: Instant) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.tx.try_send(());
        drop(self.tx);
        if self.done.recv_deadline(deadline).is_ok() {
            let _ = self.handle.join();
        }
    }
}

fn run(
    cfg: &Config,
    queue: &Queue,
    rx: &Receiver<()>,
    barriers: &Receiver<Sender<()>>,
    stop: &AtomicBool,
) {
    loop {
        let mut waiting = Vec::new();
        crossbeam_channel::select! {
            recv(rx) -> poke => if poke.is_err() { return },
            recv(barriers) -> ack => if let Ok(ack) = ack { waiting.push(ack) },
            default(IDLE_PASS) => {},
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        waiting.extend(barriers.try_iter());
        pass(cfg, queue, stop);
        for ack in waiting {
            let _ = ack.send(());
        }
    }
}

/// One pass: retention, then compression of what is due (oldest first) with retention after
/// every segment, so a long compression backlog never holds back deletions.
pub(crate) fn pass(cfg: &Config, queue: &Queue, stop: &AtomicBool) {
    retain_pass(cfg, queue, stop);
    compress_pass(cfg, queue, stop);
}

fn compress_pass(cfg: &Config, queue: &Queue, stop: &AtomicBool) {
    let c = &queue.counters;
    let scan = match segment::scan(cfg) {
        Ok(s) => s,
        Err(e) => {
            c.report(&e);
            return;
        }
    };
    // A compression whose last directory fsync failed left the segment twice: settle it now,
    // not at the next start.
    for (seq, s) in &scan.segments {
        if s.plain.is_some() && s.gz.is_some() {
            let plain = cfg.path(&name::segment(&cfg.stem, *seq, &s.label));
            let gz = cfg.path(&name::compressed(&cfg.stem, *seq, &s.label));
            match crate::compress::settle(cfg, &plain, &gz, stop) {
                Err(e) if !crate::compress::is_abandoned(&e) => c.error(e),
                _ => {}
            }
        }
    }
    if !cfg.compression.is_on() {
        return;
    }
    // One segment per scan: segments finished while this pass compresses are seen (and
    // counted as backlog) at once, not at the next pass.
    let mut failed = std::collections::BTreeSet::new();
    let mut scan = scan;
    loop {
        // The newest `compress_after` finished segments stay plain.
        let total = scan.segments.values().filter(|s| s.is_finished()).count();
        let due: Vec<(u64, String)> = scan
            .segments
            .iter()
            .filter(|(_, s)| s.is_finished())
            .take(total.saturating_sub(cfg.compress_after))
            .filter(|(_, s)| s.plain.is_some() && s.gz.is_none())
            .map(|(seq, s)| (*seq, s.label.clone()))
            .collect();
        c.compression_backlog
            .store(due.len() as u64, Ordering::Relaxed);
        let waiting = due.len();
        // A segment that failed in this pass waits for the next one (a poke or the idle pass).
        let Some((seq, label)) = due.into_iter().find(|(seq, _)| !failed.contains(seq)) else {
            return;
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let plain = cfg.path(&name::segment(&cfg.stem, seq, &label));
        let gz = cfg.path(&name::compressed(&cfg.stem, seq, &label));
        // Retention, run between compressions, may have deleted it meanwhile.
        if cfg.fs.identity(&plain).is_ok() {
            // Only the one segment just finished waits out a burst: once a second one is due,
            // waiting would only grow the backlog, so compression runs (still at nice 19) and
            // an unpinned gzip drops to its catch-up level.
            let pacer = Pacer::new(c, stop, waiting <= 1);
            let level = cfg.compression.level_for(waiting);
            match crate::compress::compress(cfg, &plain, &gz, level, stop, &|| pacer.pace()) {
                Ok(()) => {
                    c.segments_compressed.fetch_add(1, Ordering::Relaxed);
                }
                // Abandoned at shutdown: not a failure. A real failure counts even when it is
                // handled after `stop` was set (this thread runs at nice 19 and may get the
                // CPU back only once shutdown has begun): it happened, and nothing else
                // would report it.
                Err(e) if crate::compress::is_abandoned(&e) => return,
                Err(e) => {
                    failed.insert(seq);
                    c.compression_failures.fetch_add(1, Ordering::Relaxed);
                    c.report(&e);
                }
            }
        } else {
            failed.insert(seq);
        }
        // Compression at nice 19 can take long on a busy machine; deletions due
        // meanwhile must not wait for the whole backlog.
        retain_pass(cfg, queue, stop);
        scan = match segment::scan(cfg) {
            Ok(s) => s,
            Err(e) => {
                c.report(&e);
                return;
            }
        };
    }
}

fn retain_pass(cfg: &Config, queue: &Queue, stop: &AtomicBool) {
    let c = &queue.counters;
    if stop.load(Ordering::SeqCst) {
        return;
    }
    let scan = match segment::scan(cfg) {
        Ok(s) => s,
        Err(e) => {
            c.report(&e);
            return;
        }
    };
    let active_bytes = scan.active.as_ref().map_or(0, |a| a.len);
    // A sealed segment not yet finished counts (place and bytes) but is never deleted, and
    // nothing after it is either: what retention removes is always the oldest data.
    let first_pending = scan
        .segments
        .iter()
        .find(|(_, s)| s.pending.is_some() && !s.is_finished())
        .map(|(seq, _)| *seq);
    let infos: Vec<SegInfo> = scan
        .segments
        .iter()
        .map(|(seq, s)| {
            let files = [&s.plain, &s.gz, &s.pending];
            SegInfo {
                seq: *seq,
                bytes: files.iter().filter_map(|f| f.as_ref()).map(|f| f.len).sum(),
                modified: files
                    .iter()
                    .filter_map(|f| f.as_ref())
                    .map(|f| f.modified)
                    .max()
                    .unwrap_or(std::time::UNIX_EPOCH),
            }
        })
        .collect();
    let mut segment_bytes = infos.iter().map(|s| s.bytes).sum::<u64>();
    if cfg.retention.is_on() {
        let free = cfg
            .retention
            .min_free
            .and_then(|_| cfg.fs.free_bytes(&cfg.dir).ok());
        let doomed = retain::plan(
            &infos,
            active_bytes,
            &cfg.retention,
            cfg.formatter.now(),
            free,
        )
        .into_iter()
        .take_while(|seq| first_pending.is_none_or(|p| *seq < p));
        let mut removed_any = false;
        for seq in doomed {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Some(s) = scan.segments.get(&seq) else {
                continue;
            };
            let mut all_removed = true;
            for (present, file) in [
                (s.plain.is_some(), name::segment(&cfg.stem, seq, &s.label)),
                (s.gz.is_some(), name::compressed(&cfg.stem, seq, &s.label)),
            ] {
                if !present {
                    continue;
                }
                let p = cfg.path(&file);
                match crate::fs::remove_if_present(&*cfg.fs, &p) {
                    Ok(removed) => removed_any |= removed,
                    // Kept for the next flush()/sync(), like the writer's errors.
                    Err(e) => {
                        all_removed = false;
                        c.error(Error::io("remove old segment", &p, e));
                    }
                }
            }
            if !all_removed {
                continue;
            }
            if let Some(i) = infos.iter().find(|i| i.seq == seq) {
                segment_bytes -= i.bytes;
            }
            c.segments_pruned.fetch_add(1, Ordering::Relaxed);
        }
        if removed_any {
            if let Err(e) = cfg.fs.sync_dir(&cfg.dir) {
                c.error(Error::io("fsync directory", &cfg.dir, e));
            }
        }
    }
    // The active file's size is the writer's to count: it is newer than this scan's.
    c.segment_bytes.store(segment_bytes, Ordering::Relaxed);
}

/// Logging faster than this counts as heavy: compression waits.
const HEAVY_BYTES_PER_SEC: f64 = 16.0 * 1024.0 * 1024.0;
/// How often the write rate is looked at, and how long one wait lasts.
const PACE_SAMPLE: Duration = Duration::from_millis(20);
const PACE_WAIT: Duration = Duration::from_millis(50);
/// The most one segment's compression waits in all, so a sink that always logs heavily
/// still gets its segments compressed (at nice 19).
const MAX_DEFER: Duration = Duration::from_secs(10);

/// Background work yields to the application: nice 19 still takes a share of a busy CPU
/// (gzip cost about a tenth of the throughput of 4 threads logging flat out on 2 cores), so
/// while the writer hands the kernel more than [`HEAVY_BYTES_PER_SEC`], compression of the
/// one segment just finished waits. It never waits once another segment is due: under
/// sustained heavy logging waiting cannot help, it would only let plain segments pile up.
struct Pacer<'a> {
    counters: &'a crate::stats::Counters,
    stop: &'a AtomicBool,
    defer: bool,
    /// Rotations when this segment's compression began: one more means another segment is
    /// due, and waiting would only grow the backlog.
    rotations: u64,
    last: std::cell::Cell<(Instant, u64)>,
    waited: std::cell::Cell<Duration>,
}

impl<'a> Pacer<'a> {
    /// `defer` false: never wait (compression is behind).
    fn new(counters: &'a crate::stats::Counters, stop: &'a AtomicBool, defer: bool) -> Pacer<'a> {
        Pacer {
            counters,
            stop,
            defer,
            rotations: counters.rotations.load(Ordering::Relaxed),
            last: std::cell::Cell::new((
                Instant::now(),
                counters.bytes_written.load(Ordering::Relaxed),
            )),
            waited: std::cell::Cell::new(Duration::ZERO),
        }
    }

    fn pace(&self) {
        loop {
            if !self.defer
                || self.stop.load(Ordering::SeqCst)
                || self.waited.get() >= MAX_DEFER
                || self.counters.rotations.load(Ordering::Relaxed) != self.rotations
            {
                return;
            }
            let (t0, b0) = self.last.get();
            let elapsed = t0.elapsed();
            if elapsed < PACE_SAMPLE {
                return;
            }
            let bytes = self.counters.bytes_written.load(Ordering::Relaxed);
            self.last.set((Instant::now(), bytes));
            let rate = bytes.saturating_sub(b0) as f64 / elapsed.as_secs_f64();
            if rate < HEAVY_BYTES_PER_SEC {
                return;
            }
            std::thread::park_timeout(PACE_WAIT);
            self.waited.set(self.waited.get() + PACE_WAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Counters;

    /// A pacer that last sampled 30 ms ago, with 100 MB written since: heavy logging.
    fn pacer<'a>(counters: &'a Counters, stop: &'a AtomicBool, defer: bool) -> Pacer<'a> {
        let p = Pacer::new(counters, stop, defer);
        p.last.set((Instant::now() - Duration::from_millis(30), 0));
        counters.bytes_written.store(100_000_000, Ordering::Relaxed);
        p
    }

    #[test]
    fn the_segment_just_finished_waits_out_heavy_logging() {
        let (c, stop) = (Counters::default(), AtomicBool::new(false));
        let p = pacer(&c, &stop, true);
        p.pace();
        // One wait, then the next sample sees nothing written: the burst is over.
        assert_eq!(p.waited.get(), PACE_WAIT);
    }

    #[test]
    fn compression_never_waits_once_another_segment_is_due() {
        let (c, stop) = (Counters::default(), AtomicBool::new(false));
        // More than one segment waiting when this one began.
        let p = pacer(&c, &stop, false);
        p.pace();
        assert_eq!(p.waited.get(), Duration::ZERO);
        // A segment finished while this one was being compressed.
        let p = pacer(&c, &stop, true);
        c.rotations.fetch_add(1, Ordering::Relaxed);
        p.pace();
        assert_eq!(p.waited.get(), Duration::ZERO);
    }
}
