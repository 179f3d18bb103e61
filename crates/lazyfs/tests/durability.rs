//! The filesystem alone, mounted for real: what survives a power cut and what does not.
//! Each case would fail if tracking were wrong in the direction it names (data kept that was
//! never synced, or data lost that was).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lazyfs::{DiskFault, FaultErrno, FaultedOps, Mount};

/// A backing directory, a mount point and the mount; everything is removed on drop.
struct Fixture {
    root: PathBuf,
    mount: Option<Mount>,
}

impl Fixture {
    fn new() -> Fixture {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let root = std::env::temp_dir().join(format!(
            "lazyfs-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(root.join("backing")).unwrap();
        fs::create_dir_all(root.join("mnt")).unwrap();
        let mount = Mount::new(&root.join("backing"), &root.join("mnt")).unwrap();
        Fixture {
            root,
            mount: Some(mount),
        }
    }

    fn mount(&self) -> &Mount {
        self.mount.as_ref().unwrap()
    }

    /// A path inside the mount.
    fn p(&self, rel: &str) -> PathBuf {
        self.root.join("mnt").join(rel)
    }

    /// What the backing directory holds: what a restarted machine would find.
    fn backing(&self, rel: &str) -> PathBuf {
        self.root.join("backing").join(rel)
    }

    fn cut(&self) -> lazyfs::CutReport {
        self.mount().power_cut().unwrap()
    }

    /// Creates `rel` with `content`, fsyncs it and its directory: durable from the start.
    fn durable_file(&self, rel: &str, content: &[u8]) {
        let mut f = File::create(self.p(rel)).unwrap();
        f.write_all(content).unwrap();
        f.sync_all().unwrap();
        sync_dir(self.p(rel).parent().unwrap());
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(m) = self.mount.take() {
            m.unmount().unwrap();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

fn read(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    File::open(path).unwrap().read_to_end(&mut v).unwrap();
    v
}

#[test]
fn a_write_without_fsync_is_lost_and_with_fsync_survives() {
    let fx = Fixture::new();
    fx.durable_file("a", b"");
    fx.durable_file("b", b"");
    let mut a = OpenOptions::new().write(true).open(fx.p("a")).unwrap();
    a.write_all(b"never synced").unwrap();
    let mut b = OpenOptions::new().write(true).open(fx.p("b")).unwrap();
    b.write_all(b"synced").unwrap();
    b.sync_all().unwrap();
    drop((a, b));
    // Before the cut, everything written is visible, as in a page cache.
    assert_eq!(read(&fx.p("a")), b"never synced");
    let report = fx.cut();
    assert_eq!(read(&fx.p("a")), b"");
    assert_eq!(read(&fx.backing("a")), b"");
    assert_eq!(read(&fx.p("b")), b"synced");
    assert_eq!(report.bytes_truncated, 12);
}

#[test]
fn fdatasync_makes_data_durable_too() {
    let fx = Fixture::new();
    fx.durable_file("log", b"head;");
    let mut f = OpenOptions::new().append(true).open(fx.p("log")).unwrap();
    f.write_all(b"one;").unwrap();
    f.sync_data().unwrap();
    f.write_all(b"two;").unwrap();
    drop(f);
    fx.cut();
    assert_eq!(read(&fx.p("log")), b"head;one;");
}

#[test]
fn an_unsynced_overwrite_and_truncate_are_undone() {
    let fx = Fixture::new();
    fx.durable_file("f", b"0123456789");
    let f = OpenOptions::new().write(true).open(fx.p("f")).unwrap();
    f.write_all_at(b"ab", 2).unwrap();
    f.write_all_at(b"XYZ", 1).unwrap();
    f.set_len(4).unwrap();
    f.write_all_at(b"tail", 8).unwrap();
    drop(f);
    assert_eq!(read(&fx.p("f")), b"0XYZ\0\0\0\0tail");
    let report = fx.cut();
    assert_eq!(read(&fx.p("f")), b"0123456789");
    assert_eq!(
        report.overwrites_undone, 3,
        "the write past the truncation point destroyed nothing durable"
    );
}

#[test]
fn truncating_open_is_undone() {
    let fx = Fixture::new();
    fx.durable_file("f", b"durable");
    let mut f = File::create(fx.p("f")).unwrap();
    f.write_all(b"new").unwrap();
    drop(f);
    fx.cut();
    assert_eq!(read(&fx.p("f")), b"durable");
}

#[test]
fn o_sync_and_o_dsync_writes_are_durable_when_they_return() {
    let fx = Fixture::new();
    fx.durable_file("s", b"");
    fx.durable_file("d", b"");
    for (name, flag) in [("s", libc::O_SYNC), ("d", libc::O_DSYNC)] {
        let mut f = OpenOptions::new()
            .write(true)
            .custom_flags(flag)
            .open(fx.p(name))
            .unwrap();
        f.write_all(b"at once").unwrap();
    }
    let mut plain = OpenOptions::new().append(true).open(fx.p("s")).unwrap();
    plain.write_all(b", later").unwrap();
    drop(plain);
    fx.cut();
    assert_eq!(read(&fx.p("s")), b"at once");
    assert_eq!(read(&fx.p("d")), b"at once");
}

#[test]
fn a_create_needs_a_directory_fsync_even_when_the_file_was_fsynced() {
    let fx = Fixture::new();
    let mut f = File::create(fx.p("new")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::create_dir(fx.p("dir")).unwrap();
    fx.cut();
    assert!(!fx.p("new").exists());
    assert!(!fx.backing("new").exists());
    assert!(!fx.p("dir").exists());

    let mut f = File::create(fx.p("new")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_all().unwrap();
    drop(f);
    sync_dir(&fx.p(""));
    fx.cut();
    assert_eq!(read(&fx.p("new")), b"data");
}

#[test]
fn a_rename_without_a_directory_fsync_is_undone() {
    let fx = Fixture::new();
    fx.durable_file("config", b"old");
    // The atomic-replace idiom, minus the final directory fsync.
    let mut tmp = File::create(fx.p("config.tmp")).unwrap();
    tmp.write_all(b"new").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    fs::rename(fx.p("config.tmp"), fx.p("config")).unwrap();
    assert_eq!(read(&fx.p("config")), b"new");
    fx.cut();
    assert_eq!(read(&fx.p("config")), b"old");
    assert!(!fx.p("config.tmp").exists());

    // With the directory fsync it holds.
    let mut tmp = File::create(fx.p("config.tmp")).unwrap();
    tmp.write_all(b"new").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    fs::rename(fx.p("config.tmp"), fx.p("config")).unwrap();
    sync_dir(&fx.p(""));
    fx.cut();
    assert_eq!(read(&fx.p("config")), b"new");
    assert!(!fx.p("config.tmp").exists());
}

#[test]
fn a_rename_across_directories_is_undone_with_its_children() {
    let fx = Fixture::new();
    fs::create_dir(fx.p("a")).unwrap();
    fs::create_dir(fx.p("b")).unwrap();
    sync_dir(&fx.p(""));
    fx.durable_file("a/x", b"x");
    fs::rename(fx.p("a/x"), fx.p("b/y")).unwrap();
    fs::rename(fx.p("b"), fx.p("c")).unwrap();
    fx.cut();
    assert_eq!(read(&fx.p("a/x")), b"x");
    assert!(fx.p("b").is_dir());
    assert!(!fx.p("c").exists());
}

#[test]
fn an_unlink_without_a_directory_fsync_is_undone() {
    let fx = Fixture::new();
    fx.durable_file("gone", b"still here");
    fs::remove_file(fx.p("gone")).unwrap();
    assert!(!fx.p("gone").exists());
    fx.cut();
    assert_eq!(read(&fx.p("gone")), b"still here");

    fs::remove_file(fx.p("gone")).unwrap();
    sync_dir(&fx.p(""));
    fx.cut();
    assert!(!fx.p("gone").exists());
    // The trash is emptied once an unlink is durable.
    assert_eq!(
        fs::read_dir(fx.backing(".lazyfs-trash")).unwrap().count(),
        0
    );
}

#[test]
fn an_unlinked_file_comes_back_with_its_durable_content_only() {
    let fx = Fixture::new();
    fx.durable_file("f", b"durable");
    let mut f = OpenOptions::new().append(true).open(fx.p("f")).unwrap();
    f.write_all(b"+unsynced").unwrap();
    drop(f);
    fs::remove_file(fx.p("f")).unwrap();
    fx.cut();
    assert_eq!(read(&fx.p("f")), b"durable");
}

#[test]
fn a_directory_fsync_commits_namespace_changes_in_order() {
    let fx = Fixture::new();
    fs::create_dir(fx.p("d")).unwrap();
    sync_dir(&fx.p(""));
    File::create(fx.p("first")).unwrap();
    File::create(fx.p("d/second")).unwrap();
    File::create(fx.p("third")).unwrap();
    // Syncing d commits everything up to its last change, not the later create in the root.
    sync_dir(&fx.p("d"));
    fx.cut();
    assert!(fx.p("first").exists());
    assert!(fx.p("d/second").exists());
    assert!(!fx.p("third").exists());
}

#[test]
fn disk_faults_fail_writes_or_fsyncs_and_a_failed_fsync_makes_nothing_durable() {
    let fx = Fixture::new();
    fx.durable_file("f", b"");
    let mut f = OpenOptions::new().write(true).open(fx.p("f")).unwrap();
    fx.mount().set_fault(DiskFault {
        ops: FaultedOps::Writes,
        errno: FaultErrno::Enospc,
    });
    let e = f.write_all(b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    fx.mount().set_fault(DiskFault {
        ops: FaultedOps::Fsyncs,
        errno: FaultErrno::Eio,
    });
    f.write_all(b"written").unwrap();
    let e = f.sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    fx.mount().clear_fault();
    drop(f);
    assert_eq!(fx.mount().faulted_ops(), 2);
    fx.cut();
    assert_eq!(read(&fx.p("f")), b"");
}

#[test]
fn a_bit_flip_changes_exactly_one_bit_of_one_file() {
    use rand::SeedableRng;
    let fx = Fixture::new();
    fx.durable_file("a", &[0u8; 64]);
    fs::create_dir(fx.p("sub")).unwrap();
    sync_dir(&fx.p(""));
    fx.durable_file("sub/b", &[0u8; 64]);
    File::create(fx.p("empty")).unwrap();
    let dir = fx.root.join("backing");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let flip = lazyfs::flip_random_bit(&dir, &mut rng).unwrap().unwrap();
    let again = lazyfs::flip_random_bit(&dir, &mut rand::rngs::StdRng::seed_from_u64(7))
        .unwrap()
        .unwrap();
    assert_eq!(flip, again, "the same seed picks the same bit");
    // The same bit twice: back to all zeros.
    for name in ["a", "sub/b"] {
        assert!(read(&fx.p(name)).iter().all(|&b| b == 0), "{name}");
    }
    assert!(flip.file == Path::new("a") || flip.file == Path::new("sub/b"));
    assert!(flip.offset < 64 && flip.bit < 8);
    // One flip alone shows up as exactly one set bit.
    lazyfs::flip_random_bit(&dir, &mut rand::rngs::StdRng::seed_from_u64(7)).unwrap();
    let set: u32 = ["a", "sub/b"]
        .iter()
        .map(|n| read(&fx.p(n)).iter().map(|b| b.count_ones()).sum::<u32>())
        .sum();
    assert_eq!(set, 1);
    assert_eq!(
        read(&fx.p(flip.file.to_str().unwrap()))[flip.offset as usize],
        1 << flip.bit
    );
}

#[test]
fn a_symlink_is_undone_without_touching_its_target() {
    let fx = Fixture::new();
    let outside = fx.root.join("outside");
    fs::write(&outside, b"not ours").unwrap();
    std::os::unix::fs::symlink(&outside, fx.p("link")).unwrap();
    fx.cut();
    assert!(fs::symlink_metadata(fx.p("link")).is_err());
    assert_eq!(read(&outside), b"not ours");
}
