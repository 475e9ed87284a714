//! Serialising `index.json` read-modify-write and GC on one layout.
//!
//! Two levels: an in-process lock per path (threads of one [`super::OciDir`]) and an exclusive
//! `flock` on `<layout>/.regclient.lock` (other processes, and other `OciDir` instances, since
//! each opens its own file description). The lock lives in its own file because `index.json`
//! is replaced by rename; OCI tools ignore unknown files in the layout root. Blob writes take
//! neither: they are content-addressed and land by atomic rename.

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
