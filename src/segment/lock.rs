//! The lock file: one sink per directory and stem, across processes.

use std::fs::File;
use std::time::Duration;

use crate::config::Config;
use crate::error::Error;

/// Takes the advisory lock on `<stem>.log.lock`, so that two sinks (in one process or two)
/// never write the same files.
pub(crate) fn take(cfg: &Config) -> Result<File, Error> {
    let path = cfg.path(&crate::segment::name::lock(&cfg.stem));
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::symlink(&path));
    }
    let file = crate::sys::open_nofollow(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
        &path,
        cfg.file_mode,
    )
    // The first file the sink creates: when the directory refuses it, the directory is
    // named.
    .map_err(|e| Error::creating("open lock file", &path, &cfg.dir, e))?;
    // A process forking in another thread holds a copy of a just-closed lock descriptor until
    // its exec; such a holder lets go within milliseconds, another sink never does.
    let mut attempts = 0;
    let locked = loop {
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            other => break other,
        }
    };
    match locked {
        Ok(()) => {
            // open(2) applied the umask; give the lock file the exact mode like every other
            // file. Best effort: a lock file owned by someone else still locks.
            let _ = crate::sys::set_mode(&file, cfg.file_mode);
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::locked(&path)),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}
