//! The crate's one public error type.
//!
//! Shaped like walkdir's and csv's errors: an opaque [`Error`] with accessors, a
//! `#[non_exhaustive]` [`ErrorKind`], and I/O errors that carry the operation and
//! the path they concern.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What went wrong, broadly. Match on it with a wildcard arm: new kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A builder setting is invalid; [`Error::setting`] names it.
    InvalidConfig,
    /// Another sink (in this process or another one) already writes this active file.
    Locked,
    /// A path the sink would open is a symbolic link; the sink never follows one.
    Symlink,
    /// An I/O operation failed; [`Error::io_error`] and [`Error::path`] say which and where.
    Io,
    /// The sink was shut down, or its writer thread is gone.
    ShutDown,
    /// An operation did not complete within its timeout.
    TimedOut,
}

/// An error from building, flushing, syncing, rotating or shutting down a sink.
///
/// Cheap to clone: the writer thread keeps its last error and hands a clone to every
/// `flush()`, `sync()` and `shutdown()` that must report it.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
    /// Events given up on by the call that returned this error.
    events_lost: Option<u64>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    setting: Option<&'static str>,
    path: Option<PathBuf>,
    io: Option<io::Error>,
    /// Which sink, for `build()`'s errors: `sink "app" in /var/log/app`.
    sink: Option<String>,
}

impl Error {
    fn new(
        kind: ErrorKind,
        message: String,
        setting: Option<&'static str>,
        path: Option<PathBuf>,
        io: Option<io::Error>,
    ) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind,
                message,
                setting,
                path,
                io,
                sink: None,
            }),
            events_lost: None,
        }
    }

    /// This error, naming the sink it comes from (`build()` adds it, so that a service with
    /// several sinks can tell which one failed).
    pub(crate) fn in_sink(self, sink: &str) -> Error {
        let events_lost = self.events_lost;
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            kind: shared.kind,
            message: shared.message.clone(),
            setting: shared.setting,
            path: shared.path.clone(),
            io: shared
                .io
                .as_ref()
                .map(|e| io::Error::new(e.kind(), e.to_string())),
            sink: None,
        });
        Error {
            inner: Arc::new(Inner {
                sink: Some(sink.to_string()),
                ..inner
            }),
            events_lost,
        }
    }

    /// This error, saying that the call returning it gave up `n` events.
    pub(crate) fn with_events_lost(mut self, n: u64) -> Error {
        self.events_lost = Some(n);
        self
    }

    pub(crate) fn config(setting: &'static str, message: impl Into<String>) -> Error {
        Error::new(
            ErrorKind::InvalidConfig,
            message.into(),
            Some(setting),
            None,
            None,
        )
    }

    /// A configuration key that names no setting.
    #[cfg(feature = "serde")]
    pub(crate) fn unknown_setting(key: &str) -> Error {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("unknown setting `{key}`"),
            None,
            None,
            None,
        )
    }

    pub(crate) fn config_path(
        setting: &'static str,
        path: &Path,
        message: impl Into<String>,
    ) -> Error {
        Error::new(
            ErrorKind::InvalidConfig,
            message.into(),
            Some(setting),
            Some(path.to_path_buf()),
            None,
        )
    }

    /// An I/O error during `op` ("open", "write", "fsync", "rename", ...) on `path`.
    pub(crate) fn io(op: &str, path: &Path, err: io::Error) -> Error {
        let kind = if is_symlink_refusal(&err) {
            ErrorKind::Symlink
        } else {
            ErrorKind::Io
        };
        let message = if kind == ErrorKind::Symlink {
            format!("{op}: refusing to follow a symbolic link")
        } else {
            op.to_string()
        };
        Error::new(kind, message, None, Some(path.to_path_buf()), Some(err))
    }

    /// Creating the log directory `dir` failed. Keeps the `io::Error` (a permission problem
    /// stays `PermissionDenied`); when a component of the path is a file, names it.
    pub(crate) fn create_dir(dir: &Path, err: io::Error) -> Error {
        let file = dir
            .ancestors()
            .skip(1)
            .find(|p| std::fs::metadata(p).is_ok_and(|m| !m.is_dir()));
        match file {
            // The configured path cannot be a directory: a setting to fix.
            Some(file) => Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "cannot create the log directory {}: {} is a file, not a directory",
                    dir.display(),
                    file.display()
                ),
                Some("dir"),
                Some(file.to_path_buf()),
                Some(err),
            ),
            None => Error::new(
                ErrorKind::Io,
                "cannot create the log directory".into(),
                Some("dir"),
                Some(dir.to_path_buf()),
                Some(err),
            ),
        }
    }

    /// The sink may not create files in its directory `dir` (found creating the first one):
    /// the directory is what to fix, not the file.
    pub(crate) fn dir_not_writable(dir: &Path, err: io::Error) -> Error {
        Error::new(
            ErrorKind::Io,
            "cannot create files in the log directory".into(),
            Some("dir"),
            Some(dir.to_path_buf()),
            Some(err),
        )
    }

    /// An error creating or opening `path`, a file of the sink in its directory `dir`: when
    /// the directory refused to create it (the file is not there, and the refusal is a
    /// permission or a read-only file system), the directory is what to fix and is named.
    pub(crate) fn creating(op: &'static str, path: &Path, dir: &Path, err: io::Error) -> Error {
        let denied = matches!(
            err.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
        );
        if denied && std::fs::symlink_metadata(path).is_err() {
            Error::dir_not_writable(dir, err)
        } else {
            Error::io(op, path, err)
        }
    }

    pub(crate) fn symlink(path: &Path) -> Error {
        Error::new(
            ErrorKind::Symlink,
            "refusing to follow a symbolic link".into(),
            None,
            Some(path.to_path_buf()),
            None,
        )
    }

    pub(crate) fn locked(path: &Path) -> Error {
        Error::new(
            ErrorKind::Locked,
            "another sink already writes this active file (lock file is held)".into(),
            None,
            Some(path.to_path_buf()),
            None,
        )
    }

    pub(crate) fn shut_down() -> Error {
        Error::new(
            ErrorKind::ShutDown,
            "the sink is shut down (its writer thread has exited)".into(),
            None,
            None,
            None,
        )
    }

    /// A background thread of the sink panicked; the sink no longer writes.
    pub(crate) fn panicked(thread: &str) -> Error {
        Error::new(
            ErrorKind::ShutDown,
            format!("the sink's {thread} thread panicked; the sink no longer writes"),
            None,
            None,
            None,
        )
    }

    pub(crate) fn timed_out(what: &str) -> Error {
        Error::new(
            ErrorKind::TimedOut,
            format!("{what} timed out"),
            None,
            None,
            None,
        )
    }

    /// The broad kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The builder setting this error is about: for [`ErrorKind::InvalidConfig`], and `dir`
    /// when the log directory could not be created or written to.
    pub fn setting(&self) -> Option<&'static str> {
        self.inner.setting
    }

    /// The file or directory this error concerns, if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The underlying I/O error, if this error came from the operating system.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.inner.io.as_ref()
    }

    /// For an error of [`FileSinkGuard::shutdown`](crate::FileSinkGuard::shutdown): how many
    /// events the sink gave up while shutting down (still unwritten when the disk kept
    /// failing until the timeout, or logged while it shut down); they are counted in
    /// [`Stats::events_dropped`](crate::Stats::events_dropped) too. `None` for other errors,
    /// when nothing was given up, and when the writer did not answer in time (its count is
    /// not final then).
    pub fn events_lost(&self) -> Option<u64> {
        self.events_lost
    }
}

fn is_symlink_refusal(err: &io::Error) -> bool {
    // O_NOFOLLOW's ELOOP on Unix; a refused symlink or junction on Windows.
    crate::sys::is_symlink_refusal(err)
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        d.field("message", &self.inner.message);
        if let Some(s) = self.inner.setting {
            d.field("setting", &s);
        }
        if let Some(p) = &self.inner.path {
            d.field("path", p);
        }
        if let Some(e) = &self.inner.io {
            d.field("io", e);
        }
        if let Some(sink) = &self.inner.sink {
            d.field("sink", sink);
        }
        if let Some(n) = self.events_lost {
            d.field("events_lost", &n);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(sink) = &self.inner.sink {
            write!(f, "{sink}: ")?;
        }
        match self.inner.setting {
            Some(setting) if self.inner.kind == ErrorKind::InvalidConfig => {
                write!(f, "invalid setting `{setting}`: ")?
            }
            Some(setting) => write!(f, "`{setting}`: ")?,
            None => {}
        }
        f.write_str(&self.inner.message)?;
        if let Some(path) = &self.inner.path {
            write!(f, " ({})", path.display())?;
        }
        if let Some(io) = &self.inner.io {
            write!(f, ": {io}")?;
        }
        if let Some(n) = self.events_lost {
            write!(f, "; {n} events given up, not written")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .io
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.kind() {
            ErrorKind::InvalidConfig => io::ErrorKind::InvalidInput,
            ErrorKind::Locked => io::ErrorKind::WouldBlock,
            ErrorKind::Symlink => io::ErrorKind::InvalidInput,
            ErrorKind::TimedOut => io::ErrorKind::TimedOut,
            ErrorKind::ShutDown => io::ErrorKind::BrokenPipe,
            ErrorKind::Io => err
                .io_error()
                .map(|e| e.kind())
                .unwrap_or(io::ErrorKind::Other),
        };
        io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_setting_and_path() {
        let e = Error::config_path("dir", Path::new("/x/y"), "cannot create directory");
        let s = e.to_string();
        assert!(s.contains("`dir`"), "{s}");
        assert!(s.contains("/x/y"), "{s}");
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert_eq!(e.setting(), Some("dir"));
    }

    #[test]
    fn symlink_refusal_is_symlink_kind() {
        let e = Error::io("open", Path::new("a"), crate::sys::symlink_refused());
        assert_eq!(e.kind(), ErrorKind::Symlink);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn create_dir_error_keeps_the_io_error() {
        let e = Error::create_dir(
            Path::new("/nonexistent-root/logs"),
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.setting(), Some("dir"));
        assert_eq!(e.path(), Some(Path::new("/nonexistent-root/logs")));
        assert_eq!(
            e.io_error().map(io::Error::kind),
            Some(io::ErrorKind::PermissionDenied)
        );
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.downcast_ref::<io::Error>().is_some());
        assert!(!e.to_string().contains("invalid setting"), "{e}");
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn error_is_send_sync() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<Error>();
    }
}
