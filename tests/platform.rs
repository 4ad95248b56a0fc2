//! What each platform must give the sink, checked on every one of them (Linux, macOS, the
//! BSDs, Windows): a reader holding the active file open never blocks a rotation (Windows
//! share modes), renames never replace, and the state a `link` + `unlink` rename leaves when
//! a crash cuts it short (the BSDs' no-replace rename) is repaired at startup, and a segment
//! a reader holds open while it is compressed (a delete left pending on Windows) is kept.

mod common;

use std::io::Read;
use std::time::Duration;

use tracing_filesink::{Compression, FileSink};

const STEM: &str = "app";

fn log(sub: &tracing::Dispatch, tag: &str, n: u64) {
    tracing::dispatcher::with_default(sub, || {
        for i in 0..n {
            tracing::info!(tag, i, "event");
        }
    });
}

fn tagged(bytes: &[u8], what: &str, tag: &str) -> usize {
    common::lines(bytes, what)
        .iter()
        .filter(|l| common::json(l)["fields"]["tag"] == tag)
        .count()
}

/// A log shipper or an editor that opened the active file (with the standard library's
/// sharing, as shippers do) does not stop the sink from renaming it: on Windows that needs
/// `FILE_SHARE_DELETE` on every handle, the sink's own included. The reader then reads the
/// rotated file to its end, as shippers that keep renamed files open do.
#[test]
fn rotation_renames_a_file_a_reader_holds_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM).build().expect("build");
    let sub = common::dispatch(layer);
    log(&sub, "before", 50);
    guard.flush().expect("flush");
    let mut reader = std::fs::File::open(common::active(dir, STEM)).expect("reader opens");

    guard
        .rotate()
        .expect("rotate while a reader holds the file");
    log(&sub, "after", 30);
    guard.sync().expect("sync waits for the finished segment");

    let segs = common::segments(dir, STEM);
    assert_eq!(segs.len(), 1, "{:?}", common::file_names(dir));
    let seg = std::fs::read(dir.join(&segs[0].name)).expect("segment");
    assert_eq!(tagged(&seg, &segs[0].name, "before"), 50);
    assert_eq!(tagged(&seg, &segs[0].name, "after"), 0);
    let active = common::read_active(dir, STEM);
    assert_eq!(tagged(&active, "active", "after"), 30);
    assert_eq!(tagged(&active, "active", "before"), 0);
    let mut seen = Vec::new();
    reader.read_to_end(&mut seen).expect("the reader reads on");
    assert_eq!(seen, seg, "the reader followed the renamed file");
    assert_eq!(guard.stats().rotations, 1);
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

/// A reader (a shipper, `filesink follow`) holding finished segments open while the sink
/// compresses them loses nothing, and the sink reports no error. On Windows the removed plain
/// name can stay listed, a delete pending, while the reader holds the file, and opening or
/// removing it fails with "not found": the next pass must take it for gone, not for a second
/// copy whose `.gz` failed to verify (which would delete the `.gz`, the only copy left).
#[test]
fn segments_a_reader_holds_open_are_compressed_and_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    {
        let (layer, guard) = FileSink::builder(dir, STEM).build().expect("build");
        let sub = common::dispatch(layer);
        log(&sub, "one", 40);
        guard.rotate().expect("rotate");
        log(&sub, "two", 40);
        guard.rotate().expect("rotate");
        guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    }
    let plain = common::segments(dir, STEM);
    assert_eq!(plain.len(), 2, "{:?}", common::file_names(dir));
    let held: Vec<std::fs::File> = plain
        .iter()
        .map(|s| std::fs::File::open(dir.join(&s.name)).expect("reader opens"))
        .collect();

    let (_layer, guard) = FileSink::builder(dir, STEM)
        .compression(Compression::gzip())
        .build()
        .expect("build with gzip");
    let wait = Duration::from_secs(30);
    guard.wait_idle(wait).expect("both segments compressed");
    // Another pass while the reader still holds both plain files.
    guard.wait_idle(wait).expect("a second pass");
    assert_eq!(guard.stats().segments_compressed, 2);
    guard.flush().expect("no error kept for flush");
    drop(held);
    guard
        .wait_idle(wait)
        .expect("a pass after the reader closed");
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");

    let segs = common::segments(dir, STEM);
    assert_eq!(segs.len(), 2, "{:?}", common::file_names(dir));
    for (seg, tag) in segs.iter().zip(["one", "two"]) {
        assert!(seg.gz, "{} is compressed", seg.name);
        let bytes = common::read_maybe_gz(&dir.join(&seg.name));
        assert_eq!(tagged(&bytes, &seg.name, tag), 40, "{}", seg.name);
    }
}

/// A crash between the `link` and the `unlink` of a no-replace rename leaves a finished
/// segment under both its pending and its final name. The next start removes the pending
/// name, keeps the segment whole and reports the repair.
#[test]
fn a_pending_name_left_beside_its_final_name_is_released() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM).build().expect("build");
    let sub = common::dispatch(layer);
    log(&sub, "first", 20);
    guard.rotate().expect("rotate");
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    drop(sub);

    let segs = common::segments(dir, STEM);
    assert_eq!(segs.len(), 1, "{:?}", common::file_names(dir));
    let fin = dir.join(&segs[0].name);
    let data = std::fs::read(&fin).expect("segment");
    let pending = dir.join(format!("{}.pending", segs[0].name));
    std::fs::hard_link(&fin, &pending).expect("the second name a cut-short rename leaves");

    let (_layer, guard) = FileSink::builder(dir, STEM).build().expect("restart");
    assert!(
        !pending.exists(),
        "the pending name survived: {:?}",
        common::file_names(dir)
    );
    assert_eq!(std::fs::read(&fin).expect("segment"), data);
    assert_eq!(common::segments(dir, STEM).len(), 1);
    assert_eq!(guard.stats().recovery_actions, 1, "{:?}", guard.stats());
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

/// Renames never replace: a file planted at the next segment name survives a rotation, which
/// takes the next free name instead.
#[test]
fn rotation_never_replaces_a_file_at_the_next_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM).build().expect("build");
    let sub = common::dispatch(layer);
    log(&sub, "one", 10);
    guard.rotate().expect("rotate");
    guard.sync().expect("sync");
    let first = common::segments(dir, STEM);
    assert_eq!(first.len(), 1);
    // The name the next rotation would take, sequence + 1, same label format.
    let next = first[0].name.replacen(
        &format!(".{:010}.", first[0].seq),
        &format!(".{:010}.", first[0].seq + 1),
        1,
    );
    std::fs::write(dir.join(&next), b"not the sink's\n").expect("plant");
    log(&sub, "two", 10);
    guard.rotate().expect("rotate again");
    guard.sync().expect("sync");
    assert_eq!(
        std::fs::read(dir.join(&next)).expect("planted file"),
        b"not the sink's\n",
        "a rename replaced a file"
    );
    let all = common::segments(dir, STEM);
    let two: usize = all
        .iter()
        .filter(|s| s.name != next)
        .map(|s| tagged(&std::fs::read(dir.join(&s.name)).unwrap(), &s.name, "two"))
        .sum();
    assert_eq!(two, 10, "{:?}", common::file_names(dir));
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}

/// A log directory whose path is longer than 260 characters (`MAX_PATH` on Windows): rotation
/// renames, compression and retention by free space work there as anywhere (on Windows the
/// sink's own Win32 calls take `\\?\` paths, as the standard library's do).
#[test]
fn rotation_under_a_directory_path_over_260_characters() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dir = tmp.path().to_path_buf();
    while dir.as_os_str().len() <= 300 {
        dir.push("a-long-directory-name-for-the-logs-of-a-service-deep-in-a-tree");
    }
    let (layer, guard) = FileSink::builder(&dir, STEM)
        .compression(Compression::gzip())
        .retention(tracing_filesink::Retention::files(10).min_free_bytes(1))
        .build()
        .expect("build under a long path");
    let sub = common::dispatch(layer);
    for round in 0..3 {
        log(&sub, &format!("round{round}"), 20);
        guard.rotate().expect("rotate under a long path");
    }
    log(&sub, "last", 5);
    guard
        .wait_idle(Duration::from_secs(10))
        .expect("compression and retention under a long path");
    let stats = guard.stats();
    assert_eq!(stats.rotations, 3, "{stats:?}");
    assert_eq!(stats.segments_compressed, 3, "{stats:?}");
    assert_eq!(stats.write_errors, 0, "{stats:?}");
    assert_eq!(stats.last_error, None, "{stats:?}");
    let segs = common::segments(&dir, STEM);
    assert_eq!(segs.len(), 3, "{:?}", common::file_names(&dir));
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
    assert_eq!(
        tagged(&common::read_active(&dir, STEM), "active", "last"),
        5
    );
}

/// Windows only (share modes exist only there): a reader that opens the active file without
/// `FILE_SHARE_DELETE` makes the rotation's rename fail with a sharing violation. That costs
/// the rotation, never an event: the error is counted and reported by the next `flush()`,
/// writing goes on in the same file, and once the reader lets go the next rotation succeeds.
#[cfg(windows)]
#[test]
fn a_reader_refusing_delete_sharing_delays_rotation_and_loses_nothing() {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_SHARE_READ_WRITE: u32 = 1 | 2;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (layer, guard) = FileSink::builder(dir, STEM).build().expect("build");
    let sub = common::dispatch(layer);
    log(&sub, "before", 20);
    guard.flush().expect("flush");
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ_WRITE)
        .open(common::active(dir, STEM))
        .expect("a reader without delete sharing");

    let refused = guard.rotate();
    assert!(refused.is_err(), "the rename cannot succeed: {refused:?}");
    assert_eq!(guard.stats().rotations, 0);
    assert!(guard.stats().write_errors >= 1, "{:?}", guard.stats());
    log(&sub, "during", 20);
    // The next flush reports the failed rename once, like any error of the writer thread.
    if let Err(e) = guard.flush() {
        assert!(e.to_string().contains("rename"), "{e}");
    }
    guard.flush().expect("writing goes on");
    let active = common::read_active(dir, STEM);
    assert_eq!(tagged(&active, "active", "before"), 20);
    assert_eq!(tagged(&active, "active", "during"), 20);
    assert!(common::segments(dir, STEM).is_empty());

    drop(reader);
    guard.rotate().expect("rotation once the reader let go");
    guard.sync().expect("sync");
    let segs = common::segments(dir, STEM);
    assert_eq!(segs.len(), 1, "{:?}", common::file_names(dir));
    let seg = std::fs::read(dir.join(&segs[0].name)).expect("segment");
    assert_eq!(tagged(&seg, &segs[0].name, "before"), 20);
    assert_eq!(tagged(&seg, &segs[0].name, "during"), 20);
    guard.shutdown(Duration::from_secs(5)).expect("shutdown");
}
