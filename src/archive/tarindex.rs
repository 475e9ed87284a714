//! An index of a seekable tar file: entry name → (data offset, size), built in one pass so
//! each entry can later be streamed straight from the file, in any order, by several readers.
//!
//! Names are normalised (`./` prefixes and `.` components dropped). An entry whose name or
//! link target leaves the archive (`..` above the root, an absolute path) is an error naming
//! the entry, whether or not the import would have used it. Symbolic and hard links are
//! followed only to other entries of the same archive.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// Links followed at most (a loop of links ends with an error).
const MAX_LINKS: usize = 16;

#[derive(Debug, Clone)]
enum Node {
    File {
        offset: u64,
        size: u64,
    },
    /// Target, already resolved to a normalised archive path.
    Link(String),
}

/// Entries of a tar file, by normalised name.
#[derive(Debug)]
pub(crate) struct TarIndex {
    path: PathBuf,
    entries: BTreeMap<String, Node>,
}

fn bad(msg: String) -> Error {
    Error::new(ErrorKind::InvalidInput, msg)
}

/// Normalises a path inside the archive relative to `base` (a directory, normalised), refusing
/// anything that leaves the archive root.
fn normalize(base: &str, name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn parent(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(d, _)| d)
}

impl TarIndex {
    /// Reads every header of the tar at `path`.
    pub(crate) fn build(path: &Path) -> Result<TarIndex> {
        let file = File::open(path).map_err(|e| Error::io(e, path.display().to_string()))?;
        let file_len = file.metadata()?.len();
        let mut ar = tar::Archive::new(file);
        let mut entries = BTreeMap::new();
        let iter = ar
            .entries_with_seek()
            .map_err(|e| bad(format!("not a tar file: {e}")))?;
        let mut count = 0usize;
        for entry in iter {
            let entry = entry.map_err(|e| {
                bad(format!(
                    "reading tar header after {count} entries (not a tar file, or truncated): {e}"
                ))
            })?;
            count += 1;
            let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = normalize("", &raw_name).ok_or_else(|| {
                bad(format!(
                    "tar entry {raw_name:?} escapes the archive (absolute path or \"..\")"
                ))
            })?;
            let kind = entry.header().entry_type();
            let size = entry.size();
            let offset = entry.raw_file_position();
            if kind.is_file() || kind == tar::EntryType::Continuous {
                if offset.checked_add(size).is_none_or(|end| end > file_len) {
                    return Err(bad(format!(
                        "tar entry {raw_name:?} is truncated: {size} bytes at offset {offset}, file has {file_len}"
                    )));
                }
                entries.insert(name, Node::File { offset, size });
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                // Hard links name a path from the archive root, symlinks are relative to the
                // link's directory.
                let base = if kind.is_symlink() { parent(&name) } else { "" };
                let resolved = normalize(base, &target).filter(|t| !t.is_empty());
                let resolved = resolved.ok_or_else(|| {
                    bad(format!(
                        "tar entry {raw_name:?} links to {target:?}, outside the archive"
                    ))
                })?;
                entries.insert(name, Node::Link(resolved));
            }
            // Directories, devices, fifos and metadata entries carry nothing we read.
        }
        if count == 0 {
            return Err(bad("not a tar file, or an empty one".to_string()));
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Offset and size of an entry, following links.
    fn locate(&self, name: &str) -> Result<Option<(u64, u64)>> {
        let Some(mut cur) = normalize("", name) else {
            return Ok(None);
        };
        for _ in 0..MAX_LINKS {
            match self.entries.get(&cur) {
                None => return Ok(None),
                Some(Node::File { offset, size }) => return Ok(Some((*offset, *size))),
                Some(Node::Link(t)) => cur = t.clone(),
            }
        }
        Err(Error::new(
            ErrorKind::Loop,
            format!("tar entry {name:?}: more than {MAX_LINKS} links"),
        ))
    }

    /// Is there a (regular, possibly linked) entry with this name?
    pub(crate) fn contains(&self, name: &str) -> bool {
        matches!(self.locate(name), Ok(Some(_)))
    }

    /// Size of an entry.
    pub(crate) fn size(&self, name: &str) -> Result<u64> {
        self.locate(name)?
            .map(|(_, s)| s)
            .ok_or_else(|| missing(name))
    }

    /// Streams an entry from its own file handle.
    pub(crate) fn open(&self, name: &str) -> Result<std::io::Take<File>> {
        let (offset, size) = self.locate(name)?.ok_or_else(|| missing(name))?;
        let mut f =
            File::open(&self.path).map_err(|e| Error::io(e, self.path.display().to_string()))?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(f.take(size))
    }

    /// Reads a whole entry, refusing more than `max` bytes.
    pub(crate) fn read(&self, name: &str, max: usize) -> Result<Vec<u8>> {
        let size = self.size(name)?;
        if size > max as u64 {
            return Err(Error::new(
                ErrorKind::SizeLimit,
                format!("tar entry {name:?} of {size} bytes exceeds the {max} byte limit"),
            ));
        }
        let mut out = Vec::with_capacity(size as usize);
        self.open(name)?.read_to_end(&mut out)?;
        if out.len() as u64 != size {
            return Err(Error::new(
                ErrorKind::ShortRead,
                format!("tar entry {name:?}: short read"),
            ));
        }
        Ok(out)
    }
}

pub(crate) fn missing(name: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("{name:?} not found in the tar file"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("", "./a/./b").as_deref(), Some("a/b"));
        assert_eq!(normalize("x/y", "../z").as_deref(), Some("x/z"));
        assert_eq!(normalize("", "../x"), None);
        assert_eq!(normalize("", "a/../../x"), None);
        assert_eq!(normalize("", "/abs"), None);
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("c"), "");
    }
}
