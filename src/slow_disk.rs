//! A disk that takes a set number of bytes per second, for the benchmarks' DEBUG storm
//! against a slow disk (`__private::slow_disk`). Not part of the supported API.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::fs::{Entry, FileHandle, Fs, RealFs};

/// Paces writes to a bandwidth: after each write, sleeps while the bytes written so far are
/// more than 1 ms ahead of what the bandwidth allows since the first write. The same pacing
/// whatever the size of the writes (one per record or one per batch).
#[derive(Debug)]
pub struct Throttle {
    bytes_per_sec: f64,
    /// The first write, and the bytes written since.
    state: Mutex<Option<(Instant, u64)>>,
}

impl Throttle {
    /// A disk taking `bytes_per_sec` bytes a second.
    pub fn new(bytes_per_sec: u64) -> Throttle {
        Throttle {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            state: Mutex::new(None),
        }
    }

    /// Accounts for `n` bytes just written, sleeping as the bandwidth says.
    pub fn pace(&self, n: usize) {
        let due = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let (start, written) = st.get_or_insert_with(|| (Instant::now(), 0));
            *written += n as u64;
            *start + Duration::from_secs_f64(*written as f64 / self.bytes_per_sec)
        };
        let now = Instant::now();
        if due > now + Duration::from_millis(1) {
            std::thread::sleep(due - now);
        }
    }
}

#[derive(Debug)]
struct SlowFs {
    throttle: Arc<Throttle>,
}

#[derive(Debug)]
struct SlowFile {
    inner: Box<dyn FileHandle>,
    throttle: Arc<Throttle>,
}

impl Write for SlowFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.throttle.pace(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl FileHandle for SlowFile {
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

impl SlowFs {
    fn slow(&self, inner: Box<dyn FileHandle>) -> Box<dyn FileHandle> {
        Box::new(SlowFile {
            inner,
            throttle: self.throttle.clone(),
        })
    }
}

impl Fs for SlowFs {
    fn open_append(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        RealFs.open_append(path, mode).map(|f| self.slow(f))
    }
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn FileHandle>> {
        RealFs.create_new(path, mode).map(|f| self.slow(f))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        RealFs.open_read(path)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        RealFs.write_at(path, offset, data)
    }
    fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename_noreplace(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        RealFs.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        RealFs.sync_dir(dir)
    }
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        RealFs.read_dir(dir)
    }
    fn identity(&self, path: &Path) -> io::Result<(u64, u64)> {
        RealFs.identity(path)
    }
    fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        RealFs.free_bytes(dir)
    }
    fn create_dir_all(&self, dir: &Path, mode: u32) -> io::Result<()> {
        RealFs.create_dir_all(dir, mode)
    }
    fn create_temp(
        &self,
        dir: &Path,
        stem: &str,
        mode: u32,
    ) -> io::Result<(PathBuf, Box<dyn FileHandle>)> {
        RealFs.create_temp(dir, stem, mode)
    }
    fn set_modified(&self, path: &Path, t: SystemTime) -> io::Result<()> {
        RealFs.set_modified(path, t)
    }
}

/// `builder` writing its log files through `throttle` (the benchmarks' slow disk).
pub fn slow_disk(builder: crate::Builder, throttle: Arc<Throttle>) -> crate::Builder {
    builder.with_fs(Arc::new(SlowFs { throttle }))
}
