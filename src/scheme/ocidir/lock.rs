//! Serialising `index.json` read-modify-write and GC on one layout.
//!
//! Two levels: an in-process lock per path (threads of one [`super::OciDir`]) and an exclusive
//! `flock` on `<layout>/.regclient.lock` (other processes, and other `OciDir` instances, since
//! each opens its own file description). The lock lives in its own file because `index.json`
//! is replaced by rename; OCI tools ignore unknown files in the layout root. Blob writes take
//! neither: they are content-addressed and land by atomic rename.
//!
//! GC needs more: a process that has written blobs but not yet the manifest naming them would
//! lose them to another process's GC. So every writer holds a *shared* lock on
//! `.regclient.gc.lock` from its first write until it closes the layout, and GC runs only if it
//! can take that lock *exclusively* without waiting; otherwise another writer is active and GC
//! is left to whoever closes last.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use crate::error::{Error, Result};

use super::fs::Layout;

/// The paths held by this instance's threads.
#[derive(Debug, Default)]
pub(super) struct PathLocks {
    held: Mutex<HashSet<PathBuf>>,
    released: Condvar,
}

/// Holds both locks of one layout until dropped.
pub(super) struct LayoutLock<'a> {
    locks: &'a PathLocks,
    path: PathBuf,
    file: Option<File>,
}

impl PathLocks {
    /// Takes the in-process lock, then the file lock. The layout directory must exist.
    pub(super) fn lock<'a>(&'a self, layout: &Layout) -> Result<LayoutLock<'a>> {
        let path = layout.root.clone();
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            // Waits only while another thread of this instance holds the path; each holder
            // releases when its guard drops.
            while held.contains(&path) {
                held = self.released.wait(held).unwrap_or_else(|e| e.into_inner());
            }
            held.insert(path.clone());
        }
        // From here the guard releases the in-process lock even if the file lock fails.
        let mut guard = LayoutLock {
            locks: self,
            path,
            file: None,
        };
        let lock_path = layout.lock_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io(e, format!("opening lock file {}", lock_path.display())))?;
        file.lock()
            .map_err(|e| Error::io(e, format!("locking {}", lock_path.display())))?;
        guard.file = Some(file);
        Ok(guard)
    }
}

impl Drop for LayoutLock<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            // Closing would release the flock too; unlocking first is explicit and harmless.
            let _ = f.unlock();
        }
        let mut held = self.locks.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.path);
        self.locks.released.notify_all();
    }
}

/// Opens (creating) the GC lock file of a layout.
pub(super) fn open_gc_lock(layout: &Layout) -> Result<File> {
    let p = layout.gc_lock_path();
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&p)
        .map_err(|e| Error::io(e, format!("opening lock file {}", p.display())))
}

/// A writer's shared hold on the GC lock (blocks while a GC runs).
pub(super) fn writer_hold(layout: &Layout) -> Result<File> {
    let f = open_gc_lock(layout)?;
    f.lock_shared()
        .map_err(|e| Error::io(e, format!("locking {}", layout.gc_lock_path().display())))?;
    Ok(f)
}

/// The exclusive GC lock, if no writer holds the layout right now.
pub(super) fn try_gc_lock(layout: &Layout) -> Result<Option<File>> {
    let f = open_gc_lock(layout)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(
            e,
            format!("locking {}", layout.gc_lock_path().display()),
        )),
    }
}
