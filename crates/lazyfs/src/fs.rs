//! The FUSE side: a passthrough to the backing directory that reports every change to the
//! [`Tracker`] before making it, and fails writes or fsyncs while a disk fault is set.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::inodes::{Inodes, ROOT};
use crate::tracker::{Tracker, TRASH_DIR};
use crate::{DiskFault, FaultedOps};

/// The kernel must ask again every time: after a power cut the backing files change under it.
const TTL: Duration = Duration::ZERO;

#[derive(Debug)]
struct Handle {
    ino: u64,
    file: File,
    /// Opened with O_SYNC or O_DSYNC: every write is durable when it returns.
    sync: bool,
}

/// Everything the filesystem and its controlling handle share.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) tracker: Tracker,
    pub(crate) inodes: Inodes,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    pub(crate) fault: Option<DiskFault>,
    pub(crate) faulted: u64,
}

impl State {
    pub(crate) fn new(root: &Path) -> State {
        State {
            tracker: Tracker::new(root),
            inodes: Inodes::new(),
            handles: HashMap::new(),
            next_fh: 1,
            fault: None,
            faulted: 0,
        }
    }

    /// After a power cut no process holds a file open (they were killed first).
    pub(crate) fn forget_all(&mut self) {
        self.handles.clear();
        self.inodes.reset();
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.inodes
            .path(ino.0)
            .map(Path::to_path_buf)
            .ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        if parent.0 == ROOT && name == TRASH_DIR {
            return Err(Errno::EACCES);
        }
        Ok(self.path(parent)?.join(name))
    }

    fn entry(&mut self, rel: &Path) -> Result<FileAttr, Errno> {
        let meta = fs::symlink_metadata(self.tracker.abs(rel)).map_err(errno)?;
        let ino = self.inodes.ino_for(rel);
        Ok(attr(ino, &meta))
    }

    fn fail(&mut self, op: FaultedOps) -> Result<(), Errno> {
        match self.fault {
            Some(fault) if fault.ops == op || fault.ops == FaultedOps::WritesAndFsyncs => {
                self.faulted += 1;
                Err(Errno::from_i32(fault.errno.raw()))
            }
            _ => Ok(()),
        }
    }

    fn add_handle(&mut self, ino: u64, file: File, sync: bool) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, file, sync });
        fh
    }

    fn handle(&self, fh: FileHandle) -> Result<&Handle, Errno> {
        self.handles.get(&fh.0).ok_or(Errno::EBADF)
    }

    /// Move `rel` into the trash, where a power cut can find it again.
    fn trash(&mut self, rel: &Path) -> Result<PathBuf, Errno> {
        let trash = self.tracker.trash_name();
        fs::rename(self.tracker.abs(rel), self.tracker.abs(&trash)).map_err(errno)?;
        self.inodes.moved(rel, &trash);
        Ok(trash)
    }

    fn write(&mut self, fh: FileHandle, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        self.fail(FaultedOps::Writes)?;
        let Handle { ino, file, sync } = self.handles.get(&fh.0).ok_or(Errno::EBADF)?;
        self.tracker
            .before_write(*ino, file, offset, data.len() as u64)
            .map_err(errno)?;
        file.write_all_at(data, offset).map_err(errno)?;
        if *sync {
            self.tracker.file_synced(*ino, file).map_err(errno)?;
        }
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    fn truncate(&mut self, ino: u64, fh: Option<FileHandle>, size: u64) -> Result<(), Errno> {
        self.fail(FaultedOps::Writes)?;
        let opened;
        let file = match fh.and_then(|fh| self.handles.get(&fh.0)) {
            Some(h) => &h.file,
            None => {
                let rel = self.path(INodeNo(ino))?;
                opened = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(self.tracker.abs(&rel))
                    .map_err(errno)?;
                &opened
            }
        };
        self.tracker
            .before_truncate(ino, file, size)
            .map_err(errno)?;
        file.set_len(size).map_err(errno)
    }

    fn rename(&mut self, from: &Path, to: &Path, flags: RenameFlags) -> Result<(), Errno> {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return Err(Errno::EINVAL);
        }
        if from == to {
            return Ok(());
        }
        let from_meta = fs::symlink_metadata(self.tracker.abs(from)).map_err(errno)?;
        let replaced = match fs::symlink_metadata(self.tracker.abs(to)) {
            Ok(to_meta) => {
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    return Err(Errno::EEXIST);
                }
                match (from_meta.is_dir(), to_meta.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !dir_is_empty(&self.tracker.abs(to)).map_err(errno)? => {
                        return Err(Errno::ENOTEMPTY)
                    }
                    _ => {}
                }
                Some(self.trash(to)?)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(errno(e)),
        };
        if let Err(e) = fs::rename(self.tracker.abs(from), self.tracker.abs(to)) {
            if let Some(trash) = &replaced {
                // Put the replaced entry back; the rename never happened.
                let _ = fs::rename(self.tracker.abs(trash), self.tracker.abs(to));
                self.inodes.moved(trash, to);
            }
            return Err(errno(e));
        }
        self.inodes.moved(from, to);
        self.tracker.renamed(from, to, replaced.as_deref());
        Ok(())
    }
}

fn dir_is_empty(dir: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(dir)?.next().is_none())
}

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    let nanos = u32::try_from(nsecs).unwrap_or(0);
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nanos),
        Err(_) => UNIX_EPOCH,
    }
}

fn kind(meta: &fs::Metadata) -> FileType {
    FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile)
}

fn attr(ino: u64, meta: &fs::Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: meta.size(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: time(meta.ctime(), meta.ctime_nsec()),
        kind: kind(meta),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: u32::try_from(meta.rdev()).unwrap_or(0),
        blksize: u32::try_from(meta.blksize()).unwrap_or(4096),
        flags: 0,
    }
}

/// The open flags the backing file gets: the sync flags are ours to emulate (the backing
/// store's own durability is not what is being tested), the creation flags were handled.
fn backing_open(flags: i32) -> (OpenOptions, bool) {
    let acc = flags & libc::O_ACCMODE;
    let mut opts = OpenOptions::new();
    // Writable handles are opened for reading too: undo records read what a write replaces.
    opts.read(true);
    opts.write(acc == libc::O_WRONLY || acc == libc::O_RDWR);
    let sync = flags & (libc::O_SYNC | libc::O_DSYNC) != 0;
    let strip = libc::O_ACCMODE
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_TRUNC
        | libc::O_APPEND
        | libc::O_SYNC
        | libc::O_DSYNC
        | libc::O_NOCTTY;
    opts.custom_flags(flags & !strip);
    (opts, sync)
}

/// The filesystem the FUSE session drives.
pub(crate) struct LazyFs {
    pub(crate) state: Arc<Mutex<State>>,
}

impl LazyFs {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock left State as it was at some call boundary; going on
        // is better than wedging every process that uses the mount.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut st = self.state();
        match st.child(parent, name).and_then(|rel| st.entry(&rel)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let st = self.state();
        let result = st.path(ino).and_then(|rel| {
            fs::symlink_metadata(st.tracker.abs(&rel))
                .map(|m| attr(ino.0, &m))
                .map_err(errno)
        });
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut st = self.state();
        let result = (|| {
            let rel = st.path(ino)?;
            let abs = st.tracker.abs(&rel);
            if let Some(mode) = mode {
                fs::set_permissions(&abs, fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(errno)?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&abs, uid, gid).map_err(errno)?;
            }
            if let Some(size) = size {
                st.truncate(ino.0, fh, size)?;
            }
            let meta = fs::symlink_metadata(&abs).map_err(errno)?;
            Ok(attr(ino.0, &meta))
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let st = self.state();
        let result = st
            .path(ino)
            .and_then(|rel| fs::read_link(st.tracker.abs(&rel)).map_err(errno));
        match result {
            Ok(target) => reply.data(target.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut st = self.state();
        let result = (|| {
            st.fail(FaultedOps::Writes)?;
            let rel = st.child(parent, name)?;
            let abs = st.tracker.abs(&rel);
            fs::create_dir(&abs).map_err(errno)?;
            fs::set_permissions(&abs, fs::Permissions::from_mode(mode & !umask & 0o7777))
                .map_err(errno)?;
            let attr = st.entry(&rel)?;
            st.tracker.created(attr.ino.0, &rel);
            Ok(attr)
        })();
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut st = self.state();
        let result = (|| {
            let rel = st.child(parent, name)?;
            let meta = fs::symlink_metadata(st.tracker.abs(&rel)).map_err(errno)?;
            if meta.is_dir() {
                return Err(Errno::EISDIR);
            }
            let trash = st.trash(&rel)?;
            st.tracker.removed(&rel, &trash);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut st = self.state();
        let result = (|| {
            let rel = st.child(parent, name)?;
            let abs = st.tracker.abs(&rel);
            let meta = fs::symlink_metadata(&abs).map_err(errno)?;
            if !meta.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if !dir_is_empty(&abs).map_err(errno)? {
                return Err(Errno::ENOTEMPTY);
            }
            let trash = st.trash(&rel)?;
            st.tracker.removed(&rel, &trash);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let mut st = self.state();
        let result = (|| {
            let rel = st.child(parent, link_name)?;
            std::os::unix::fs::symlink(target, st.tracker.abs(&rel)).map_err(errno)?;
            let attr = st.entry(&rel)?;
            st.tracker.created(attr.ino.0, &rel);
            Ok(attr)
        })();
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut st = self.state();
        let result = (|| {
            let from = st.child(parent, name)?;
            let to = st.child(newparent, newname)?;
            st.rename(&from, &to, flags)
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.state();
        let result = (|| {
            let rel = st.path(ino)?;
            let (opts, sync) = backing_open(flags.0);
            let file = opts.open(st.tracker.abs(&rel)).map_err(errno)?;
            if flags.0 & libc::O_TRUNC != 0 && flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
                st.fail(FaultedOps::Writes)?;
                st.tracker.before_truncate(ino.0, &file, 0).map_err(errno)?;
                file.set_len(0).map_err(errno)?;
            }
            Ok(st.add_handle(ino.0, file, sync))
        })();
        match result {
            // No FOPEN_KEEP_CACHE: each open drops the kernel's cached pages, which may
            // predate a power cut.
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let st = self.state();
        let result = st.handle(fh).and_then(|h| {
            let mut buf = vec![0u8; size as usize];
            let mut filled = 0;
            while filled < buf.len() {
                match h.file.read_at(&mut buf[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(errno(e)),
                }
            }
            buf.truncate(filled);
            Ok(buf)
        });
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.state().write(fh, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.state();
        let result = st.fail(FaultedOps::Fsyncs).and_then(|()| {
            let h = st.handle(fh)?;
            let (ino, file) = (h.ino, h.file.try_clone().map_err(errno)?);
            st.tracker.file_synced(ino, &file).map_err(errno)
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let st = self.state();
        match st.path(ino) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut st = self.state();
        let result = (|| {
            let rel = st.path(ino)?;
            let mut names: Vec<(std::ffi::OsString, FileType)> = Vec::new();
            for entry in fs::read_dir(st.tracker.abs(&rel)).map_err(errno)? {
                let entry = entry.map_err(errno)?;
                if ino.0 == ROOT && entry.file_name() == TRASH_DIR {
                    continue;
                }
                let ft = entry.file_type().map_err(errno)?;
                names.push((
                    entry.file_name(),
                    FileType::from_std(ft).unwrap_or(FileType::RegularFile),
                ));
            }
            // Offsets index this listing, so it must come out in the same order every call.
            names.sort_by(|a, b| a.0.cmp(&b.0));
            let mut all = vec![
                (ino.0, FileType::Directory, std::ffi::OsString::from(".")),
                (ino.0, FileType::Directory, std::ffi::OsString::from("..")),
            ];
            for (name, ft) in names {
                let child = st.inodes.ino_for(&rel.join(&name));
                all.push((child, ft, name));
            }
            Ok(all)
        })();
        match result {
            Ok(all) => {
                for (i, (child, ft, name)) in all.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(child), i as u64 + 1, ft, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.state();
        let result = st.fail(FaultedOps::Fsyncs).and_then(|()| {
            let rel = st.path(ino)?;
            st.tracker.dir_synced(&rel).map_err(errno)
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let st = self.state();
        let root = st.tracker.abs(Path::new(""));
        let Ok(dir) = File::open(&root) else {
            reply.error(Errno::EIO);
            return;
        };
        // SAFETY: fstatvfs writes one statvfs into the zeroed struct we own.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatvfs(dir.as_raw_fd(), &mut s) } != 0 {
            reply.error(errno(io::Error::last_os_error()));
            return;
        }
        reply.statfs(
            s.f_blocks,
            s.f_bfree,
            s.f_bavail,
            s.f_files,
            s.f_ffree,
            s.f_bsize as u32,
            s.f_namemax as u32,
            s.f_frsize as u32,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        match self.state().path(ino) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut st = self.state();
        let result = (|| {
            st.fail(FaultedOps::Writes)?;
            let rel = st.child(parent, name)?;
            let (mut opts, sync) = backing_open(flags);
            // The kernel only asks to create a name it found missing; a write-only open still
            // needs to be writable here.
            opts.write(true)
                .create_new(true)
                .mode(mode & !umask & 0o7777);
            let file = opts.open(st.tracker.abs(&rel)).map_err(errno)?;
            let attr = st.entry(&rel)?;
            st.tracker.created(attr.ino.0, &rel);
            let fh = st.add_handle(attr.ino.0, file, sync);
            Ok((attr, fh))
        })();
        match result {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut st = self.state();
        let result = (|| {
            // Punching holes or zeroing ranges would need undo records of their own.
            if mode != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            st.fail(FaultedOps::Writes)?;
            let h = st.handle(fh)?;
            let (ino, file) = (h.ino, h.file.try_clone().map_err(errno)?);
            // Only extends: a zero-length write records the durable length before it grows.
            st.tracker
                .before_write(ino, &file, offset, 0)
                .map_err(errno)?;
            let (off, len) = (
                i64::try_from(offset).map_err(|_| Errno::EINVAL)?,
                i64::try_from(length).map_err(|_| Errno::EINVAL)?,
            );
            // SAFETY: plain syscall on a descriptor we own.
            if unsafe { libc::fallocate(file.as_raw_fd(), 0, off, len) } != 0 {
                return Err(errno(io::Error::last_os_error()));
            }
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
