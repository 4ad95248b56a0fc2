//! Reopen the log file on SIGHUP, for external rotation with logrotate's `create` mode.
//!
//! ```sh
//! cargo run --example sighup_reopen -- ./logs      # logs a heartbeat every 200 ms
//! mv logs/app.log logs/app.log.1 && kill -HUP <pid> # new events go to a new logs/app.log
//! ```
//!
//! A logrotate configuration for it:
//!
//! ```text
//! /var/log/myapp/app.log {
//!     daily
//!     rotate 7
//!     create 0600 myapp myapp
//!     postrotate
//!         kill -HUP $(cat /run/myapp.pid)
//!     endscript
//! }
//! ```
//!
//! Without the signal the sink still notices a moved or deleted file by itself (a cheap
//! device/inode check, about once a second); SIGHUP makes the switch immediate. SIGINT or
//! SIGTERM ends the example with a clean shutdown.
//!
//! Signals are a Unix matter: on Windows the example only says so. There a program calls
//! `guard.reopen()` from whatever event its rotation tool gives it.

#[cfg(not(unix))]
fn main() {
    eprintln!("sighup_reopen: SIGHUP exists only on Unix");
    std::process::exit(2);
}

#[cfg(unix)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;
    use tracing_filesink::FileSink;
    use tracing_subscriber::prelude::*;

    let dir = std::env::args().nth(1).unwrap_or_else(|| "logs".into());
    let (layer, guard) = FileSink::builder(&dir, "app").build()?;
    tracing_subscriber::registry().with(layer).init();
    let guard = Arc::new(guard);
    let stop = Arc::new(AtomicBool::new(false));

    // Signal handlers only set flags; this thread does the work.
    let mut signals = Signals::new([SIGHUP, SIGINT, SIGTERM])?;
    let handle = signals.handle();
    let (g, s) = (guard.clone(), stop.clone());
    let signal_thread = std::thread::spawn(move || {
        for sig in signals.forever() {
            match sig {
                SIGHUP => match g.reopen() {
                    Ok(()) => tracing::info!("reopened the log file on SIGHUP"),
                    Err(e) => eprintln!("reopen failed: {e}"),
                },
                _ => {
                    s.store(true, Ordering::SeqCst);
                    break;
                }
            }
        }
    });

    println!(
        "pid {}: logging to {dir}/app.log; send SIGHUP after moving it",
        std::process::id()
    );
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        tracing::info!(n, "heartbeat");
        n += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    handle.close();
    let _ = signal_thread.join();
    guard.shutdown(Duration::from_secs(5))?;
    println!("logged {n} heartbeats");
    Ok(())
}
