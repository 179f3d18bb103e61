//! `lazyfs`: a FUSE passthrough filesystem that keeps track of everything written to it and not
//! yet made durable, so that a simulated power cut can throw exactly that away.
//!
//! SIGKILL cannot find a store that acknowledges writes before fsyncing them: the kernel's page
//! cache outlives the process. Mounting a node's data directory through [`Mount`] and calling
//! [`Mount::power_cut`] after killing the node leaves the backing directory as a real power
//! failure would (under the strict model described in `tracker`): unsynced bytes gone,
//! unsynced creates, renames and unlinks undone. [`Mount::set_fault`] makes writes or fsyncs
//! fail with EIO or ENOSPC; [`flip_random_bit`] corrupts a durable file of a stopped node.
//!
//! The mount uses fuser's pure-Rust path through the `fusermount3` helper with `auto_unmount`,
//! so the mount disappears when the process that made it dies, however it dies.

mod bitflip;
mod error;
mod fs;
mod inodes;
mod tracker;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use bitflip::{flip_random_bit, BitFlip};
pub use error::Error;
pub use tracker::CutReport;

/// Which operations a disk fault makes fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultedOps {
    /// write, truncate, create, mkdir, fallocate.
    Writes,
    /// fsync, fdatasync and directory fsync.
    Fsyncs,
    WritesAndFsyncs,
}

/// The error a faulted operation returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultErrno {
    Eio,
    Enospc,
}

impl FaultErrno {
    pub fn raw(self) -> i32 {
        match self {
            FaultErrno::Eio => libc::EIO,
            FaultErrno::Enospc => libc::ENOSPC,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskFault {
    pub ops: FaultedOps,
    pub errno: FaultErrno,
}

/// Checks what mounting needs, so a caller can refuse early with a clear message.
pub fn check_available() -> Result<(), Error> {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(Error::FuseUnavailable(format!(
            "cannot open /dev/fuse: {e} (in a container, pass the device, e.g. --device /dev/fuse)"
        )));
    }
    let helper = std::env::var_os("FUSERMOUNT_PATH")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("fusermount3"))
                    .find(|p| p.is_file())
            })
        });
    if helper.is_none() {
        return Err(Error::FuseUnavailable(
            "fusermount3 is not on PATH (Debian: apt-get install fuse3)".into(),
        ));
    }
    Ok(())
}

/// A mounted lazy filesystem. Dropping it unmounts.
pub struct Mount {
    state: Arc<Mutex<fs::State>>,
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
    backing: PathBuf,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount")
            .field("mountpoint", &self.mountpoint)
            .field("backing", &self.backing)
            .finish()
    }
}

impl Mount {
    /// Mounts `backing` (an existing directory, taken as fully durable) at `mountpoint` (an
    /// existing empty directory). Returns once the kernel has the mount.
    pub fn new(backing: &Path, mountpoint: &Path) -> Result<Mount, Error> {
        check_available()?;
        let backing = backing
            .canonicalize()
            .map_err(|e| Error::io("backing directory", backing, e))?;
        let trash = backing.join(tracker::TRASH_DIR);
        // Trash left by an earlier mount held removals never made durable; what the backing
        // directory shows now is taken as durable, so they are gone for good.
        if trash.exists() {
            std::fs::remove_dir_all(&trash).map_err(|e| Error::io("clearing", &trash, e))?;
        }
        std::fs::create_dir(&trash).map_err(|e| Error::io("creating", &trash, e))?;
        let state = Arc::new(Mutex::new(fs::State::new(&backing)));
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("lazyfs".into()),
            fuser::MountOption::Subtype("lazyfs".into()),
            // fusermount3 stays behind and unmounts when our end of its socket closes, which
            // is when this process dies, even by SIGKILL.
            fuser::MountOption::AutoUnmount,
        ];
        // fusermount3 refuses auto_unmount without allow_root or allow_other.
        config.acl = fuser::SessionACL::RootAndOwner;
        let filesystem = fs::LazyFs {
            state: Arc::clone(&state),
        };
        let session =
            fuser::spawn_mount(filesystem, mountpoint, &config).map_err(|source| Error::Mount {
                mountpoint: mountpoint.to_path_buf(),
                backing: backing.clone(),
                source,
            })?;
        Ok(Mount {
            state,
            session: Some(session),
            mountpoint: mountpoint.to_path_buf(),
            backing,
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn backing(&self) -> &Path {
        &self.backing
    }

    fn state(&self) -> std::sync::MutexGuard<'_, fs::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops every unsynced byte and namespace change. Every process using the mount must be
    /// dead first (a power cut takes them all): their open files are forgotten.
    pub fn power_cut(&self) -> Result<CutReport, Error> {
        let mut st = self.state();
        let st = &mut *st;
        let inodes = &st.inodes;
        let report = st
            .tracker
            .power_cut(|ino| inodes.path(ino).map(Path::to_path_buf))
            .map_err(|e| Error::io("rolling back", &self.backing, e))?;
        st.forget_all();
        Ok(report)
    }

    /// From now on the operations `fault` names fail, until [`Mount::clear_fault`].
    pub fn set_fault(&self, fault: DiskFault) {
        self.state().fault = Some(fault);
    }

    pub fn clear_fault(&self) {
        self.state().fault = None;
    }

    /// How many operations a disk fault has failed since the mount.
    pub fn faulted_ops(&self) -> u64 {
        self.state().faulted
    }

    /// Unmounts and waits for the session to end.
    pub fn unmount(mut self) -> Result<(), Error> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), Error> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let err = |source| Error::Unmount {
            mountpoint: self.mountpoint.clone(),
            source,
        };
        // fusermount3's auto_unmount only unmounts a filesystem whose server is gone, so
        // while this process serves it, the unmount is ours to do. Detached, so that it
        // cannot fail on a straggler still holding a file open.
        detach(&self.mountpoint).map_err(err)?;
        session.umount_and_join().map_err(err)?;
        // Empty unless unlinks were never made durable; then it is what a cut would restore.
        let _ = std::fs::remove_dir(self.backing.join(tracker::TRASH_DIR));
        Ok(())
    }
}

fn detach(mountpoint: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(mountpoint.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: umount2 reads a NUL-terminated path we own.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EPERM) {
        return Err(e);
    }
    // Not root: the setuid helper may unmount what the user mounted.
    let status = std::process::Command::new("fusermount3")
        .args(["-u", "-z", "--"])
        .arg(mountpoint)
        .status()?;
    match status.success() {
        true => Ok(()),
        false => Err(std::io::Error::other(format!(
            "fusermount3 -u -z: {status}"
        ))),
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_inner() {
            log::warn!("{e}");
        }
    }
}
