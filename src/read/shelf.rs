//! Segments opened ahead of reading them.
//!
//! Retention and compression remove a segment's names while a slow reader is still on an
//! older one; a file that is open stays readable whatever happens to its names. So each new
//! segment is opened as soon as its name appears (a rotation renames the active file to a
//! `.pending` name at once) and held until the reader gets to it. With the `notify` feature a
//! watcher thread does this on every file-system event in the directory (inotify, kqueue,
//! FSEvents, ReadDirectoryChangesW), and wakes a waiting reader; without it, or where the
//! watch cannot be set up, the reader looks whenever it polls.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::{LogDir, SegmentKind};

/// At most this many files held at once: past it a reader that has fallen far behind gets
/// a report of the segments removed before it read them, instead of running out of file
/// descriptors.
const MAX_HELD: usize = 256;

/// One segment file held open.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) kind: SegmentKind,
    pub(super) path: PathBuf,
    pub(super) file: File,
}

#[derive(Debug, Default)]
struct Shelf {
    held: BTreeMap<u64, Held>,
    /// Every segment numbered up to this has been read: never held again.
    done: Option<u64>,
    /// Counts the looks and events, so a waiting reader knows something happened.
    generation: u64,
}

/// The shelf, shared between the reader and the watcher thread.
#[derive(Debug, Default)]
pub(super) struct Shared {
    shelf: Mutex<Shelf>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Shelf> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.shelf.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens every segment numbered above `done` that is not held yet (a pending or plain
    /// name before a `.gz`: the same inode as the active file it was). Errors are left to
    /// the reader, which opens the name itself and reports them.
    pub(super) fn stock(&self, logs: &LogDir) {
        let Ok(listed) = logs.list(false) else {
            return;
        };
        let mut shelf = self.lock();
        for s in listed {
            let Some(seq) = s.seq else { continue };
            if s.kind == SegmentKind::Active
                || Some(seq) <= shelf.done
                || shelf.held.contains_key(&seq)
                || shelf.held.len() >= MAX_HELD
            {
                continue;
            }
            if let Ok(file) = File::open(&s.path) {
                if file.metadata().is_ok_and(|m| m.is_file()) {
                    shelf.held.insert(
                        seq,
                        Held {
                            kind: s.kind,
                            path: s.path,
                            file,
                        },
                    );
                }
            }
        }
        shelf.generation += 1;
        drop(shelf);
        self.wake.notify_all();
    }

    /// A file-system event that names no new file (data appended): wake the reader.
    #[cfg_attr(not(feature = "notify"), allow(dead_code))]
    pub(super) fn poke(&self) {
        self.lock().generation += 1;
        self.wake.notify_all();
    }

    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Waits until the generation moves past `seen`, at most `timeout`.
    pub(super) fn wait(&self, seen: u64, timeout: Duration) {
        let shelf = self.lock();
        let _ = self
            .wake
            .wait_timeout_while(shelf, timeout, |s| s.generation == seen);
    }

    /// Every segment up to `done` is read: drop what is held for them.
    pub(super) fn set_done(&self, done: Option<u64>) {
        let mut shelf = self.lock();
        shelf.done = done;
        if let Some(d) = done {
            shelf.held = shelf.held.split_off(&(d + 1));
        }
    }

    /// The numbers of the held segments above `done`.
    pub(super) fn held_above(&self, done: Option<u64>) -> Vec<(u64, SegmentKind)> {
        self.lock()
            .held
            .iter()
            .filter(|(&seq, _)| Some(seq) > done)
            .map(|(&seq, h)| (seq, h.kind))
            .collect()
    }

    /// Takes the held file of segment `seq` out of the shelf.
    pub(super) fn take(&self, seq: u64) -> Option<Held> {
        self.lock().held.remove(&seq)
    }

    /// Runs `f` on the held file of segment `seq`, if any.
    pub(super) fn with<R>(&self, seq: u64, f: impl FnOnce(&Held) -> R) -> Option<R> {
        self.lock().held.get(&seq).map(f)
    }
}

/// Keeps the shelf stocked from file-system events while it lives.
pub(super) struct Watcher {
    #[cfg(feature = "notify")]
    _inner: notify::RecommendedWatcher,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watcher")
    }
}

impl Watcher {
    /// A watch on `logs`' directory; `None` where the platform or the build has none (the
    /// reader then looks when it polls).
    #[cfg(feature = "notify")]
    pub(super) fn start(logs: &LogDir, shared: &Arc<Shared>) -> Option<Watcher> {
        use notify::event::{EventKind, ModifyKind};
        use notify::Watcher as _;
        let (l, s) = (logs.clone(), shared.clone());
        let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            match ev {
                // Appended data: nothing new to hold.
                Ok(e) if matches!(e.kind, EventKind::Modify(ModifyKind::Data(_))) => s.poke(),
                Ok(e) if matches!(e.kind, EventKind::Access(_)) => {}
                // A name came or went, or the watch lost events: look.
                _ => s.stock(&l),
            }
        })
        .ok()?;
        w.watch(logs.dir(), notify::RecursiveMode::NonRecursive)
            .ok()?;
        Some(Watcher { _inner: w })
    }

    #[cfg(not(feature = "notify"))]
    pub(super) fn start(_logs: &LogDir, _shared: &Arc<Shared>) -> Option<Watcher> {
        None
    }
}
