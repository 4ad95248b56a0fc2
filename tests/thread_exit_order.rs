//! A record logged from a thread-local destructor, when the sink's own thread-locals may be
//! gone (it then goes through the queue's shared orphan slot), comes after everything its
//! thread logged before: the order work removed the exception the docs used to make for it.
//! A file of its own: it needs the global default dispatcher, since a thread's scoped default
//! is itself a thread-local.

mod common;

use tracing_filesink::FileSink;

fn field(v: &serde_json::Value, name: &str) -> u64 {
    v["fields"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no field {name} in {v}"))
}

/// Logs from a thread-local destructor (the thread's own slot may be gone by then).
struct LogsOnExit(u64);

impl Drop for LogsOnExit {
    fn drop(&mut self) {
        tracing::info!(exit_of = self.0, "from a thread-local destructor");
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<LogsOnExit>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn a_record_logged_by_a_thread_local_destructor_comes_after_the_threads_earlier_records() {
    const THREADS: u64 = 8;
    const BEFORE: u64 = 1_000;
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app").build().unwrap();
    tracing::dispatcher::set_global_default(common::dispatch(layer)).unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                // Registered first, so destroyed after the sink's own thread-locals.
                ON_EXIT.with(|e| *e.borrow_mut() = Some(LogsOnExit(t)));
                for seq in 0..BEFORE {
                    tracing::info!(t, seq, "before exit");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    guard.flush().unwrap();
    let recs: Vec<serde_json::Value> = common::all_files_lines(tmp.path(), "app")
        .into_iter()
        .flat_map(|(_, lines)| lines)
        .map(|l| common::json(&l))
        .collect();
    let exits = recs
        .iter()
        .filter(|r| !r["fields"]["exit_of"].is_null())
        .count() as u64;
    assert_eq!(exits, THREADS, "one record per destructor");
    for t in 0..THREADS {
        let last = recs
            .iter()
            .rposition(|r| r["fields"]["t"].as_u64() == Some(t))
            .expect("the thread's records");
        assert_eq!(
            field(&recs[last], "seq"),
            BEFORE - 1,
            "thread {t}'s last record"
        );
        let exit = recs
            .iter()
            .position(|r| r["fields"]["exit_of"].as_u64() == Some(t))
            .expect("the thread's destructor record");
        assert!(
            exit > last,
            "thread {t}: its destructor's record (line {exit}) came before its last record (line {last})"
        );
    }
}
