//! `filesink`: read back the files of a `tracing-filesink` sink.
//!
//! ```text
//! filesink cat DIR [--since T] [--until T] [--level warn]   every record in write order
//! filesink follow DIR [--from-start]                       like tail -F, loss-free across rotations
//! filesink verify DIR                                      check every finished segment
//! filesink stats DIR                                       lines, bytes and levels per segment
//! ```
//!
//! Install from a checkout with `cargo install --path . --features cli`.
//!
//! Exit status: 0 when everything was read (or checked) and found sound; 1 when a problem
//! was found or a file could not be read (each named on stderr, or on stdout by `verify`;
//! the other files are still read); 2 for a usage error or when the directory itself cannot
//! be read.

mod scan;
mod stats;
mod time;
mod verify;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use tracing::Level;
use tracing_filesink::read::{LogDir, Record};

#[derive(Parser)]
#[command(
    name = "filesink",
    version,
    about = "Read back the logs of tracing-filesink: cat, follow, verify, stats"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Target {
    /// The log directory.
    dir: PathBuf,
    /// The sink's stem (`app` for app.log). Default: the only stem found in DIR.
    #[arg(long, value_name = "NAME")]
    stem: Option<String>,
    /// The extension of the sink's files, as given to `Builder::file_extension` (`jsonl` for
    /// app.jsonl).
    #[arg(long, value_name = "EXT", default_value = "log")]
    extension: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print every record in write order, compressed segments included, as written.
    Cat {
        #[command(flatten)]
        target: Target,
        /// Only records at or after T: RFC 3339 (2026-11-26T03:14:48Z), a date or a time
        /// without zone (taken as UTC: 2026-11-26, 2026-11-26T03:14), or an age, meaning
        /// that long ago (90s, 15m, 2h, 7d).
        #[arg(long, value_name = "T", value_parser = time::parse)]
        since: Option<SystemTime>,
        /// Only records before T (same forms as --since).
        #[arg(long, value_name = "T", value_parser = time::parse)]
        until: Option<SystemTime>,
        /// Only records at this level or more severe (trace, debug, info, warn, error).
        #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
        level: Option<Level>,
        /// The sink's custom time format (`TimeFormat::custom`, chrono strftime), for
        /// --since and --until. Without %z the times are taken as UTC.
        #[arg(long, value_name = "FORMAT")]
        time_format: Option<String>,
    },
    /// Print lines as they are written, like `tail -F`, losing and repeating none across
    /// rotations, compression and retention.
    Follow {
        #[command(flatten)]
        target: Target,
        /// Start with every line still on disk instead of only new ones.
        #[arg(long)]
        from_start: bool,
    },
    /// Check every finished segment (complete last line, valid JSON, gzip CRC and length),
    /// sequence holes and duplicates; one line per problem, exit status 1 if any.
    Verify {
        #[command(flatten)]
        target: Target,
    },
    /// Per segment: number, start time, lines, bytes plain and compressed, records per level.
    Stats {
        #[command(flatten)]
        target: Target,
    },
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a level (trace, debug, info, warn, error)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // Piped into `head` or a pager that quit: not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("filesink: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> io::Result<ExitCode> {
    match cli.cmd {
        Cmd::Cat {
            target,
            since,
            until,
            level,
            time_format,
        } => {
            let logs = open(&target)?;
            let filter = Filter {
                since,
                until,
                level,
                time_format,
            };
            cat(&logs, &filter)
        }
        Cmd::Follow { target, from_start } => {
            let logs = wait_for(&target)?;
            follow(&logs, from_start)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { target } => {
            let logs = open(&target)?;
            let problems = verify::run(&logs, &mut io::stdout().lock())?;
            Ok(status(problems))
        }
        Cmd::Stats { target } => {
            let logs = open(&target)?;
            let problems = stats::run(&logs, &mut io::stdout().lock())?;
            Ok(status(problems))
        }
    }
}

fn status(problems: u64) -> ExitCode {
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The directory and stem: `--stem`, or the only stem in the directory. A stem with no file
/// in the directory is refused, naming the stems that are there: a mistyped `--stem` must
/// not read as a clean, empty log.
fn open(t: &Target) -> io::Result<LogDir> {
    let stems = LogDir::stems_with_extension(&t.dir, &t.extension)?;
    let stem = match &t.stem {
        Some(s) if stems.contains(s) => s.clone(),
        Some(s) => return Err(no_such_stem(t, s, &stems)),
        None => match stems.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "no tracing-filesink files ending in .{} in {}",
                        t.extension,
                        t.dir.display()
                    ),
                ))
            }
            several => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} holds the files of several stems ({}): choose one with --stem",
                        t.dir.display(),
                        several.join(", ")
                    ),
                ))
            }
        },
    };
    Ok(LogDir::open(&t.dir, stem)?.with_extension(&t.extension))
}

fn no_such_stem(t: &Target, stem: &str, found: &[String]) -> io::Error {
    let hint = match stem.strip_suffix(&format!(".{}", t.extension)) {
        Some(s) if found.iter().any(|f| f == s) => format!(" (the stem of {stem} is {s})"),
        _ => String::new(),
    };
    let found = if found.is_empty() {
        "none".to_string()
    } else {
        found.join(", ")
    };
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "no files of stem {stem:?} in {}{hint}; stems found: {found}",
            t.dir.display()
        ),
    )
}

/// `open`, but like `tail -F`: a directory or a stem that is not there yet is waited for
/// (said once on stderr).
fn wait_for(t: &Target) -> io::Result<LogDir> {
    let mut said = false;
    loop {
        let e = match open(t) {
            Ok(logs) => return Ok(logs),
            Err(e) => e,
        };
        // Missing: the directory, the stem's files, or any stem at all. Anything else (a
        // file where the directory should be, several stems) is an error now.
        let waiting = matches!(e.kind(), io::ErrorKind::NotFound);
        if !waiting {
            return Err(e);
        }
        if !said {
            eprintln!("filesink: {e}; waiting for them to appear");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What `cat` prints.
struct Filter {
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    level: Option<Level>,
    time_format: Option<String>,
}

impl Filter {
    /// Whether to print `r`; an error when the time bounds need its timestamp and it cannot
    /// be read (a custom time format without --time-format, or a wrong one).
    fn keep(&self, r: &Record) -> Result<bool, String> {
        if self.since.is_some() || self.until.is_some() {
            let Some(t) = self.time(r)? else {
                // No timestamp where the sink writes one: not a record of the sink.
                return Ok(false);
            };
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
                return Ok(false);
            }
        }
        Ok(match self.level {
            // `Level` orders TRACE as the greatest: "at least as severe" is `<=`.
            Some(min) => r.level().is_some_and(|l| l <= min),
            None => true,
        })
    }

    fn time(&self, r: &Record) -> Result<Option<SystemTime>, String> {
        let Some(text) = r.timestamp_text() else {
            return Ok(None);
        };
        let t = record_time(r, self.time_format.as_deref());
        t.map(Some).ok_or_else(|| match &self.time_format {
            None => format!(
                "--since/--until: the timestamp {text:?} (segment {}, offset {}) is not \
                 RFC 3339; if the sink uses a custom time format, pass it with --time-format",
                seq_name(r.line().seq()),
                r.line().offset()
            ),
            Some(f) => format!(
                "--since/--until: the timestamp {text:?} (segment {}, offset {}) does not \
                 match --time-format {f:?}",
                seq_name(r.line().seq()),
                r.line().offset()
            ),
        })
    }
}

/// A record's time: RFC 3339, or `time_format` (chrono's syntax; UTC without `%z`).
fn record_time(r: &Record, time_format: Option<&str>) -> Option<SystemTime> {
    let text = r.timestamp_text()?;
    match time_format {
        None => r.timestamp(),
        Some(f) => chrono::DateTime::parse_from_str(text, f)
            .map(SystemTime::from)
            .ok()
            .or_else(|| {
                chrono::NaiveDateTime::parse_from_str(text, f)
                    .ok()
                    .map(|t| t.and_utc().into())
            }),
    }
}

fn seq_name(seq: Option<u64>) -> String {
    seq.map_or_else(|| "active".to_string(), |s| s.to_string())
}

/// The note for a torn last line (a crash cut the record; startup recovery sealed the file
/// as it was and recorded it): never printed as a record.
fn torn_note(line: &tracing_filesink::read::Line) -> String {
    format!(
        "filesink: segment {}, offset {}: torn last line ({} bytes) left by a crash; not printed",
        seq_name(line.seq()),
        line.offset(),
        line.as_bytes().len()
    )
}

/// A damaged or unreadable file is reported on stderr and skipped; the exit status is then 1.
fn cat(logs: &LogDir, filter: &Filter) -> io::Result<ExitCode> {
    let out = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, out.lock());
    let mut code = ExitCode::SUCCESS;
    // With --since, the reader starts near it instead of reading everything before it.
    let records = match filter.since {
        Some(since) => {
            let time_format = filter.time_format.clone();
            logs.records_since(since, move |r| record_time(r, time_format.as_deref()))?
        }
        None => logs.records()?,
    };
    for r in records {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                out.flush()?;
                eprintln!("filesink: {e}");
                code = ExitCode::from(1);
                continue;
            }
        };
        if !r.line().is_complete() {
            out.flush()?;
            eprintln!("{}", torn_note(r.line()));
            continue;
        }
        match filter.keep(&r) {
            Ok(true) => {
                out.write_all(r.line().as_bytes())?;
                out.write_all(b"\n")?;
            }
            Ok(false) => {}
            Err(why) => {
                out.flush()?;
                return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
            }
        }
    }
    out.flush()?;
    Ok(code)
}

fn follow(logs: &LogDir, from_start: bool) -> io::Result<()> {
    let mut f = if from_start {
        logs.follow()?
    } else {
        logs.follow_new()?
    };
    let out = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, out.lock());
    loop {
        match f.poll() {
            Ok(Some(line)) if line.is_complete() => {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
            Ok(Some(line)) => {
                out.flush()?;
                eprintln!("{}", torn_note(&line));
            }
            Ok(None) => {
                out.flush()?;
                f.wait();
            }
            // A file that cannot be read: reported once, the follower goes on with the next.
            Err(e) => {
                out.flush()?;
                eprintln!("filesink: {e}");
            }
        }
    }
}
