//! Gzip of finished segments, on the maintenance thread, never on the writer or a caller.
//!
//! Stream the segment into a temp file in the same directory, finish the gzip stream, fsync,
//! verify (decompress, compare length and CRC32 with the source), rename to `<segment>.gz`
//! without replacing, fsync the directory, and only then remove the plain segment. Any failure
//! removes the temp file and keeps the plain segment.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::builder::Config;
use crate::error::Error;
use crate::fs::FileHandle;

/// Compression of finished segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compression {
    level: Option<u32>,
}

impl Compression {
    /// No compression (the default).
    pub const fn none() -> Compression {
        Compression { level: None }
    }
    /// Gzip at level 6 (`gzip`'s default).
    pub const fn gzip() -> Compression {
        Compression { level: Some(6) }
    }
    /// The gzip level, 0 (store) to 9 (smallest); `build()` rejects anything else.
    #[must_use]
    pub const fn level(self, level: u32) -> Compression {
        Compression { level: Some(level) }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.level {
            Some(l) if l > 9 => Err(format!("gzip level {l} is not within 0..=9")),
            _ => Ok(()),
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.level.is_some()
    }
}

/// Reads a [`FileHandle`] from the start with `pread`.
pub(crate) struct ReadFrom<'a> {
    pub(crate) file: &'a dyn FileHandle,
    pub(crate) pos: u64,
}

impl Read for ReadFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Checks that the gzip file at `gz` decompresses to exactly `len` bytes with CRC32 `crc`.
pub(crate) fn verify(
    cfg: &Config,
    gz: &Path,
    len: u64,
    crc: u32,
    stop: &AtomicBool,
) -> Result<(), Error> {
    let f = cfg
        .fs
        .open_read(gz)
        .map_err(|e| Error::io("open for verification", gz, e))?;
    let (dlen, dcrc) = count_and_crc(
        flate2::read::MultiGzDecoder::new(ReadFrom { file: &*f, pos: 0 }),
        stop,
    )
    .map_err(|e| Error::io("verify compressed segment", gz, e))?;
    if dlen != len || dcrc != crc {
        return Err(Error::io(
            "verify compressed segment",
            gz,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "decompressed {dlen} bytes crc {dcrc:08x}, expected {len} bytes crc {crc:08x}"
                ),
            ),
        ));
    }
    Ok(())
}

/// Length (as u64, not the CRC's 32-bit counter) and CRC32 of a stream.
fn count_and_crc(mut r: impl Read, stop: &AtomicBool) -> io::Result<(u64, u32)> {
    let mut crc = flate2::Crc::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "sink shutting down",
            ));
        }
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        crc.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, crc.sum()))
}

/// Length and CRC32 of the file at `path`.
pub(crate) fn plain_crc(cfg: &Config, path: &Path, stop: &AtomicBool) -> Result<(u64, u32), Error> {
    let f = cfg
        .fs
        .open_read(path)
        .map_err(|e| Error::io("open segment", path, e))?;
    count_and_crc(ReadFrom { file: &*f, pos: 0 }, stop)
        .map_err(|e| Error::io("read segment", path, e))
}

/// Compresses the finished segment `plain` into `gz`, then removes `plain`.
pub(crate) fn compress(
    cfg: &Config,
    plain: &Path,
    gz: &Path,
    stop: &AtomicBool,
) -> Result<(), Error> {
    let level = cfg.compression.level.unwrap_or(6);
    let src = cfg
        .fs
        .open_read(plain)
        .map_err(|e| Error::io("open segment", plain, e))?;
    let modified = std::fs::symlink_metadata(plain)
        .and_then(|m| m.modified())
        .ok();
    let (tmp_path, tmp) = cfg
        .fs
        .create_temp(&cfg.dir, &cfg.stem, cfg.file_mode)
        .map_err(|e| Error::io("create temp file", &cfg.dir, e))?;
    let result = (|| -> Result<(), Error> {
        let mut enc = flate2::write::GzEncoder::new(tmp, flate2::Compression::new(level));
        let (len, crc) = {
            let mut crc = flate2::Crc::new();
            let mut len = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            let mut r = ReadFrom {
                file: &*src,
                pos: 0,
            };
            loop {
                if stop.load(Ordering::Relaxed) {
                    return Err(Error::io(
                        "compress",
                        plain,
                        io::Error::new(io::ErrorKind::Interrupted, "sink shutting down"),
                    ));
                }
                let n = r
                    .read(&mut buf)
                    .map_err(|e| Error::io("read segment", plain, e))?;
                if n == 0 {
                    break;
                }
                crc.update(&buf[..n]);
                len += n as u64;
                enc.write_all(&buf[..n])
                    .map_err(|e| Error::io("write temp file", &tmp_path, e))?;
            }
            (len, crc.sum())
        };
        let mut tmp = enc
            .finish()
            .map_err(|e| Error::io("write temp file", &tmp_path, e))?;
        tmp.sync()
            .map_err(|e| Error::io("fsync temp file", &tmp_path, e))?;
        drop(tmp);
        verify(cfg, &tmp_path, len, crc, stop)?;
        if let Some(t) = modified {
            // Retention by age reads the segment's last write, not the compression time.
            let _ = cfg.fs.set_modified(&tmp_path, t);
        }
        cfg.fs
            .rename_noreplace(&tmp_path, gz)
            .map_err(|e| Error::io("rename temp file", gz, e))?;
        cfg.fs
            .sync_dir(&cfg.dir)
            .map_err(|e| Error::io("fsync directory", &cfg.dir, e))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = cfg.fs.remove(&tmp_path);
        return Err(e);
    }
    cfg.fs
        .remove(plain)
        .map_err(|e| Error::io("remove compressed segment's source", plain, e))?;
    cfg.fs
        .sync_dir(&cfg.dir)
        .map_err(|e| Error::io("fsync directory", &cfg.dir, e))?;
    Ok(())
}

/// A segment present both plain and compressed (a crash, or a failed directory fsync,
/// between the `.gz` rename and the removal of its source): keep the `.gz` if it verifies
/// against the plain file and remove the plain one (true), else remove the `.gz` so the
/// segment is compressed again (false). Either way the data is on disk exactly once.
pub(crate) fn settle(
    cfg: &Config,
    plain: &Path,
    gz: &Path,
    stop: &AtomicBool,
) -> Result<bool, Error> {
    let good = match plain_crc(cfg, plain, stop) {
        Ok((len, crc)) => verify(cfg, gz, len, crc, stop).is_ok(),
        Err(_) => false,
    };
    if stop.load(Ordering::SeqCst) {
        // Verification was cut short: decide nothing.
        return Err(Error::io(
            "verify compressed segment",
            gz,
            io::Error::new(io::ErrorKind::Interrupted, "sink shutting down"),
        ));
    }
    let doomed = if good { plain } else { gz };
    cfg.fs
        .remove(doomed)
        .map_err(|e| Error::io("remove duplicate of a segment", doomed, e))?;
    cfg.fs
        .sync_dir(&cfg.dir)
        .map_err(|e| Error::io("fsync directory", &cfg.dir, e))?;
    Ok(good)
}
