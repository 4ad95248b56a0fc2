//! Gzip of finished segments, on the maintenance thread, never on the writer or a caller.
//!
//! Stream the segment into a temp file in the same directory, finish the gzip stream, fsync,
//! verify (decompress, compare length and CRC32 with the source), rename to `<segment>.gz`
//! without replacing, fsync the directory, and only then remove the plain segment. Any failure
//! removes the temp file and keeps the plain segment.

use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Config;
use crate::error::Error;
use crate::fs::FileHandle;

/// Why a step stopped when `stop` was set: the work was abandoned at shutdown, which is not
/// a failure (the plain segment stays, and the next start compresses it).
#[derive(Debug)]
struct Abandoned;

impl std::fmt::Display for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sink shutting down")
    }
}

impl std::error::Error for Abandoned {}

fn abandoned() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, Abandoned)
}

/// True when `err` is an I/O error saying the file is not there.
fn is_not_found(err: &Error) -> bool {
    err.io_error()
        .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
}

/// True when `err` says the work was abandoned because `stop` was set, false for a real
/// failure, even one that happens to be handled after `stop` was set.
pub(crate) fn is_abandoned(err: &Error) -> bool {
    err.io_error()
        .and_then(io::Error::get_ref)
        .is_some_and(|e| e.is::<Abandoned>())
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

/// Checks that the gzip file at `gz` is one gzip member, with nothing after it, that
/// decompresses to exactly `len` bytes, and, given `crc`, that the CRC32 in its trailer is
/// `crc`.
///
/// The decoder computes the CRC32 of what it decompresses and fails unless it equals the
/// trailer's (flate2's `GzDecoder` checks the trailer's CRC32 and length). So the output's
/// CRC32 is the trailer's, and the trailer's is `crc`: one CRC32 pass over the output proves
/// both. `compress` passes no `crc`: the trailer it wrote holds the CRC32 the encoder
/// computed over the very bytes it was given, so the decoder's check is the comparison.
pub(crate) fn verify(
    cfg: &Config,
    gz: &Path,
    len: u64,
    crc: Option<u32>,
    stop: &AtomicBool,
) -> Result<(), Error> {
    let fail = |e| Error::io("verify compressed segment", gz, e);
    let f = cfg
        .fs
        .open_read(gz)
        .map_err(|e| Error::io("open for verification", gz, e))?;
    let mut dec = flate2::bufread::GzDecoder::new(io::BufReader::with_capacity(
        64 * 1024,
        ReadFrom { file: &*f, pos: 0 },
    ));
    let dlen = drain(&mut dec, stop, |_| ()).map_err(fail)?;
    let trailing = dec.get_mut().fill_buf().map_err(fail)?.len();
    let mismatch = |what: String| fail(io::Error::new(io::ErrorKind::InvalidData, what));
    if trailing > 0 {
        return Err(mismatch(format!(
            "{trailing} bytes or more after the gzip member"
        )));
    }
    if dlen != len {
        return Err(mismatch(format!(
            "decompressed {dlen} bytes, expected {len}"
        )));
    }
    if let Some(crc) = crc {
        // The member ends where the file does: its trailer is the file's last 8 bytes.
        let mut trailer = [0u8; 4];
        let mut r = ReadFrom {
            file: &*f,
            pos: f.len().map_err(fail)?.saturating_sub(8),
        };
        r.read_exact(&mut trailer).map_err(fail)?;
        let got = u32::from_le_bytes(trailer);
        if got != crc {
            return Err(mismatch(format!(
                "decompressed data has crc {got:08x}, expected {crc:08x}"
            )));
        }
    }
    Ok(())
}

/// Reads `r` to its end, handing every piece read to `each`; returns the bytes read (as u64,
/// not the CRC's 32-bit counter). Gives up as abandoned once `stop` is set.
fn drain(mut r: impl Read, stop: &AtomicBool, mut each: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut len = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(abandoned());
        }
        match r.read(&mut buf) {
            Ok(0) => return Ok(len),
            Ok(n) => {
                each(&buf[..n]);
                len += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Length and CRC32 of the file at `path`.
pub(crate) fn plain_crc(cfg: &Config, path: &Path, stop: &AtomicBool) -> Result<(u64, u32), Error> {
    let f = cfg
        .fs
        .open_read(path)
        .map_err(|e| Error::io("open segment", path, e))?;
    let mut crc = flate2::Crc::new();
    let len = drain(ReadFrom { file: &*f, pos: 0 }, stop, |b| crc.update(b))
        .map_err(|e| Error::io("read segment", path, e))?;
    Ok((len, crc.sum()))
}

/// Compresses the finished segment `plain` into `gz`, then removes `plain`.
/// `pace` is called before every 64 KiB of input; it may wait while the application logs
/// heavily.
pub(crate) fn compress(
    cfg: &Config,
    plain: &Path,
    gz: &Path,
    level: u32,
    stop: &AtomicBool,
    pace: &dyn Fn(),
) -> Result<(), Error> {
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
        let len = {
            let mut len = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            let mut r = ReadFrom {
                file: &*src,
                pos: 0,
            };
            loop {
                pace();
                if stop.load(Ordering::Relaxed) {
                    return Err(Error::io("compress", plain, abandoned()));
                }
                let n = r
                    .read(&mut buf)
                    .map_err(|e| Error::io("read segment", plain, e))?;
                if n == 0 {
                    break;
                }
                len += n as u64;
                enc.write_all(&buf[..n])
                    .map_err(|e| Error::io("write temp file", &tmp_path, e))?;
            }
            len
        };
        let mut tmp = enc
            .finish()
            .map_err(|e| Error::io("write temp file", &tmp_path, e))?;
        tmp.sync()
            .map_err(|e| Error::io("fsync temp file", &tmp_path, e))?;
        drop(tmp);
        verify(cfg, &tmp_path, len, None, stop)?;
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
    crate::fs::remove_if_present(&*cfg.fs, plain)
        .map_err(|e| Error::io("remove compressed segment's source", plain, e))?;
    cfg.fs
        .sync_dir(&cfg.dir)
        .map_err(|e| Error::io("fsync directory", &cfg.dir, e))?;
    Ok(())
}

/// A segment present both plain and compressed (a crash, or a failed directory fsync,
/// between the `.gz` rename and the removal of its source): keep the `.gz` if it verifies
/// against the plain file and remove the plain one (true), else remove the `.gz` so the
/// segment is compressed again (false). Either way the data is on disk exactly once. A plain
/// file that cannot be read decides nothing (an error, both kept), unless it is gone (true).
pub(crate) fn settle(
    cfg: &Config,
    plain: &Path,
    gz: &Path,
    stop: &AtomicBool,
) -> Result<bool, Error> {
    let good = match plain_crc(cfg, plain, stop) {
        Ok((len, crc)) => verify(cfg, gz, len, Some(crc), stop).is_ok(),
        // Removed since the scan listed it: the `.gz` was complete before that (the source is
        // removed only after the rename) and is the segment now.
        Err(e) if is_not_found(&e) => return Ok(true),
        // Only a plain file read to its end can prove the `.gz` wrong; until then both stay.
        // (On Windows the name of a removed file that a reader still holds open can stay
        // listed, a delete pending, and opening it fails: the `.gz` is the only copy.)
        Err(e) => return Err(e),
    };
    if stop.load(Ordering::SeqCst) {
        // Verification was cut short: decide nothing.
        return Err(Error::io("verify compressed segment", gz, abandoned()));
    }
    let doomed = if good { plain } else { gz };
    crate::fs::remove_if_present(&*cfg.fs, doomed)
        .map_err(|e| Error::io("remove duplicate of a segment", doomed, e))?;
    cfg.fs
        .sync_dir(&cfg.dir)
        .map_err(|e| Error::io("fsync directory", &cfg.dir, e))?;
    Ok(good)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Entry, Fs, RealFs};
    use crate::settings::Compression;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::SystemTime;

    #[test]
    fn an_unpinned_gzip_drops_to_its_catch_up_level_only_while_behind() {
        let gzip = Compression::gzip();
        assert_eq!(gzip.level_for(0), 6);
        assert_eq!(gzip.level_for(1), 6);
        assert_eq!(gzip.level_for(2), 1);
        assert_eq!(gzip.level_for(500), 1);
        let pinned = Compression::gzip().level(9);
        assert_eq!(pinned.level_for(1), 9);
        assert_eq!(pinned.level_for(500), 9);
    }

    /// The real file system, except that temp files fill up after `room` bytes (ENOSPC).
    #[derive(Debug)]
    struct SmallDisk {
        room: usize,
    }

    #[derive(Debug)]
    struct Filling {
        inner: Box<dyn FileHandle>,
        left: usize,
    }

    impl Write for Filling {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            self.inner.write(&buf[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl FileHandle for Filling {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            self.inner.read_at(buf, offset)
        }
        fn sync(&mut self) -> io::Result<()> {
            self.inner.sync()
        }
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
        fn identity(&self) -> io::Result<(u64, u64)> {
            self.inner.identity()
        }
    }

    impl Fs for SmallDisk {
        fn open_append(&self, p: &Path, m: u32) -> io::Result<Box<dyn FileHandle>> {
            RealFs.open_append(p, m)
        }
        fn create_new(&self, p: &Path, m: u32) -> io::Result<Box<dyn FileHandle>> {
            RealFs.create_new(p, m)
        }
        fn open_read(&self, p: &Path) -> io::Result<Box<dyn FileHandle>> {
            RealFs.open_read(p)
        }
        fn write_at(&self, p: &Path, o: u64, d: &[u8]) -> io::Result<()> {
            RealFs.write_at(p, o, d)
        }
        fn rename_noreplace(&self, a: &Path, b: &Path) -> io::Result<()> {
            RealFs.rename_noreplace(a, b)
        }
        fn remove(&self, p: &Path) -> io::Result<()> {
            RealFs.remove(p)
        }
        fn sync_dir(&self, d: &Path) -> io::Result<()> {
            RealFs.sync_dir(d)
        }
        fn read_dir(&self, d: &Path) -> io::Result<Vec<Entry>> {
            RealFs.read_dir(d)
        }
        fn identity(&self, p: &Path) -> io::Result<(u64, u64)> {
            RealFs.identity(p)
        }
        fn free_bytes(&self, d: &Path) -> io::Result<u64> {
            RealFs.free_bytes(d)
        }
        fn create_dir_all(&self, d: &Path, m: u32) -> io::Result<()> {
            RealFs.create_dir_all(d, m)
        }
        fn create_temp(
            &self,
            d: &Path,
            stem: &str,
            m: u32,
        ) -> io::Result<(PathBuf, Box<dyn FileHandle>)> {
            let (p, inner) = RealFs.create_temp(d, stem, m)?;
            Ok((
                p,
                Box::new(Filling {
                    inner,
                    left: self.room,
                }),
            ))
        }
        fn set_modified(&self, p: &Path, t: SystemTime) -> io::Result<()> {
            RealFs.set_modified(p, t)
        }
    }

    fn segment_with_data(dir: &Path) -> (PathBuf, Vec<u8>) {
        let plain = dir.join("app.0000000001.20261126T031448Z.log");
        // Incompressible enough that the gzip stream outgrows the room.
        let mut data = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..4000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(format!("{{\"i\":{i},\"r\":\"{x:016x}\"}}\n").as_bytes());
        }
        std::fs::write(&plain, &data).unwrap();
        (plain, data)
    }

    /// A full disk during compression keeps the plain segment intact and leaves no temp file
    /// and no `.gz`; with room, the `.gz` replaces it and holds exactly its bytes.
    #[test]
    fn full_disk_keeps_the_plain_segment() {
        for room in [0usize, 1, 100, 10_000, 50_000] {
            let tmp = tempfile::tempdir().unwrap();
            let cfg = crate::FileSink::builder(tmp.path(), "app")
                .compression(Compression::gzip())
                .with_fs(Arc::new(SmallDisk { room }))
                .validate()
                .unwrap();
            let (plain, data) = segment_with_data(tmp.path());
            let gz = tmp.path().join("app.0000000001.20261126T031448Z.log.gz");
            let err = compress(&cfg, &plain, &gz, 6, &AtomicBool::new(false), &|| ()).unwrap_err();
            assert_eq!(
                err.io_error().and_then(|e| e.raw_os_error()),
                Some(28),
                "{err}"
            );
            assert!(!is_abandoned(&err), "a full disk is a failure: {err}");
            assert_eq!(std::fs::read(&plain).unwrap(), data, "room {room}");
            let names: Vec<String> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert_eq!(
                names,
                ["app.0000000001.20261126T031448Z.log"],
                "room {room}"
            );
        }
        let tmp = tempfile::tempdir().unwrap();
        let cfg = crate::FileSink::builder(tmp.path(), "app")
            .compression(Compression::gzip())
            .with_fs(Arc::new(SmallDisk { room: usize::MAX }))
            .validate()
            .unwrap();
        let (plain, data) = segment_with_data(tmp.path());
        let gz = tmp.path().join("app.0000000001.20261126T031448Z.log.gz");
        // Stopped: abandoned, not failed, and nothing changed.
        let err = compress(&cfg, &plain, &gz, 6, &AtomicBool::new(true), &|| ()).unwrap_err();
        assert!(is_abandoned(&err), "{err}");
        assert_eq!(std::fs::read(&plain).unwrap(), data);
        assert!(!gz.exists());
        compress(&cfg, &plain, &gz, 6, &AtomicBool::new(false), &|| ()).unwrap();
        assert!(!plain.exists());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }

    fn gzip_of(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// `verify` accepts exactly one member that decompresses to the segment, and rejects each
    /// way a `.gz` can differ from it: a damaged body (the decoder's own CRC32 check), another
    /// length, a trailer whose CRC32 is not the segment's (a valid `.gz` of other bytes of the
    /// same length: only the trailer comparison can tell), bytes after the member, a second
    /// member.
    #[test]
    fn verify_accepts_the_segment_and_rejects_every_other_gz() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = crate::FileSink::builder(tmp.path(), "app")
            .validate()
            .unwrap();
        let (_, data) = segment_with_data(tmp.path());
        let (len, crc) = (data.len() as u64, {
            let mut c = flate2::Crc::new();
            c.update(&data);
            c.sum()
        });
        let never = AtomicBool::new(false);
        let check = |bytes: &[u8], crc: Option<u32>| {
            let gz = tmp.path().join("x.gz");
            std::fs::write(&gz, bytes).unwrap();
            verify(&cfg, &gz, len, crc, &never)
        };
        let good = gzip_of(&data);
        check(&good, Some(crc)).unwrap();
        check(&good, None).unwrap();

        let mut damaged = good.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0x01;
        assert!(check(&damaged, None).is_err(), "a damaged body passed");

        let mut shorter = data.clone();
        shorter.pop();
        assert!(
            check(&gzip_of(&shorter), None).is_err(),
            "a shorter segment passed"
        );

        let mut other = data.clone();
        other[0] ^= 0x01;
        let other = gzip_of(&other);
        check(&other, None).unwrap();
        let err = check(&other, Some(crc)).unwrap_err();
        assert!(err.to_string().contains("crc"), "{err}");

        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        let err = check(&trailing, Some(crc)).unwrap_err();
        assert!(err.to_string().contains("after the gzip member"), "{err}");

        let half = data.len() / 2;
        let mut two = gzip_of(&data[..half]);
        two.extend_from_slice(&gzip_of(&data[half..]));
        assert!(check(&two, Some(crc)).is_err(), "two members passed");
    }
}
