//! `filesink`: read back the files of a `tracing-filesink` sink.
//!
//! ```text
//! filesink cat DIR [--since T] [--until T] [--level warn]   every record in write order
//! filesink follow DIR [--from-start]                       like tail -F, loss-free across rotations
//! filesink verify DIR                                      check every finished segment
//! filesink stats DIR                                       lines, bytes and levels per segment
//! ```
//!
//! Install with `cargo install tracing-filesink --features cli`.

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
        } => {
            let logs = open(&target)?;
            cat(&logs, since, until, level)
        }
        Cmd::Follow { target, from_start } => {
            let logs = open(&target)?;
            follow(&logs, from_start)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { target } => {
            let logs = open(&target)?;
            let problems = verify::run(&logs, &mut io::stdout().lock())?;
            Ok(if problems == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Stats { target } => {
            let logs = open(&target)?;
            stats::run(&logs, &mut io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The directory and stem: `--stem`, or the only stem in the directory.
fn open(t: &Target) -> io::Result<LogDir> {
    let stem = match &t.stem {
        Some(s) => s.clone(),
        None => {
            let stems = LogDir::stems_with_extension(&t.dir, &t.extension)?;
            match stems.as_slice() {
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
            }
        }
    };
    Ok(LogDir::open(&t.dir, stem)?.with_extension(&t.extension))
}

fn keep(
    r: &Record,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    level: Option<Level>,
) -> bool {
    if since.is_some() || until.is_some() {
        let Some(t) = r.timestamp() else {
            return false;
        };
        if since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u) {
            return false;
        }
    }
    match level {
        // `Level` orders TRACE as the greatest: "at least as severe" is `<=`.
        Some(min) => r.level().is_some_and(|l| l <= min),
        None => true,
    }
}

/// A damaged segment is reported on stderr and skipped; the exit status is then 1.
fn cat(
    logs: &LogDir,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    level: Option<Level>,
) -> io::Result<ExitCode> {
    let out = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, out.lock());
    let mut code = ExitCode::SUCCESS;
    for r in logs.records()? {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                out.flush()?;
                eprintln!("filesink: {e}");
                code = ExitCode::from(1);
                continue;
            }
        };
        if keep(&r, since, until, level) {
            out.write_all(r.line().as_bytes())?;
            out.write_all(b"\n")?;
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
        let next = match f.poll() {
            Ok(next) => next,
            // A damaged segment: reported and skipped, the follower goes on.
            Err(e) => {
                out.flush()?;
                eprintln!("filesink: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        match next {
            Some(line) => {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
            None => {
                out.flush()?;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
