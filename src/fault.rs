//! Deterministic crash points: a fault-injecting [`Fs`] and the tests that sweep it over a
//! whole rotation + compression + retention cycle.
//!
//! [`FaultFs`] runs every operation on a real directory and counts them. At the Nth it either
//! fails that one operation ([`Fault::Fail`]) or "crashes": from then on every operation
//! fails, and the directory is left as a killed process ([`Fault::Kill`]: the interrupted
//! write torn halfway, nothing undone) or a power loss ([`Fault::PowerLoss`]: file data cut
//! back to what was last fsynced, and creations, renames and removals since the last
//! `sync_dir` undone) would leave it. A removal is a rename into a trash directory outside
//! the log directory until the next `sync_dir`, so a power loss can bring the file back.
//!
//! Every operation runs under one lock, so nothing can slip in between a crash and its
//! rollback, and nothing changes afterwards.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::fs::{Entry, FileHandle, Fs, RealFs};

/// What happens at the Nth operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// That operation fails with this errno; a write first writes half its buffer and reports
    /// that (a short write), and the next write fails. Every operation counts.
    Fail(i32),
    /// The process is killed during that operation: a write is torn halfway; nothing is
    /// rolled back. Only operations that change the file system count.
    Kill,
    /// The machine loses power during that operation: every file is cut back to its length
    /// at its last fsync, and directory changes since the last `sync_dir` are undone. Only
    /// operations that change the file system count.
    PowerLoss,
    /// That operation panics (a bug or an allocation failure on the thread running it).
    /// Only operations that change the file system count.
    Panic,
}

#[derive(Debug)]
enum DirOp {
    Create(PathBuf),
    Rename { from: PathBuf, to: PathBuf },
    Remove { path: PathBuf, trash: PathBuf },
}

impl DirOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            DirOp::Create(p) | DirOp::Remove { path: p, .. } | DirOp::Rename { to: p, .. } => {
                p.parent()
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    ops: u64,
    crashed: bool,
    /// The operation the fault hit, once it did.
    fired: Option<&'static str>,
    /// A short write happened: the next write fails.
    fail_next_write: bool,
    /// The count of operations when the injected error was returned.
    failed_at: Option<u64>,
    /// (device, inode) → length at the last fsync (or when first seen).
    synced: HashMap<(u64, u64), u64>,
    /// Directory changes not yet made durable by `sync_dir`, oldest first.
    pending: Vec<DirOp>,
    trash_seq: u64,
}

#[derive(Debug)]
struct Shared {
    real: RealFs,
    /// The Nth counted operation faults (0: never).
    at: u64,
    fault: Fault,
    /// The log directory whose files a power loss cuts back.
    dir: PathBuf,
    /// Where removed files wait for the next `sync_dir` (outside `dir`).
    trash: PathBuf,
    state: Mutex<State>,
    /// Writes wait while this is held (a hung network file system); see `hold_writes`.
    gate: Mutex<Gate>,
    gate_cv: Condvar,
}

/// Operations that can be held at the gate: writes and fsyncs of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    Write = 0,
    Fsync = 1,
}

#[derive(Debug, Default)]
struct Gate {
    held: [bool; 2],
    /// Operations waiting at the gate now, by kind.
    waiting: [usize; 2],
    /// The next write panics.
    panic_next_write: bool,
    /// The next fsync of a file fails with this errno.
    fail_next_fsync: Option<i32>,
    /// Every write takes at least this long (a slow disk).
    write_delay: std::time::Duration,
    /// Every fsync of a file takes at least this long (slow storage, working).
    fsync_delay: std::time::Duration,
}

/// The fault-injecting file system. Clones share one state.
#[derive(Debug, Clone)]
pub(crate) struct FaultFs(Arc<Shared>);

fn dead() -> io::Error {
    io::Error::other("fault injection: crashed")
}

fn id_of(path: &Path) -> io::Result<(u64, u64)> {
    crate::sys::path_identity(path)
}

enum Step<'a> {
    Go(MutexGuard<'a, State>),
    Fail(io::Error),
    /// The crash point: the caller may tear its write, then calls `crash`.
    Crash(MutexGuard<'a, State>),
}

impl FaultFs {
    /// Faults at the `at`th counted operation (0: never) in `dir`, keeping removed files in
    /// `trash` (created here; it must be on the same file system, outside `dir`).
    pub(crate) fn new(dir: &Path, trash: &Path, at: u64, fault: Fault) -> FaultFs {
        std::fs::create_dir_all(trash).expect("create trash dir");
        FaultFs(Arc::new(Shared {
            real: RealFs,
            at,
            fault,
            dir: dir.to_path_buf(),
            trash: trash.to_path_buf(),
            state: Mutex::new(State::default()),
            gate: Mutex::new(Gate::default()),
            gate_cv: Condvar::new(),
        }))
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.0.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on every operation of this kind blocks, inside the "system call" (a hung
    /// network file system), until `release`.
    pub(crate) fn hold(&self, op: Held) {
        self.gate().held[op as usize] = true;
    }

    pub(crate) fn release(&self, op: Held) {
        self.gate().held[op as usize] = false;
        self.0.gate_cv.notify_all();
    }

    /// Operations of this kind blocked at the gate now.
    pub(crate) fn waiting(&self, op: Held) -> usize {
        self.gate().waiting[op as usize]
    }

    /// The next fsync of a file fails with `errno`.
    pub(crate) fn fail_next_fsync(&self, errno: i32) {
        self.gate().fail_next_fsync = Some(errno);
    }

    /// The next write panics.
    pub(crate) fn panic_on_next_write(&self) {
        self.gate().panic_next_write = true;
    }

    /// Every later write takes at least `d`: a slow disk, not a failing one.
    pub(crate) fn slow_writes(&self, d: std::time::Duration) {
        self.gate().write_delay = d;
    }

    /// Every later fsync of a file takes at least `d`: slow storage, not a hung one.
    pub(crate) fn slow_fsyncs(&self, d: std::time::Duration) {
        self.gate().fsync_delay = d;
    }

    /// Where every write and fsync passes first: blocks while its kind is held; a write
    /// panics when told to; both wait out the slow disk's delay.
    fn gate_pass(&self, op: Held) {
        let mut g = self.gate();
        if op == Held::Fsync && !g.fsync_delay.is_zero() {
            let d = g.fsync_delay;
            drop(g);
            std::thread::sleep(d); // the slow disk itself, not synchronization
            g = self.gate();
        }
        if op == Held::Write && std::mem::take(&mut g.panic_next_write) {
            drop(g);
            panic!("fault injection: panic in write");
        }
        if op == Held::Write && !g.write_delay.is_zero() {
            let d = g.write_delay;
            drop(g);
            std::thread::sleep(d); // the slow disk itself, not synchronization
            g = self.gate();
        }
        g.waiting[op as usize] += 1;
        while g.held[op as usize] {
            g = self.0.gate_cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g.waiting[op as usize] -= 1;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Operations counted so far.
    pub(crate) fn ops(&self) -> u64 {
        self.lock().ops
    }

    pub(crate) fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// When the injected error was returned (for a short write: the write after it), as a
    /// count of operations.
    pub(crate) fn failed_at(&self) -> Option<u64> {
        self.lock().failed_at
    }

    /// The kind of operation the fault hit, if it was reached.
    pub(crate) fn fired(&self) -> Option<&'static str> {
        self.lock().fired
    }

    fn begin(&self, kind: &'static str, mutating: bool) -> Step<'_> {
        let mut st = self.lock();
        if st.crashed {
            return Step::Fail(dead());
        }
        let crash_mode = !matches!(self.0.fault, Fault::Fail(_));
        if mutating || !crash_mode {
            st.ops += 1;
            if st.ops == self.0.at {
                st.fired = Some(kind);
                match self.0.fault {
                    Fault::Fail(errno) => {
                        if kind == "write" {
                            // The short write is done by the caller; the next write fails.
                            st.fail_next_write = true;
                            return Step::Crash(st);
                        }
                        st.failed_at = Some(st.ops);
                        return Step::Fail(io::Error::from_raw_os_error(errno));
                    }
                    Fault::Kill | Fault::PowerLoss => return Step::Crash(st),
                    Fault::Panic => {
                        drop(st);
                        panic!("fault injection: panic in {kind}");
                    }
                }
            }
        }
        if kind == "write" && st.fail_next_write {
            st.fail_next_write = false;
            if let Fault::Fail(errno) = self.0.fault {
                st.failed_at = Some(st.ops);
                return Step::Fail(io::Error::from_raw_os_error(errno));
            }
        }
        Step::Go(st)
    }

    /// Runs a non-write operation.
    fn run<T>(
        &self,
        kind: &'static str,
        mutating: bool,
        f: impl FnOnce(&mut State) -> io::Result<T>,
    ) -> io::Result<T> {
        match self.begin(kind, mutating) {
            Step::Go(mut st) => f(&mut st),
            Step::Fail(e) => Err(e),
            Step::Crash(st) => {
                self.crash(st);
                Err(dead())
            }
        }
    }

    fn crash(&self, mut st: MutexGuard<'_, State>) {
        st.crashed = true;
        if self.0.fault == Fault::PowerLoss {
            self.roll_back(&mut st);
        }
        // What was removed stays removed (a kill), or came back (a power loss).
        let _ = std::fs::remove_dir_all(&self.0.trash);
        let _ = std::fs::create_dir_all(&self.0.trash);
        st.pending.clear();
    }

    /// What a power loss leaves: directory changes since the last `sync_dir` undone, newest
    /// first, then every file we know cut back to its length at its last fsync.
    fn roll_back(&self, st: &mut State) {
        for op in st.pending.drain(..).rev() {
            match op {
                DirOp::Create(p) => {
                    let _ = std::fs::remove_file(&p);
                }
                DirOp::Rename { from, to } => {
                    let _ = std::fs::rename(&to, &from);
                }
                DirOp::Remove { path, trash } => {
                    let _ = std::fs::rename(&trash, &path);
                }
            }
        }
        let Ok(rd) = std::fs::read_dir(&self.0.dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(id) = id_of(&p) else { continue };
            let Some(&len) = st.synced.get(&id) else {
                continue;
            };
            let cur = std::fs::symlink_metadata(&p).map_or(0, |m| m.len());
            if cur > len {
                if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&p) {
                    let _ = f.set_len(len);
                }
            }
        }
    }

    fn wrap(&self, inner: Box<dyn FileHandle>) -> Box<dyn FileHandle> {
        Box::new(FaultFile {
            fs: self.clone(),
            inner,
        })
    }
}

#[derive(Debug)]
struct FaultFile {
    fs: FaultFs,
    inner: Box<dyn FileHandle>,
}

impl Write for FaultFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fs.gate_pass(Held::Write);
        match self.fs.begin("write", true) {
            Step::Go(_st) => self.inner.write(buf),
            Step::Fail(e) => Err(e),
            Step::Crash(st) => {
                if buf.len() > 1 && self.fs.0.fault != Fault::PowerLoss {
                    let half = buf.len() / 2;
                    let n = self.inner.write(&buf[..half]);
                    if matches!(self.fs.0.fault, Fault::Fail(_)) {
                        return n;
                    }
                } else if let Fault::Fail(errno) = self.fs.0.fault {
                    let mut st = st;
                    st.fail_next_write = false;
                    st.failed_at = Some(st.ops);
                    return Err(io::Error::from_raw_os_error(errno));
                }
                self.fs.crash(st);
                Err(dead())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FileHandle for FaultFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.fs
            .run("read_at", false, |_| self.inner.read_at(buf, offset))
    }
    fn sync(&mut self) -> io::Result<()> {
        self.fs.gate_pass(Held::Fsync);
        if let Some(errno) = self.fs.gate().fail_next_fsync.take() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let inner = &mut self.inner;
        self.fs.run("fsync", true, |st| {
            inner.sync()?;
            let id = inner.identity()?;
            st.synced.insert(id, inner.len()?);
            Ok(())
        })
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let inner = &mut self.inner;
        self.fs.run("set_len", true, |_| inner.set_len(len))
    }
    fn len(&self) -> io::Result<u64> {
        self.fs.run("len", false, |_| self.inner.len())
    }
    fn identity(&self) -> io::Result<(u64, u64)> {
        self.fs.run("identity", false, |_| self.inner.identity())
    }
}

impl Fs for FaultFs {
    fn open_append(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        let f = self.run("open_append", true, |st| {
            let existed = std::fs::symlink_metadata(path).is_ok();
            let f = self.0.real.open_append(path, mode)?;
            let id = f.identity()?;
            if !existed {
                st.pending.push(DirOp::Create(path.to_path_buf()));
            }
            // What was there before we opened it counts as durable.
            let len = if existed { f.len()? } else { 0 };
            st.synced.entry(id).or_insert(len);
            Ok(f)
        })?;
        Ok(self.wrap(f))
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        let f = self.run("create_new", true, |st| {
            let f = self.0.real.create_new(path, mode)?;
            st.pending.push(DirOp::Create(path.to_path_buf()));
            st.synced.insert(f.identity()?, 0);
            Ok(f)
        })?;
        Ok(self.wrap(f))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let f = self.run("open_read", false, |_| self.0.real.open_read(path))?;
        Ok(self.wrap(f))
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.run("write_at", true, |_| {
            self.0.real.write_at(path, offset, data)
        })
    }

    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.run("rename", true, |st| {
            self.0.real.rename_noreplace(from, to)?;
            st.pending.push(DirOp::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
            });
            Ok(())
        })
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.run("remove", true, |st| {
            let m = std::fs::symlink_metadata(path)?;
            if m.is_dir() {
                return Err(io::Error::from_raw_os_error(
                    crate::sys::errno::IS_A_DIRECTORY,
                ));
            }
            st.trash_seq += 1;
            let trash = self.0.trash.join(format!("{}", st.trash_seq));
            std::fs::rename(path, &trash)?;
            st.pending.push(DirOp::Remove {
                path: path.to_path_buf(),
                trash,
            });
            Ok(())
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.run("sync_dir", true, |st| {
            self.0.real.sync_dir(dir)?;
            let (done, keep): (Vec<DirOp>, Vec<DirOp>) = std::mem::take(&mut st.pending)
                .into_iter()
                .partition(|op| op.dir() == Some(dir));
            st.pending = keep;
            for op in done {
                if let DirOp::Remove { trash, .. } = op {
                    let _ = std::fs::remove_file(trash);
                }
            }
            Ok(())
        })
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        self.run("read_dir", false, |_| self.0.real.read_dir(dir))
    }

    fn identity(&self, path: &Path) -> io::Result<(u64, u64)> {
        self.run("identity", false, |_| self.0.real.identity(path))
    }

    fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        self.run("free_bytes", false, |_| self.0.real.free_bytes(dir))
    }

    fn create_dir_all(&self, dir: &Path, mode: u32) -> io::Result<()> {
        self.run("create_dir_all", true, |_| {
            self.0.real.create_dir_all(dir, mode)
        })
    }

    fn create_temp(
        &self,
        dir: &Path,
        stem: &str,
        mode: u32,
    ) -> io::Result<(PathBuf, Box<dyn FileHandle>)> {
        let (path, f) = self.run("create_temp", true, |st| {
            let (path, f) = self.0.real.create_temp(dir, stem, mode)?;
            st.pending.push(DirOp::Create(path.clone()));
            st.synced.insert(f.identity()?, 0);
            Ok((path, f))
        })?;
        Ok((path, self.wrap(f)))
    }

    fn set_modified(&self, path: &Path, t: SystemTime) -> io::Result<()> {
        self.run("set_modified", true, |_| self.0.real.set_modified(path, t))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io::Read as _;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tracing_subscriber::prelude::*;

    use super::{Fault, FaultFs};
    use crate::fs::Fs as _;
    use crate::{Compression, FileSink, Retention};
    use std::io::Write as _;

    const STEM: &str = "app";
    /// Records logged between two rotations.
    const PER_SEGMENT: u64 = 5;
    const SEGMENTS: u64 = 4;
    /// Sequence numbers of the records logged after the restart.
    const AFTER_RESTART: u64 = 1_000_000;

    /// What the faulty run got acknowledged before the fault.
    #[derive(Debug, Default)]
    struct Run {
        /// Records `0..flushed` were acknowledged by a successful `flush()` or `sync()`.
        flushed: u64,
        /// Records `0..synced` were acknowledged by a successful `sync()`.
        synced: u64,
        /// Errors returned by `build`, `flush`, `sync`, `rotate` or `shutdown`.
        errors: Vec<String>,
        write_errors: u64,
        compression_failures: u64,
        pruned: u64,
        /// Operations done before `shutdown()` was called.
        ops_before_shutdown: u64,
    }

    fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if cond() {
                return true;
            }
            std::thread::yield_now();
            std::thread::sleep(Duration::from_millis(1)); // polling interval, not synchronization
        }
        let _ = what;
        cond()
    }

    /// True when no thread of a sink holds the directory's lock (the last one to exit
    /// releases it).
    fn lock_free(dir: &Path) -> bool {
        match std::fs::File::open(dir.join(crate::segment::name::lock(STEM))) {
            Ok(f) => f.try_lock().is_ok(),
            // No lock file: the sink never started.
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }

    /// This stem's finished segments, plain and compressed, and temp files, from a listing.
    fn classify(dir: &Path) -> (usize, usize, usize) {
        let (mut plain, mut gz, mut tmp) = (0, 0, 0);
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if crate::segment::name::is_temp(STEM, &n) {
                tmp += 1;
            } else if let Some(s) = crate::segment::name::parse(STEM, &n) {
                if s.compressed {
                    gz += 1;
                } else {
                    plain += 1;
                }
            }
        }
        (plain, gz, tmp)
    }

    /// Logs, flushes, syncs, rotates `SEGMENTS` times with compression and retention, through
    /// `fs`; stops at the first sign of a crash.
    fn faulty_run(dir: &Path, fs: &FaultFs) -> Run {
        let mut run = Run::default();
        let built = FileSink::builder(dir, STEM)
            .compression(Compression::gzip().level(1))
            .retention(Retention::files(2))
            .shutdown_timeout(Duration::from_millis(100))
            .with_fs(Arc::new(fs.clone()))
            .build();
        let (layer, guard) = match built {
            Ok(x) => x,
            Err(e) => {
                run.errors.push(format!("build: {e}"));
                return run;
            }
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        let mut seq = 0u64;
        tracing::subscriber::with_default(subscriber, || {
            for segment in 0..=SEGMENTS {
                for _ in 0..PER_SEGMENT {
                    tracing::info!(seq, "record");
                    seq += 1;
                }
                match guard.flush() {
                    Ok(()) => run.flushed = seq,
                    Err(e) => run.errors.push(format!("flush: {e}")),
                }
                // Sync before the first rotation too: the new active file's directory entry
                // must be durable then.
                if segment % 2 == 0 {
                    match guard.sync() {
                        Ok(()) => {
                            run.flushed = seq;
                            run.synced = seq;
                        }
                        Err(e) => run.errors.push(format!("sync: {e}")),
                    }
                }
                if fs.crashed() || segment == SEGMENTS {
                    break;
                }
                if let Err(e) = guard.rotate() {
                    run.errors.push(format!("rotate: {e}"));
                }
                // Let the maintenance thread compress and prune before going on, so one N
                // is (nearly) one point of one sequence of operations.
                wait_until("maintenance", Duration::from_secs(3), || {
                    let s = guard.stats();
                    let (plain, gz, tmp) = classify(dir);
                    // Past the fault the order of operations no longer matters.
                    fs.fired().is_some()
                        || s.compression_failures > 0
                        || s.write_errors > 0
                        || (plain == 0 && tmp == 0 && gz <= 2 && s.segments_compressed > segment)
                });
            }
        });
        // Maintenance abandons its work at shutdown without counting it as a failure.
        run.ops_before_shutdown = fs.ops();
        if let Err(e) = guard.shutdown(Duration::from_millis(100)) {
            run.errors.push(format!("shutdown: {e}"));
        }
        // The maintenance thread (nice 19) may outlive that deadline on a busy machine and
        // only then count a failure it met before shutdown: read the counters once every
        // thread of the sink has exited, that is once the directory's lock is free.
        assert!(
            wait_until(
                "the sink's threads to exit",
                Duration::from_secs(60),
                || lock_free(dir)
            ),
            "the sink's threads still hold the lock 60 s after shutdown"
        );
        let s = guard.stats();
        run.write_errors = s.write_errors;
        run.compression_failures = s.compression_failures;
        run.pruned = s.segments_pruned;
        drop(guard);
        run
    }

    /// Every line of every file of this stem, plain or decompressed, checked: no temp file,
    /// every `.gz` valid (CRC and length), every line complete JSON. Returns the `seq` of
    /// every record, in file order.
    /// Also returns apart the `seq`s read from unsynced segments (kept outside retention).
    fn read_all(dir: &Path) -> Result<(Vec<u64>, BTreeSet<u64>), String> {
        let mut apart = BTreeSet::new();
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| format!("read_dir: {e}"))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let active = crate::segment::name::active(STEM);
        let mut seqs = Vec::new();
        let mut torn = Vec::new();
        let mut sealed = Vec::new();
        // Unsynced segments (an fsync failed) hold data written before the failure.
        let mut files: Vec<String> = names
            .iter()
            .filter(|n| {
                crate::segment::name::parse(STEM, n).is_some()
                    || crate::segment::name::parse_unsynced(STEM, n).is_some()
            })
            .cloned()
            .collect();
        if names.contains(&active) {
            files.push(active);
        }
        for n in &names {
            if crate::segment::name::is_temp(STEM, n) {
                return Err(format!("temp file {n} remains"));
            }
        }
        for n in &files {
            let raw = std::fs::read(dir.join(n)).map_err(|e| format!("read {n}: {e}"))?;
            let text = if n.ends_with(".gz") {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .map_err(|e| format!("{n} does not decompress: {e}"))?;
                out
            } else {
                raw
            };
            let mut text = text;
            if !text.is_empty() && !text.ends_with(b"\n") {
                // A finished segment may end torn when startup recovery sealed it as it was;
                // a record must then name it (checked below).
                let seq = crate::segment::name::parse(STEM, n).map(|p| p.seq);
                let Some(seq) = seq else {
                    return Err(format!("{n} ends with a torn line"));
                };
                let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                torn.push((n.clone(), seq, (text.len() - keep) as u64));
                text.truncate(keep);
            }
            for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
                    format!(
                        "{n}: torn or invalid line {:?}: {e}",
                        String::from_utf8_lossy(line)
                    )
                })?;
                if v["fields"]["message"] == crate::segment::SEALED_TORN_NOTE {
                    sealed.push((
                        v["fields"]["segment"].as_u64(),
                        v["fields"]["torn_bytes"].as_u64(),
                    ));
                }
                if let Some(s) = v["fields"]["seq"].as_u64() {
                    seqs.push(s);
                    if crate::segment::name::parse_unsynced(STEM, n).is_some() {
                        apart.insert(s);
                    }
                }
            }
        }
        for (n, seq, bytes) in torn {
            if !sealed.contains(&(Some(seq), Some(bytes))) {
                return Err(format!(
                    "{n} ends with a torn line of {bytes} bytes that no recovery record names"
                ));
            }
        }
        Ok((seqs, apart))
    }

    fn listing(dir: &Path) -> String {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let len = e.metadata().map_or(0, |m| m.len());
                format!("{} ({len})", e.file_name().to_string_lossy())
            })
            .collect();
        v.sort();
        v.join(", ")
    }

    /// Restarts on the real file system and checks every invariant. `acked`: records that
    /// must be present (unless retention pruned their whole segment).
    fn restart_and_check(dir: &Path, run: &Run, acked: u64) -> Result<(), String> {
        // The faulty run shut down with a 100 ms deadline; a maintenance thread still busy
        // then (a loaded machine, nice 19) keeps the directory's lock until it has stopped.
        // The restart waits for it, as a supervisor restarting the service would.
        let started = std::time::Instant::now();
        let (layer, guard) = loop {
            match FileSink::builder(dir, STEM)
                .compression(Compression::gzip().level(1))
                .build()
            {
                Err(e)
                    if e.kind() == crate::ErrorKind::Locked
                        && started.elapsed() < Duration::from_secs(60) => {}
                other => break other.map_err(|e| format!("restart: {e}"))?,
            }
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..3u64 {
                tracing::info!(seq = AFTER_RESTART + i, "after restart");
            }
        });
        guard
            .flush()
            .map_err(|e| format!("flush after restart: {e}"))?;
        guard
            .shutdown(Duration::from_secs(10))
            .map_err(|e| format!("shutdown after restart: {e}"))?;
        let (seqs, apart) = read_all(dir)?;
        let mut seen = BTreeSet::new();
        for s in &seqs {
            if !seen.insert(*s) {
                return Err(format!("record {s} appears twice"));
            }
        }
        for i in 0..3 {
            if !seen.contains(&(AFTER_RESTART + i)) {
                return Err(format!(
                    "record {} logged after restart is missing",
                    AFTER_RESTART + i
                ));
            }
        }
        let missing: Vec<u64> = (0..acked).filter(|s| !seen.contains(s)).collect();
        if let Some(&last) = missing.last() {
            // Retention deletes whole segments, oldest first: what is missing must be a prefix
            // of the records, ending at a segment boundary, and only if it pruned something.
            // Records of an unsynced segment (an fsync failed) stay while retention deletes
            // the segments around them: they count as part of the prefix.
            let prefix = (0..=last).all(|s| !seen.contains(&s) || apart.contains(&s));
            if run.pruned == 0 || !prefix || (last + 1) % PER_SEGMENT != 0 {
                return Err(format!(
                    "acknowledged records missing: {missing:?} (pruned segments: {})",
                    run.pruned
                ));
            }
        }
        Ok(())
    }

    /// Crashes (or fails) at every operation of the cycle in turn; returns how many points
    /// were tried.
    fn sweep(fault: Fault) -> u64 {
        sweep_from(fault, 1)
    }

    /// `sweep`, starting at operation `first`.
    fn sweep_from(fault: Fault, first: u64) -> u64 {
        let mut n = first;
        let mut unreported = Vec::new();
        loop {
            let root = tempfile::tempdir().expect("tempdir");
            let dir = root.path().join("logs");
            let fs = FaultFs::new(&dir, &root.path().join("trash"), n, fault);
            let run = faulty_run(&dir, &fs);
            let fired = fs.fired();
            let acked = match fault {
                Fault::PowerLoss => run.synced,
                _ => run.flushed,
            };
            if let Err(msg) = restart_and_check(&dir, &run, acked) {
                panic!(
                    "{fault:?} at operation {n} ({fired:?}): {msg}\nrun: {run:?}\nfiles: {}",
                    listing(&dir)
                );
            }
            if let Fault::Fail(_) = fault {
                // An error returned after shutdown began may be an abandoned compression.
                let before_shutdown = fs.failed_at().is_some_and(|i| i <= run.ops_before_shutdown);
                if before_shutdown && !reported(fired, &run) {
                    unreported.push(format!("operation {n} ({fired:?}): {run:?}"));
                }
            }
            if fired.is_none() {
                // The whole cycle ran without reaching operation n: every point is covered.
                assert!(n > 20, "the cycle did only {} operations", fs.ops());
                assert!(
                    unreported.is_empty(),
                    "{fault:?}: failures neither reported nor absorbed:\n{}",
                    unreported.join("\n")
                );
                return n - 1;
            }
            n += 1;
        }
    }

    /// A failure the sink cannot simply absorb must be reported: returned by an API call or
    /// counted in stats.
    fn reported(fired: Option<&'static str>, run: &Run) -> bool {
        let absorbed = matches!(
            fired,
            // Reads that a retry or a later pass repeats, the identity check, and best-effort
            // metadata.
            Some(
                "read_at"
                    | "len"
                    | "identity"
                    | "read_dir"
                    | "open_read"
                    | "free_bytes"
                    | "set_modified"
            )
        );
        absorbed || !run.errors.is_empty() || run.write_errors > 0 || run.compression_failures > 0
    }

    #[test]
    fn kill_at_every_operation() {
        let points = sweep(Fault::Kill);
        eprintln!("kill: {points} crash points");
    }

    #[test]
    fn power_loss_at_every_operation() {
        let points = sweep(Fault::PowerLoss);
        eprintln!("power loss: {points} crash points");
    }

    #[test]
    fn enospc_at_every_operation() {
        let points = sweep(Fault::Fail(crate::sys::errno::DISK_FULL));
        eprintln!("ENOSPC: {points} failure points");
    }

    #[test]
    fn eio_at_every_operation() {
        let points = sweep(Fault::Fail(crate::sys::errno::IO));
        eprintln!("EIO: {points} failure points");
    }

    /// A panic at any operation of the sink's own threads (writer, finisher, maintenance):
    /// no caller hangs or sees it, every call returns, acknowledged records survive and the
    /// next start recovers the directory. (Operations of `build()` itself run on the caller's
    /// thread and are not swept: the sweep starts after them.)
    #[test]
    fn panic_at_every_operation() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("logs");
        let fs = FaultFs::new(&dir, &root.path().join("trash"), 0, Fault::Panic);
        let (_layer, guard) = FileSink::builder(&dir, STEM)
            .compression(Compression::gzip().level(1))
            .retention(Retention::files(2))
            .with_fs(Arc::new(fs.clone()))
            .build()
            .expect("build");
        let build_ops = fs.ops();
        guard.shutdown(Duration::from_secs(10)).expect("shutdown");
        let points = sweep_from(Fault::Panic, build_ops + 1);
        eprintln!("panic: {points} points");
    }

    /// The fault file system itself: a power loss keeps synced data and synced names only.
    #[test]
    fn power_loss_model() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("d");
        std::fs::create_dir(&dir).expect("mkdir");
        let fs = FaultFs::new(&dir, &root.path().join("trash"), 8, Fault::PowerLoss);
        let a = dir.join("a");
        let b = dir.join("b");
        let mut f = fs.create_new(&a, 0o600).expect("create"); // 1
        f.write_all(b"synced\n").expect("write"); // 2
        f.sync().expect("sync"); // 3
        fs.sync_dir(&dir).expect("sync_dir"); // 4
        f.write_all(b"lost\n").expect("write"); // 5
        fs.rename_noreplace(&a, &b).expect("rename"); // 6
        fs.remove(&b).expect("remove"); // 7
        assert!(!a.exists() && !b.exists());
        assert!(fs.create_new(&b, 0o600).is_err()); // 8: power loss
        assert!(fs.crashed());
        assert_eq!(std::fs::read(&a).expect("a is back"), b"synced\n");
        assert!(!b.exists());
        assert!(
            f.write_all(b"x").is_err(),
            "everything fails after the crash"
        );
    }
}

/// A writer stuck inside a system call, and a writer that panics: callers keep running.
#[cfg(test)]
mod outage_tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use super::{Fault, FaultFs, Held};
    use crate::{ErrorKind, FileSink, FileSinkGuard};

    const STEM: &str = "app";
    const THREADS: u64 = 3;

    fn sink(dir: &Path, fs: &FaultFs) -> (tracing::Dispatch, FileSinkGuard) {
        sink_with(dir, fs, |b| b)
    }

    fn sink_with(
        dir: &Path,
        fs: &FaultFs,
        more: impl FnOnce(crate::Builder) -> crate::Builder,
    ) -> (tracing::Dispatch, FileSinkGuard) {
        use tracing_subscriber::prelude::*;
        // The default policy (Overflow::Block) and stall timeout; a small queue so that a few
        // thousand events overflow it. Records of 1 KiB count against the byte budget (8 KiB
        // for large records), so callers also wait for byte room, not only for a channel slot.
        let b = FileSink::builder(dir, STEM)
            .queue_capacity(64)
            .queue_bytes(16 << 10)
            .flush_on_panic(true)
            .with_fs(Arc::new(fs.clone()));
        let (layer, guard) = more(b).build().expect("build");
        (
            tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
            guard,
        )
    }

    /// `<root>/logs` and a fault file system over it that fails nothing until told to.
    fn no_faults(root: &tempfile::TempDir) -> (std::path::PathBuf, FaultFs) {
        let dir = root.path().join("logs");
        let fs = FaultFs::new(&dir, &root.path().join("trash"), 0, Fault::Fail(0));
        (dir, fs)
    }

    /// `THREADS` threads log `per_thread` events of 1 KiB; returns once all have returned.
    fn hammer(dispatch: &tracing::Dispatch, per_thread: u64) -> u64 {
        let pad = "y".repeat(1000);
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let d = dispatch.clone();
                let pad = pad.clone();
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&d, || {
                        for i in 0..per_thread {
                            tracing::info!(t, i, pad = pad.as_str(), "outage");
                        }
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a logging call panicked");
        }
        THREADS * per_thread
    }

    /// Events in the log, and the sum of the in-band drop reports.
    fn read_back(dir: &Path) -> (u64, u64, Vec<String>) {
        let data = std::fs::read(dir.join("app.log")).expect("read app.log");
        assert!(data.is_empty() || data.ends_with(b"\n"), "torn last line");
        let (mut events, mut reported, mut messages) = (0, 0, Vec::new());
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("JSON line");
            if v["target"] == "tracing_filesink" {
                reported += v["fields"]["dropped"].as_u64().unwrap_or(0);
                messages.push(v["fields"]["message"].as_str().unwrap_or("").to_owned());
            } else if v["fields"]["message"] == "outage" {
                events += 1;
            }
        }
        (events, reported, messages)
    }

    fn poll(mut cond: impl FnMut() -> bool) -> bool {
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < end {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2)); // polling interval, not synchronization
        }
        false
    }

    #[test]
    fn a_writer_stuck_in_a_write_does_not_stop_the_callers() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, fs) = no_faults(&root);
        let (dispatch, guard) = sink(&dir, &fs);
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("before"));
        guard.flush().expect("flush before the stall");

        fs.hold(Held::Write);
        let logged = hammer(&dispatch, 2_000);
        assert_eq!(
            fs.waiting(Held::Write),
            1,
            "the writer is stuck in its write"
        );
        let during = guard.stats();
        assert!(during.events_shed > 0, "{during:?}");
        // Waiting is bounded by the stall timeout (2 s) plus one slice per caller; generous
        // for a loaded machine.
        assert!(
            during.blocked_nanos < THREADS * 5_000_000_000,
            "callers blocked {} ns: {during:?}",
            during.blocked_nanos
        );
        let err = guard
            .flush()
            .expect_err("flush must not wait on a stuck writer");
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");

        fs.release(Held::Write);
        assert!(poll(|| guard.flush().is_ok()), "{:?}", guard.stats());
        guard.shutdown(Duration::from_secs(30)).expect("shutdown");
        let stats = guard.stats();
        let (events, reported, messages) = read_back(&dir);
        assert_eq!(reported, stats.events_dropped, "{messages:?} {stats:?}");
        assert_eq!(
            events + reported,
            logged,
            "every event written or reported as shed: {stats:?}"
        );
        assert!(
            messages.iter().any(|m| m.starts_with("events shed")),
            "{messages:?}"
        );
    }

    /// The high-water marks count what was waiting at once. With the default queue (512
    /// chunks) a pass of the writer spans several batches; on a slow disk callers refill the
    /// channel during each write of the pass, and the marks once added up everything the
    /// pass drained: more events than the queue can hold.
    #[test]
    fn high_water_marks_stay_within_the_queue_bounds_on_a_slow_disk() {
        const PER_THREAD: u64 = 40_000;
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, fs) = no_faults(&root);
        let (layer, guard) = FileSink::builder(&dir, STEM)
            .with_fs(Arc::new(fs.clone()))
            .build()
            .expect("build");
        let dispatch = {
            use tracing_subscriber::prelude::*;
            tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
        };
        fs.slow_writes(Duration::from_millis(20));
        // Small records (about 150 bytes): the channel's 512 chunks of 128 records bound them.
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let d = dispatch.clone();
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&d, || {
                        for i in 0..PER_THREAD {
                            tracing::info!(t, i, user = "alice", "request handled");
                        }
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a logging call panicked");
        }
        guard.flush().expect("flush");
        let s = guard.stats();
        assert_eq!(s.records_written, THREADS * PER_THREAD, "{s:?}");
        assert!(s.queue_high_water > 0, "{s:?}");
        // The default queue_capacity, plus one open chunk (128 records) per thread.
        let bound = 64 * 1024 + THREADS * 128;
        assert!(
            s.queue_high_water <= bound,
            "queue_high_water {} over {bound}: {s:?}",
            s.queue_high_water
        );
        // The default queue_bytes (64 MiB) plus one open chunk per thread.
        assert!(
            s.queue_bytes_high_water <= (64 << 20) + THREADS * (64 * 1024 + 1024),
            "{s:?}"
        );
    }

    #[test]
    fn a_writer_panic_releases_every_caller() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, fs) = no_faults(&root);
        let (dispatch, guard) = sink(&dir, &fs);
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("before"));
        guard.flush().expect("flush before the panic");

        fs.panic_on_next_write();
        let logged = hammer(&dispatch, 2_000);
        let err = guard.flush().expect_err("flush after the writer panicked");
        assert_eq!(err.kind(), ErrorKind::ShutDown, "{err}");
        let err = guard
            .shutdown(Duration::from_secs(30))
            .expect_err("shutdown after the writer panicked");
        assert_eq!(err.kind(), ErrorKind::ShutDown, "{err}");
        let stats = guard.stats();
        let (events, reported, messages) = read_back(&dir);
        assert!(
            messages
                .iter()
                .any(|m| m.contains("writer thread panicked")),
            "the panic is reported in the log: {messages:?}"
        );
        assert!(reported > 0, "{messages:?}");
        assert!(reported <= stats.events_dropped, "{stats:?}");
        assert_eq!(
            events + stats.events_dropped,
            logged,
            "every event written or counted as dropped: {stats:?}"
        );
    }

    /// Events that reach the queue after the writer has drained it for shutdown (here: while
    /// its last fsync hangs) are dropped, and the drop is reported in the log, which is still
    /// writable.
    #[test]
    fn drops_at_shutdown_are_reported_in_the_log() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, fs) = no_faults(&root);
        let (dispatch, guard) = sink(&dir, &fs);
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("before"));
        guard.flush().expect("flush");
        fs.hold(Held::Fsync);
        let guard = Arc::new(guard);
        let g = guard.clone();
        let shutdown = std::thread::spawn(move || g.shutdown(Duration::from_secs(60)));
        assert!(poll(|| fs.waiting(Held::Fsync) == 1), "shutdown's fsync");
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..5 {
                tracing::info!(i, "outage");
            }
        });
        fs.release(Held::Fsync);
        shutdown.join().expect("shutdown thread").expect("shutdown");
        let stats = guard.stats();
        assert_eq!(stats.events_dropped, 5, "{stats:?}");
        let (events, reported, messages) = read_back(&dir);
        assert_eq!(events, 0);
        assert_eq!(reported, 5, "{messages:?}");
    }

    /// A failed fsync is never taken for durability: the segment keeps a name that says so
    /// (`.log.unsynced`, never a final segment name), the error is returned, a record in the
    /// log reports it, and the next start leaves that file alone and never reuses its number.
    #[test]
    fn a_segment_whose_fsync_failed_never_gets_a_final_name() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, fs) = no_faults(&root);
        let (dispatch, guard) = sink(&dir, &fs);
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("in the first segment"));
        fs.fail_next_fsync(crate::sys::errno::IO);
        let err = guard.rotate().expect_err("rotate reports the failed fsync");
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("in the next segment"));
        guard.flush().expect("flush");
        let names = crate::fault::tests_support::names(&dir);
        let unsynced: Vec<&String> = names
            .iter()
            .filter(|n| crate::segment::name::parse_unsynced(STEM, n) == Some(1))
            .collect();
        assert_eq!(unsynced.len(), 1, "{names:?}");
        assert!(
            !names
                .iter()
                .any(|n| crate::segment::name::parse(STEM, n).is_some()),
            "no final segment name after a failed fsync: {names:?}"
        );
        let unsynced_data = std::fs::read_to_string(dir.join(unsynced[0])).expect("read");
        assert!(unsynced_data.contains("in the first segment"));
        let (_, _, messages) = read_back(&dir);
        assert!(
            messages.iter().any(|m| m.starts_with("fsync failed")),
            "{messages:?}"
        );
        assert_eq!(guard.stats().segments_unsynced, 1);
        guard.shutdown(Duration::from_secs(30)).expect("shutdown");

        // The next start: the unsynced segment stays as it is; its number is not reused.
        let (layer, guard) = FileSink::builder(&dir, STEM).build().expect("restart");
        drop(layer);
        guard.rotate().expect("rotate");
        guard.shutdown(Duration::from_secs(30)).expect("shutdown");
        let names = crate::fault::tests_support::names(&dir);
        assert!(names.contains(unsynced[0]), "{names:?}");
        let finals: Vec<u64> = names
            .iter()
            .filter_map(|n| crate::segment::name::parse(STEM, n))
            .map(|n| n.seq)
            .collect();
        assert_eq!(finals, vec![2], "{names:?}");
    }

    /// The stalled error (not the shutdown timeout's "waiting for the writer").
    fn is_stall(e: &crate::Error) -> bool {
        e.kind() == ErrorKind::TimedOut && e.to_string().contains("stuck in a system call")
    }

    /// logrotate's `create` mode moves the file away, then the sink reopens by name; the
    /// fsync of the moved file hangs. That counts as a stall like any fsync of the writer:
    /// `flush` returns the stall instead of waiting, and `Block` callers shed instead of
    /// waiting without bound.
    #[test]
    fn a_reopen_whose_fsync_hangs_is_a_stall() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, fs) = no_faults(&root);
        let (dispatch, guard) = sink_with(&dir, &fs, |b| {
            b.fsync_stall_timeout(Duration::from_millis(100))
        });
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("before"));
        guard.flush().expect("flush");
        std::fs::rename(dir.join("app.log"), dir.join("app.log.1")).expect("move away");
        fs.hold(Held::Fsync);
        let err = guard.reopen().expect_err("reopen while its fsync hangs");
        assert!(is_stall(&err), "{err}");
        assert_eq!(fs.waiting(Held::Fsync), 1, "the reopen's fsync");
        let err = guard.flush().expect_err("flush while the fsync hangs");
        assert!(is_stall(&err), "{err}");
        let logged = hammer(&dispatch, 500);
        let during = guard.stats();
        assert!(during.events_shed > 0, "{during:?}");
        fs.release(Held::Fsync);
        assert!(poll(|| guard.flush().is_ok()), "{:?}", guard.stats());
        guard.shutdown(Duration::from_secs(30)).expect("shutdown");
        let stats = guard.stats();
        let (events, reported, messages) = read_back(&dir);
        assert_eq!(
            events + reported,
            logged,
            "every event written or reported as shed: {stats:?} {messages:?}"
        );
    }

    /// The fsync of the file moved away fails: the reopen returns the error, it is counted,
    /// and a record in the new file says the old one is not known to be durable.
    #[test]
    fn a_reopen_whose_fsync_fails_reports_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, fs) = no_faults(&root);
        let (dispatch, guard) = sink(&dir, &fs);
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("before"));
        guard.flush().expect("flush");
        std::fs::rename(dir.join("app.log"), dir.join("app.log.1")).expect("move away");
        fs.fail_next_fsync(crate::sys::errno::IO);
        let err = guard.reopen().expect_err("reopen reports the failed fsync");
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        let stats = guard.stats();
        assert_eq!(stats.write_errors, 1, "{stats:?}");
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("after"));
        // The error is kept for the next flush, like every error of the writer.
        let _ = guard.flush();
        guard.flush().expect("flush");
        let (_, _, messages) = read_back(&dir);
        assert!(
            messages.iter().any(|m| m.starts_with("fsync failed")),
            "{messages:?}"
        );
        guard.shutdown(Duration::from_secs(30)).expect("shutdown");
    }

    /// The finisher's fsync of a rotated segment hangs. Its work in flight is bounded (the
    /// writer waits instead of sealing segment after segment, each holding a descriptor),
    /// and it counts as a stall: a flush waiting for it returns, `Block` callers shed.
    #[test]
    fn a_finisher_stuck_in_fsync_is_a_stall() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, fs) = no_faults(&root);
        let (dispatch, guard) = sink_with(&dir, &fs, |b| {
            b.rotation(crate::Rotation::size(16 << 10))
                .fsync_stall_timeout(Duration::from_millis(100))
        });
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("before"));
        guard.flush().expect("flush");
        fs.hold(Held::Fsync);
        let err = guard.rotate().expect_err("rotate while the finisher hangs");
        assert!(is_stall(&err), "{err}");
        assert_eq!(fs.waiting(Held::Fsync), 1, "the finisher's fsync");
        // About 6 MiB: hundreds of rotations if the writer did not wait.
        hammer(&dispatch, 2_000);
        let during = guard.stats();
        let pending = crate::fault::tests_support::names(&dir)
            .iter()
            .filter(|n| n.ends_with(".pending"))
            .count();
        // One being fsynced, the jobs waiting, one the writer is handing over.
        let bound = crate::segment::finish::JOBS_IN_FLIGHT + 2;
        assert!(
            pending <= bound,
            "{pending} sealed segments waiting for a stuck finisher (at most {bound}): {during:?}"
        );
        assert!(during.events_shed > 0, "{during:?}");
        let err = guard.flush().expect_err("flush while the finisher hangs");
        assert!(is_stall(&err), "{err}");
        fs.release(Held::Fsync);
        assert!(poll(|| guard.flush().is_ok()), "{:?}", guard.stats());
        guard.shutdown(Duration::from_secs(30)).expect("shutdown");
        let names = crate::fault::tests_support::names(&dir);
        assert!(!names.iter().any(|n| n.ends_with(".pending")), "{names:?}");
    }

    /// Slow storage that works: every fsync takes far longer than the stall timeout (which
    /// is for writes, opens, renames), but less than the fsync stall timeout. With
    /// `Fsync::Always` the writer fsyncs after every batch; `Block` callers wait for it
    /// rather than shed events.
    #[test]
    fn a_slow_fsync_is_not_a_stall() {
        let root = tempfile::tempdir().expect("tempdir");
        let (dir, fs) = no_faults(&root);
        let (dispatch, guard) = sink_with(&dir, &fs, |b| {
            b.fsync(crate::Fsync::Always)
                .stall_timeout(Duration::from_millis(10))
        });
        fs.slow_fsyncs(Duration::from_millis(60));
        let logged = hammer(&dispatch, 200);
        guard.flush().expect("flush");
        let stats = guard.stats();
        assert_eq!(stats.events_shed, 0, "{stats:?}");
        assert_eq!(stats.events_dropped, 0, "{stats:?}");
        guard.shutdown(Duration::from_secs(30)).expect("shutdown");
        let (events, _, _) = read_back(&dir);
        assert_eq!(events, logged);
    }
}

#[cfg(test)]
mod tests_support {
    /// The sorted file names in `dir`.
    pub(crate) fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
