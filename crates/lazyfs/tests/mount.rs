//! Mounting and unmounting: no mount outlives the process that made it, and a missing FUSE
//! helper is a clear error.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn mounted(mountpoint: &Path) -> bool {
    let want = mountpoint.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want))
}

fn dirs(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("lazyfs-{tag}-{}", std::process::id()));
    let (b, m) = (root.join("backing"), root.join("mnt"));
    fs::create_dir_all(&b).unwrap();
    fs::create_dir_all(&m).unwrap();
    (root, b, m)
}

/// Kills the child if a test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_mount_goes_away_when_its_process_is_sigkilled() {
    let (root, backing, mnt) = dirs("sigkill");
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_lazyfs"))
            .arg(&backing)
            .arg(&mnt)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "mounted");
    let mnt = mnt.canonicalize().unwrap();
    assert!(mounted(&mnt));
    fs::write(mnt.join("f"), b"through the mount").unwrap();
    assert!(backing.join("f").exists());

    child.0.kill().unwrap(); // SIGKILL: no destructor runs
    child.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while mounted(&mnt) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !mounted(&mnt),
        "{} is still mounted after SIGKILL",
        mnt.display()
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn unmount_and_drop_leave_no_mount() {
    let (root, backing, mnt) = dirs("drop");
    let m = lazyfs::Mount::new(&backing, &mnt).unwrap();
    let mnt = mnt.canonicalize().unwrap();
    assert!(mounted(&mnt));
    m.unmount().unwrap();
    assert!(!mounted(&mnt));
    let m = lazyfs::Mount::new(&backing, &mnt).unwrap();
    assert!(mounted(&mnt));
    drop(m);
    assert!(!mounted(&mnt));
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_missing_fusermount3_is_named_in_the_error() {
    let (root, backing, mnt) = dirs("nohelper");
    let out = Command::new(env!("CARGO_BIN_EXE_lazyfs"))
        .arg(&backing)
        .arg(&mnt)
        .env("PATH", &root)
        .env_remove("FUSERMOUNT_PATH")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FUSE is not available") && stderr.contains("fusermount3"),
        "{stderr}"
    );
    assert!(!mounted(&mnt.canonicalize().unwrap()));
    fs::remove_dir_all(root).unwrap();
}
