//! Helpers shared by the fault tests (crash_loop, full_disk, reopen): reading back every file
//! of a stem with the crash-safety checks, and the "needs root / a tool" rule.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One record read back: the file it came from and its JSON.
#[derive(Debug)]
pub struct Line {
    pub file: String,
    pub json: serde_json::Value,
}

/// Names of this stem's finished segments (`<stem>.<10 digits>.<label>.log[.gz]`).
pub fn is_segment(stem: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(&format!("{stem}.")) else {
        return false;
    };
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    let Some(rest) = rest.strip_suffix(".log") else {
        return false;
    };
    let mut parts = rest.splitn(2, '.');
    let seq = parts.next().unwrap_or("");
    seq.len() == 10 && seq.bytes().all(|b| b.is_ascii_digit()) && parts.next().is_some()
}

/// `.<stem>.<random>.tmp`
pub fn is_temp(stem: &str, name: &str) -> bool {
    name.starts_with(&format!(".{stem}.")) && name.ends_with(".tmp")
}

/// The start of the record startup recovery writes when it sealed a file with a torn last
/// line (fields `segment`, `torn_bytes`).
pub const SEALED_TORN: &str = "recovery: sealed a file as it was, with a torn last line";

/// Every line of every file of `stem` in `dir` (segments in name order, then the active
/// file), with the guarantees checked: no temp file, every `.gz` decompresses with a valid
/// CRC and length, every line is JSON, and every file ends with a newline, except a finished
/// segment that startup recovery sealed as it was after a crash tore its last line and that
/// a recovery record names (that fragment is not returned).
pub fn read_all(dir: &Path, stem: &str) -> Result<Vec<Line>, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("read_dir {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if let Some(t) = names.iter().find(|n| is_temp(stem, n)) {
        return Err(format!("temp file {t} remains"));
    }
    let active = format!("{stem}.log");
    let mut files: Vec<&String> = names.iter().filter(|n| is_segment(stem, n)).collect();
    if names.contains(&active) {
        files.push(&active);
    }
    let mut out = Vec::new();
    // (file, its sequence number, the torn fragment's bytes) of each file ending torn.
    let mut torn: Vec<(String, Option<u64>, usize)> = Vec::new();
    for name in files {
        let raw = std::fs::read(dir.join(name)).map_err(|e| format!("read {name}: {e}"))?;
        let mut text = if name.ends_with(".gz") {
            let mut v = Vec::new();
            // flate2 checks the trailer's CRC32 and length.
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut v)
                .map_err(|e| format!("{name} is not a valid gzip file: {e}"))?;
            v
        } else {
            raw
        };
        if !text.is_empty() && !text.ends_with(b"\n") {
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let seq = (name != &active)
                .then(|| name[stem.len() + 1..stem.len() + 11].parse().ok())
                .flatten();
            torn.push((name.clone(), seq, text.len() - keep));
            if seq.is_none() {
                let tail = &text[text.len().saturating_sub(80)..];
                return Err(format!(
                    "{name} ends with a torn line: ...{:?}",
                    String::from_utf8_lossy(tail)
                ));
            }
            text.truncate(keep);
        }
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let json = serde_json::from_slice(line).map_err(|e| {
                format!(
                    "{name}: torn or invalid line {:?}: {e}",
                    String::from_utf8_lossy(line)
                )
            })?;
            out.push(Line {
                file: name.clone(),
                json,
            });
        }
    }
    for (name, seq, bytes) in torn {
        let recorded = out.iter().any(|l| {
            let f = &l.json["fields"];
            f["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(SEALED_TORN))
                && f["segment"].as_u64() == seq
                && f["torn_bytes"].as_u64() == Some(bytes as u64)
        });
        if !recorded {
            return Err(format!(
                "{name} ends with a torn line of {bytes} bytes that no recovery record names"
            ));
        }
    }
    Ok(out)
}

/// A file listing for failure messages.
pub fn listing(dir: &Path) -> String {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let len = e.metadata().map_or(0, |m| m.len());
            format!("{} ({len})", e.file_name().to_string_lossy())
        })
        .collect();
    v.sort();
    v.join("\n  ")
}

/// Unmounts on drop, also when the test fails.
pub struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A fresh tmpfs of `size` (for example `"1m"`) at `<tempdir>/small`: a real disk that
/// fills. Needs root: tests using it are `#[ignore = "needs root ..."]`, and `.ci/run` runs
/// them as root with `--include-ignored`. Keep all three alive for the test's duration.
pub fn tmpfs(size: &str) -> (tempfile::TempDir, PathBuf, Mount) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("small");
    std::fs::create_dir(&dir).expect("mkdir");
    let out = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(&dir)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "mount -t tmpfs failed (this test needs root): {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let mount = Mount(dir.clone());
    (tmp, dir, mount)
}

/// Whether `status` is that of a process ended by `Child::kill`: SIGKILL on Unix;
/// `TerminateProcess` on Windows, which the standard library calls with exit code 1 (a
/// failing test binary exits with 101).
pub fn was_killed(status: &std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    return std::os::unix::process::ExitStatusExt::signal(status) == Some(9);
    #[cfg(windows)]
    return status.code() == Some(1);
}

/// Polls `cond` until it holds or `timeout` passes (the poll interval is not a
/// synchronization; the condition is).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
