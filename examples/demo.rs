//! The crate's main job in one run: many threads log a realistic mix of events into `./logs`,
//! the sink rotates by size and gzips finished segments in the background, and at the end
//! every line of every file is read back and checked.
//!
//! ```text
//! cargo run --release --example demo
//! cargo run --release --example demo -- --threads 4 --events 200000 --dir /tmp/logs --rotate-mib 4 --no-gzip
//! ```
//!
//! Files of the stem `demo` left in the directory by an earlier run are removed first, so the
//! check counts this run's lines only.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tracing_filesink::{Compression, FileSink, FileSinkGuard, Rotation};
use tracing_subscriber::prelude::*;

const STEM: &str = "demo";

const USAGE: &str = "\
usage: demo [--threads N] [--events N] [--dir PATH] [--rotate-mib N] [--no-gzip]

  --threads N      logging threads (default 8)
  --events N       events in total, across all threads (default 1000000)
  --dir PATH       log directory (default ./logs)
  --rotate-mib N   rotate the active file at N MiB; 0 never rotates (default 16)
  --no-gzip        keep finished segments uncompressed";

struct Args {
    threads: usize,
    events: u64,
    dir: PathBuf,
    rotate_mib: u64,
    gzip: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        threads: 8,
        events: 1_000_000,
        dir: PathBuf::from("logs"),
        rotate_mib: 16,
        gzip: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.replace(['_', ','], "")
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "--threads" => args.threads = number(value()?)? as usize,
            "--events" => args.events = number(value()?)?,
            "--dir" => args.dir = PathBuf::from(value()?),
            "--rotate-mib" => args.rotate_mib = number(value()?)?,
            "--no-gzip" => args.gzip = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("demo: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(2)
        }
    }
}

/// Returns whether the check passed.
fn run(args: &Args) -> Result<bool, String> {
    let removed = clean_previous_run(&args.dir)?;
    let mut builder = FileSink::builder(&args.dir, STEM);
    if args.rotate_mib > 0 {
        builder = builder.rotation(Rotation::size(args.rotate_mib << 20));
    }
    if args.gzip {
        builder = builder.compression(Compression::gzip());
    }
    let (layer, guard) = builder.build().map_err(|e| e.to_string())?;
    tracing_subscriber::registry().with(layer).init();

    println!(
        "tracing-filesink demo: {} threads, {} events -> {} (rotation: {}, gzip: {})",
        args.threads,
        thousands(args.events),
        guard.active_path().display(),
        if args.rotate_mib > 0 {
            format!("every {} MiB", args.rotate_mib)
        } else {
            "never".into()
        },
        if args.gzip { "on" } else { "off" },
    );
    if removed > 0 {
        println!(
            "(removed {removed} file{} of an earlier demo run)",
            if removed == 1 { "" } else { "s" }
        );
    }

    let logged = AtomicU64::new(0);
    let start = Instant::now();
    let elapsed = std::thread::scope(|s| -> Result<Duration, String> {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let progress = s.spawn(|| show_progress(args.events, &logged, &guard, start, done_rx));
        let workers: Vec<_> = (0..args.threads)
            .map(|t| {
                // Spread the events evenly; the first threads take the remainder.
                let share = args.events / args.threads as u64
                    + u64::from((t as u64) < args.events % args.threads as u64);
                let logged = &logged;
                std::thread::Builder::new()
                    .name(format!("worker-{t}"))
                    .spawn_scoped(s, move || worker(t, share, logged))
                    .map_err(|e| format!("spawn a worker thread: {e}"))
            })
            .collect::<Result<_, _>>()?;
        for w in workers {
            w.join().map_err(|_| "a worker thread panicked")?;
        }
        // Every event is in the file (handed to the OS) once flush returns.
        let flushed = guard.flush();
        let elapsed = start.elapsed();
        drop(done_tx);
        let _ = progress.join();
        flushed.map_err(|e| format!("flush: {e}"))?;
        Ok(elapsed)
    })?;
    let events = logged.load(Ordering::Relaxed);

    // Compression runs at the lowest CPU priority, so while the workers were busy most
    // finished segments waited plain. A short-lived program that wants them compressed before
    // it exits waits for the background work; a service never needs to.
    if args.gzip {
        let t = Instant::now();
        eprint!("waiting for background compression ...");
        guard
            .wait_idle(Duration::from_secs(600))
            .map_err(|e| format!("wait_idle: {e}"))?;
        eprintln!(" done in {:.1} s", t.elapsed().as_secs_f64());
    }
    let shut = guard.shutdown(Duration::from_secs(30));
    let stats = guard.stats();
    shut.map_err(|e| format!("shutdown: {e}"))?;

    println!();
    println!(
        "logged   {} events in {:.2} s: {} events/s (until guard.flush() returned)",
        thousands(events),
        elapsed.as_secs_f64(),
        thousands((events as f64 / elapsed.as_secs_f64()) as u64),
    );
    println!(
        "written  {} records ({} of them the sink's own), {}",
        thousands(stats.records_written),
        stats.internal_records,
        mib(stats.bytes_written)
    );
    println!(
        "dropped  {} events, {} write errors, queue high water {} events",
        stats.events_dropped,
        stats.write_errors,
        thousands(stats.queue_high_water)
    );
    println!(
        "rotated  {} times; {} segments compressed, {} compression failures",
        stats.rotations, stats.segments_compressed, stats.compression_failures
    );

    let files = list_files(&args.dir)?;
    println!();
    println!("files in {}:", args.dir.display());
    let plain_left = files
        .iter()
        .filter(|f| f.kind == Kind::Segment && !f.gz)
        .count();
    // A long listing keeps its head and tail.
    const SHOWN: usize = 6;
    for (i, f) in files.iter().enumerate() {
        if files.len() > 2 * SHOWN + 1 && (SHOWN..files.len() - SHOWN).contains(&i) {
            if i == SHOWN {
                println!("  ... {} more", files.len() - 2 * SHOWN);
            }
            continue;
        }
        let note = match (f.kind, f.gz) {
            (Kind::Active, _) => "  (active)",
            (Kind::Segment, false) if args.gzip => "  (not compressed yet)",
            _ => "",
        };
        println!("  {:<48} {:>10}{note}", f.name, mib(f.len));
    }
    if args.gzip && plain_left > 0 {
        println!(
            "  {plain_left} finished segments are plain: compress_after keeps the newest plain, or a \
             compression failed (see stats)"
        );
    }

    println!();
    let check = check_files(&args.dir, &files)?;
    let expected = events - stats.events_dropped + stats.internal_records;
    println!(
        "check    {} lines in {} file{}, every one valid JSON (INFO {}, WARN {}, ERROR {})",
        thousands(check.lines),
        check.files,
        if check.files == 1 { "" } else { "s" },
        thousands(check.levels[0]),
        thousands(check.levels[1]),
        thousands(check.levels[2]),
    );
    if let Some(bad) = &check.first_bad {
        println!("FAILED   {bad}");
    }
    let counts_ok = check.lines == expected;
    println!(
        "{}   lines = {} events - {} dropped + {} internal records = {}",
        if counts_ok { "OK      " } else { "FAILED  " },
        thousands(events),
        stats.events_dropped,
        stats.internal_records,
        thousands(expected),
    );
    Ok(counts_ok && check.first_bad.is_none())
}

/// One logging thread: `budget` events, in requests of a few events each.
fn worker(t: usize, budget: u64, logged: &AtomicU64) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut left = budget;
    let mut unreported = 0;
    let mut req = 0u64;
    while left > 0 {
        req += 1;
        let before = left;
        handle_request(t, req, &mut rng, &mut left);
        unreported += before - left;
        if unreported >= 1024 {
            logged.fetch_add(unreported, Ordering::Relaxed);
            unreported = 0;
        }
    }
    logged.fetch_add(unreported, Ordering::Relaxed);
}

/// Logs one event if the budget allows, else ends the request.
macro_rules! emit {
    ($left:ident, $event:expr) => {
        if *$left == 0 {
            return;
        }
        *$left -= 1;
        $event;
    };
}

const ROUTES: [(&str, &str, &str); 4] = [
    ("GET", "/api/orders", "orders"),
    ("POST", "/api/orders", "orders"),
    ("GET", "/api/users/me", "users"),
    ("PUT", "/api/cart", "carts"),
];
const USERS: [&str; 4] = ["ada", "grace", "linus", "margaret"];

/// A web request: a span with fields, a nested database span, now and then a retry warning,
/// a failure or a hostile user name (escaped by the sink, so it cannot forge a line).
fn handle_request(t: usize, req: u64, rng: &mut Rng, left: &mut u64) {
    let (method, path, table) = ROUTES[rng.below(ROUTES.len() as u64) as usize];
    let peer = SocketAddr::from((
        [10, 0, t as u8, 1 + rng.below(250) as u8],
        40_000 + rng.below(20_000) as u16,
    ));
    let request_id = ((t as u64) << 48) | req;
    let span = tracing::info_span!("request", method, path, request_id, %peer);
    let _request = span.enter();

    let user = USERS[rng.below(USERS.len() as u64) as usize];
    emit!(
        left,
        tracing::info!(user, attempt = 1_i64, "request received")
    );
    {
        let db = tracing::info_span!("db", table, shard = req % 16);
        let _db = db.enter();
        let rows = rng.below(500);
        let query_ms = rng.below(20_000) as f64 / 1000.0;
        emit!(
            left,
            tracing::info!(
                rows,
                query_ms,
                cached = rows.is_multiple_of(3),
                "query done"
            )
        );
    }

    let roll = rng.below(1000);
    if roll < 30 {
        let retry_in = Duration::from_millis(50 * (1 + rng.below(8)));
        emit!(
            left,
            tracing::warn!(retry_in = ?retry_in, upstream = "billing", attempt = 2_i64, "slow upstream, retrying")
        );
    }
    if roll < 8 {
        let err = io::Error::new(
            io::ErrorKind::ConnectionReset,
            "upstream reset the connection",
        );
        emit!(
            left,
            tracing::error!(
                error = &err as &dyn std::error::Error,
                status = 502_u64,
                "request failed"
            )
        );
        return;
    }
    if roll == 999 {
        emit!(
            left,
            tracing::warn!(
                user = "mallory\n{\"level\":\"INFO\",\"fields\":{\"message\":\"admin login ok\"}}",
                "login rejected"
            )
        );
    }
    let latency_ms = 0.2 + rng.below(50_000) as f64 / 1000.0;
    emit!(
        left,
        tracing::info!(
            status = 200_u64,
            bytes = rng.below(64 * 1024),
            latency_ms,
            credit_delta = -(rng.below(10_000) as i64),
            headers = ?["accept: application/json", "x-retry: 0"],
            "request handled"
        )
    );
}

/// xorshift64*: varied fields without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

/// Prints a progress line about once a second until `done` is dropped.
fn show_progress(
    total: u64,
    logged: &AtomicU64,
    guard: &FileSinkGuard,
    start: Instant,
    done: mpsc::Receiver<()>,
) {
    let tty = io::stderr().is_terminal();
    let mut printed = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(Duration::from_secs(1)) {
        let n = logged.load(Ordering::Relaxed);
        let s = guard.stats();
        let line = format!(
            "{:>11} / {} events ({:>3}%)  {:>9} events/s  {} written  {} rotations  {} compressed",
            thousands(n),
            thousands(total),
            (n * 100).checked_div(total).unwrap_or(100),
            thousands((n as f64 / start.elapsed().as_secs_f64()) as u64),
            mib(s.bytes_written),
            s.rotations,
            s.segments_compressed,
        );
        if tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
        printed = true;
    }
    if tty && printed {
        eprintln!();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Active,
    Segment,
}

struct LogFile {
    name: String,
    path: PathBuf,
    kind: Kind,
    gz: bool,
    len: u64,
}

/// Which of this stem's files a name is: `demo.log`, or a finished segment
/// `demo.<10-digit sequence>.<start>.log[.gz]`.
fn classify(name: &str) -> Option<(Kind, bool)> {
    if name == format!("{STEM}.log") {
        return Some((Kind::Active, false));
    }
    let rest = name.strip_prefix(STEM)?.strip_prefix('.')?;
    let (rest, gz) = match rest.strip_suffix(".gz") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let mut parts = rest.split('.');
    let (seq, label, ext) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = parts.next().is_none()
        && seq.len() == 10
        && seq.bytes().all(|b| b.is_ascii_digit())
        && !label.is_empty()
        && ext == "log";
    ok.then_some((Kind::Segment, gz))
}

/// This stem's files in write order: finished segments by sequence number, then the active
/// file.
fn list_files(dir: &Path) -> Result<Vec<LogFile>, String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((kind, gz)) = classify(&name) else {
            continue;
        };
        let len = entry.metadata().map_err(|e| format!("{name}: {e}"))?.len();
        files.push(LogFile {
            path: entry.path(),
            name,
            kind,
            gz,
            len,
        });
    }
    files.sort_by(|a, b| (a.kind == Kind::Active, &a.name).cmp(&(b.kind == Kind::Active, &b.name)));
    Ok(files)
}

/// Removes the files of an earlier run (never a file of another stem, never the lock file),
/// unless a running sink holds the lock.
fn clean_previous_run(dir: &Path) -> Result<usize, String> {
    let lock_path = dir.join(format!("{STEM}.log.lock"));
    if let Ok(lock) = File::open(&lock_path) {
        if let Err(std::fs::TryLockError::WouldBlock) = lock.try_lock() {
            return Err(format!(
                "{} is locked: another demo is writing into {}",
                lock_path.display(),
                dir.display()
            ));
        }
    }
    let files = match list_files(dir) {
        Ok(f) => f,
        Err(_) if !dir.exists() => return Ok(0),
        Err(e) => return Err(e),
    };
    for f in &files {
        std::fs::remove_file(&f.path).map_err(|e| format!("remove {}: {e}", f.path.display()))?;
    }
    Ok(files.len())
}

struct Check {
    files: usize,
    lines: u64,
    /// INFO, WARN, ERROR.
    levels: [u64; 3],
    first_bad: Option<String>,
}

/// Reads every line of every file (decompressing `.gz`) and parses it as JSON.
fn check_files(dir: &Path, files: &[LogFile]) -> Result<Check, String> {
    let mut check = Check {
        files: 0,
        lines: 0,
        levels: [0; 3],
        first_bad: None,
    };
    let mut line = Vec::with_capacity(1024);
    for f in files {
        // Shutdown may fall between writing a .gz and removing its plain segment: same lines.
        if f.kind == Kind::Segment && !f.gz && dir.join(format!("{}.gz", f.name)).exists() {
            continue;
        }
        check.files += 1;
        let file = File::open(&f.path).map_err(|e| format!("{}: {e}", f.name))?;
        let reader: Box<dyn Read> = if f.gz {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut reader = BufReader::with_capacity(1 << 16, reader);
        let mut lineno = 0u64;
        loop {
            line.clear();
            if reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("{}: {e}", f.name))?
                == 0
            {
                break;
            }
            lineno += 1;
            check.lines += 1;
            let bad = |why: String| Some(format!("{}:{lineno}: {why}", f.name));
            if line.last() != Some(&b'\n') {
                check.first_bad = check.first_bad.take().or_else(|| bad("no newline".into()));
                continue;
            }
            match serde_json::from_slice::<serde_json::Value>(&line) {
                Ok(v) => match v["level"].as_str() {
                    Some("INFO") => check.levels[0] += 1,
                    Some("WARN") => check.levels[1] += 1,
                    Some("ERROR") => check.levels[2] += 1,
                    _ => {}
                },
                Err(e) => {
                    check.first_bad = check
                        .first_bad
                        .take()
                        .or_else(|| bad(format!("not JSON: {e}")));
                }
            }
        }
    }
    Ok(check)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}
