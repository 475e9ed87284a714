//! Files of one layout: paths, atomic writes and bounded reads.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::manifest::Index;
use crate::mediatype as mt;

/// Contents of `oci-layout`.
pub(super) const LAYOUT_VERSION: &str = "1.0.0";
/// Marker inside temp file names; GC removes stale files carrying it.
pub(super) const TEMP_MARKER: &str = ".regclient-tmp-";
/// The cross-process lock file. A separate file because `index.json` is replaced by rename:
/// a lock on the old inode would not exclude a writer that opened the new one.
pub(super) const LOCK_FILE: &str = ".regclient.lock";
/// Held shared by every process writing the layout, exclusively by GC (see `lock.rs`).
pub(super) const GC_LOCK_FILE: &str = ".regclient.gc.lock";
/// Largest `index.json` read (untrusted input is always bounded).
const MAX_INDEX: u64 = 64 << 20;

/// Paths of one layout directory.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) root: PathBuf,
    /// `ocidir://path`, for messages.
    pub(super) name: String,
}

impl Layout {
    pub(super) fn new(path: &str) -> Layout {
        Layout {
            root: PathBuf::from(path),
            name: format!("ocidir://{path}"),
        }
    }

    pub(super) fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub(super) fn layout_path(&self) -> PathBuf {
        self.root.join("oci-layout")
    }

    pub(super) fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    pub(super) fn gc_lock_path(&self) -> PathBuf {
        self.root.join(GC_LOCK_FILE)
    }

    pub(super) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub(super) fn alg_dir(&self, algo: Algorithm) -> PathBuf {
        self.blobs_dir().join(algo.as_str())
    }

    pub(super) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.alg_dir(d.algorithm()).join(d.hex())
    }

    /// Checks `oci-layout` when present (layouts written by some tools lack it).
    fn check_version(&self) -> Result<()> {
        let path = self.layout_path();
        let raw = match read_capped(&path, 4096) {
            Ok(raw) => raw,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.context(format!("reading oci-layout of {}", self.name))),
        };
        let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| {
            Error::new(ErrorKind::Parse, format!("parsing {}: {e}", path.display()))
        })?;
        match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(LAYOUT_VERSION) => Ok(()),
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "unsupported OCI layout version {:?} in {} (want {LAYOUT_VERSION})",
                    other.unwrap_or(""),
                    path.display()
                ),
            )),
        }
    }

    /// Reads and parses `index.json`; returns the raw bytes too (tag list output).
    pub(super) fn read_index(&self) -> Result<(Index, Vec<u8>)> {
        self.check_version()?;
        let path = self.index_path();
        let raw = match read_capped(&path, MAX_INDEX) {
            Ok(raw) => raw,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "no OCI layout at {} ({} not found)",
                        self.name,
                        path.display()
                    ),
                ))
            }
            Err(e) => return Err(e.context(format!("reading index.json of {}", self.name))),
        };
        let index: Index = serde_json::from_slice(&raw).map_err(|e| {
            Error::new(ErrorKind::Parse, format!("parsing {}: {e}", path.display()))
        })?;
        Ok((index, raw))
    }

    /// Reads `index.json`, or an empty index when the layout has none yet.
    pub(super) fn read_index_or_empty(&self) -> Result<(Index, bool)> {
        match self.read_index() {
            Ok((i, _)) => Ok((i, true)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok((empty_index(), false)),
            Err(e) => Err(e),
        }
    }

    /// Writes `index.json` atomically.
    pub(super) fn write_index(&self, index: &Index) -> Result<()> {
        let raw = serde_json::to_vec_pretty(index)
            .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;
        write_file(&self.root, "index.json", &raw)
            .with_context(|| format!("writing index.json of {}", self.name))
    }

    /// Creates the directory and `oci-layout` when missing, and checks the version otherwise.
    /// Concurrent creators write identical bytes, so no lock is needed here.
    pub(super) fn ensure(&self) -> Result<()> {
        fs::create_dir_all(&self.root).with_context(|| format!("creating layout {}", self.name))?;
        if self.layout_path().exists() {
            return self.check_version();
        }
        let body = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
        write_file(&self.root, "oci-layout", body.as_bytes())
            .with_context(|| format!("writing oci-layout of {}", self.name))
    }
}

/// A new empty OCI index.
pub(super) fn empty_index() -> Index {
    Index {
        schema_version: 2,
        media_type: mt::OCI1_INDEX.to_string(),
        ..Default::default()
    }
}

/// Reads a whole file, refusing more than `max` bytes.
pub(super) fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| Error::io(e, format!("opening {}", path.display())))?;
    let mut out = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(e, format!("reading {}", path.display())))?;
    if out.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::SizeLimit,
            format!("{} exceeds the {max} byte limit", path.display()),
        ));
    }
    Ok(out)
}

/// Is `name` one of our temp files?
pub(super) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARKER)
}

/// A temp file beside its final name; removed on drop unless persisted.
pub(super) struct TempFile {
    file: Option<File>,
    path: PathBuf,
}

impl TempFile {
    /// Creates `.<hint>.regclient-tmp-<pid>-<random>` in `dir`. `create_new` makes a name
    /// clash (another instance, same pid) fail instead of sharing a file; a few retries with
    /// fresh random names settle it.
    pub(super) fn create(dir: &Path, hint: &str) -> Result<TempFile> {
        let mut last = None;
        for _ in 0..8 {
            let rand = RandomState::new().build_hasher().finish();
            let name = format!(".{hint}{TEMP_MARKER}{}-{rand:016x}", std::process::id());
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        file: Some(file),
                        path,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(Error::io(
                        e,
                        format!("creating a temp file in {}", dir.display()),
                    ))
                }
            }
        }
        Err(Error::io(
            last.unwrap_or_else(|| std::io::Error::other("temp name clash")),
            format!("creating a temp file in {}", dir.display()),
        ))
    }

    pub(super) fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("temp file used after persist")
    }

    /// Flushes to disk and renames over `target`.
    pub(super) fn persist(mut self, target: &Path) -> Result<()> {
        let file = self.file.take().expect("temp file persisted twice");
        file.sync_all()
            .map_err(|e| Error::io(e, format!("syncing {}", self.path.display())))?;
        drop(file);
        fs::rename(&self.path, target)
            .map_err(|e| Error::io(e, format!("renaming to {}", target.display())))?;
        // The name is gone now; nothing to clean up on drop.
        self.path = PathBuf::new();
        // Make the rename itself durable; failure here only weakens crash safety.
        if let Some(dir) = target.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `data` to `dir/name` atomically.
pub(super) fn write_file(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let mut tmp = TempFile::create(dir, name)?;
    tmp.file()
        .write_all(data)
        .map_err(|e| Error::io(e, format!("writing {}", dir.join(name).display())))?;
    tmp.persist(&dir.join(name))
}
