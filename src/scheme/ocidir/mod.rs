//! OCI image layout directories (`ocidir://path[:tag][@digest]`).
//!
//! A layout is `oci-layout`, `index.json` (an OCI index whose entries carry the tag in
//! `org.opencontainers.image.ref.name`) and content-addressed `blobs/<alg>/<hex>`. It is created
//! on first write. Every file lands by temp file + fsync + rename, and blobs are verified before
//! the rename, so readers (and crashes) only ever see complete, correct files.
//!
//! `index.json` updates are serialised per path inside one [`OciDir`] and across processes by
//! an exclusive lock on `<layout>/.regclient.lock` (see `lock.rs`). Referrers are kept in the
//! fallback tag `<alg>-<hex>` of their subject, a normal tagged entry.

mod fs;
mod gc;
mod index;
mod lock;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::descriptor::Descriptor;
use crate::digest::{Digest, VerifyReader};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::manifest::{self, Index, Manifest, Source};
use crate::mediatype as mt;
use crate::reference::Reference;
use crate::referrer::fallback;
use crate::scheme::{
    BlobExpect, BlobReader, DeleteOpts, ManifestHead, PutOpts, Scheme, TagList, TagOpts,
};

use self::fs::{read_capped, Layout, TempFile};

/// Options for the layout scheme.
#[derive(Debug, Clone)]
pub struct OciDirOpts {
    /// Garbage-collect unreferenced blobs on close (default true).
    pub gc: bool,
    /// Value of the `org.opencontainers.image.created` annotation written to `index.json`
    /// entries (RFC 3339); `None` means the current time. The tools set it from
    /// `SOURCE_DATE_EPOC` with [`rfc3339`]; the library never reads the environment.
    pub created: Option<String>,
}

impl Default for OciDirOpts {
    fn default() -> Self {
        OciDirOpts {
            gc: true,
            created: None,
        }
    }
}

/// The OCI layout scheme.
#[derive(Debug, Default)]
pub struct OciDir {
    opts: OciDirOpts,
    locks: lock::PathLocks,
    /// Paths this instance wrote to: only those are garbage-collected on close.
    modified: Mutex<HashSet<String>>,
    /// Shared holds on the GC lock of every layout this instance is writing (see `lock.rs`).
    writers: Mutex<HashMap<String, std::fs::File>>,
}

/// Formats unix seconds as RFC 3339 UTC (`2006-01-02T15:04:05Z`).
pub fn rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Civil-from-days over 400-year eras (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn not_found(what: String) -> Error {
    Error::new(ErrorKind::NotFound, what)
}

/// Reads a manifest blob, verified against `digest`; `media_type` comes from the index entry
/// when there is one (else the body is sniffed).
fn read_manifest(layout: &Layout, media_type: Option<&str>, digest: &Digest) -> Result<Manifest> {
    let raw = match read_capped(&layout.blob_path(digest), manifest::MAX_PULL as u64) {
        Ok(raw) => raw,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(not_found(format!(
                "manifest {digest} not found in {}",
                layout.name
            )))
        }
        Err(e) => return Err(e.context(format!("reading manifest {digest} of {}", layout.name))),
    };
    let src = Source {
        descriptor_type: media_type.filter(|t| !t.is_empty()),
        digest: Some(digest),
        ..Default::default()
    };
    Manifest::from_bytes(raw, src)
        .with_context(|| format!("reading manifest {digest} of {}", layout.name))
}

/// Writes bytes as a blob unless it is already there (content-addressed: same name, same bytes).
fn write_blob_bytes(layout: &Layout, digest: &Digest, data: &[u8]) -> Result<()> {
    let target = layout.blob_path(digest);
    if target.is_file() {
        return Ok(());
    }
    digest.verify(data)?;
    let dir = layout.alg_dir(digest.algorithm());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = TempFile::create(&dir, digest.hex())?;
    io::Write::write_all(tmp.file(), data)
        .map_err(|e| Error::io(e, format!("writing blob {digest} to {}", layout.name)))?;
    tmp.persist(&target)
}

impl OciDir {
    /// A layout scheme with options.
    pub fn new(opts: OciDirOpts) -> OciDir {
        OciDir {
            opts,
            ..Default::default()
        }
    }

    fn created(&self) -> String {
        self.opts.created.clone().unwrap_or_else(|| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            rfc3339(now)
        })
    }

    /// Registers this instance as a writer of the layout before its first write, so another
    /// process's GC cannot remove blobs whose manifest is not written yet.
    fn hold_writer(&self, layout: &Layout, r: &Reference) -> Result<()> {
        let mut w = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        if !w.contains_key(&r.path) {
            w.insert(r.path.clone(), lock::writer_hold(layout)?);
        }
        Ok(())
    }

    fn mark_modified(&self, r: &Reference) {
        self.modified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.path.clone());
    }

    /// Read-modify-write of `index.json` under both locks. `f` returns its result and whether
    /// it changed the index; a missing `index.json` is created either way.
    fn update_index<T>(
        &self,
        layout: &Layout,
        f: impl FnOnce(&mut Index) -> Result<(T, bool)>,
    ) -> Result<T> {
        layout.ensure()?;
        let _guard = self.locks.lock(layout)?;
        let (mut idx, existed) = layout.read_index_or_empty()?;
        let (out, changed) = f(&mut idx)?;
        if changed || !existed {
            layout.write_index(&idx)?;
        }
        Ok(out)
    }

    /// Adds `m` to the fallback index of its subject. Called with the layout locked.
    fn referrer_add(&self, layout: &Layout, idx: &mut Index, m: &Manifest) -> Result<()> {
        let Some(subject) = m.subject() else {
            return Ok(());
        };
        let tag = subject.digest.fallback_tag();
        let current = self.fallback_read(layout, idx, &tag)?;
        let next = fallback::add(current.as_ref(), &fallback::referrer_descriptor(m))?;
        write_blob_bytes(layout, next.digest(), next.raw())?;
        index::set_tag(idx, &tag, &next.descriptor(), &self.created());
        Ok(())
    }

    /// Removes `m` from its subject's fallback index (the tag goes when it empties).
    fn referrer_remove(&self, layout: &Layout, idx: &mut Index, m: &Manifest) -> Result<bool> {
        let Some(subject) = m.subject() else {
            return Ok(false);
        };
        let tag = subject.digest.fallback_tag();
        let Some(current) = self.fallback_read(layout, idx, &tag)? else {
            return Ok(false);
        };
        match fallback::remove(&current, m.digest())? {
            Some(next) if next.digest() == current.digest() => Ok(false),
            Some(next) => {
                write_blob_bytes(layout, next.digest(), next.raw())?;
                index::set_tag(idx, &tag, &next.descriptor(), &self.created());
                Ok(true)
            }
            None => Ok(index::remove_tag(idx, &tag) > 0),
        }
    }

    /// The current fallback index for `tag`, if the tag exists and its blob is readable.
    fn fallback_read(&self, layout: &Layout, idx: &Index, tag: &str) -> Result<Option<Manifest>> {
        let Some(entry) = index::find_tag(idx, tag) else {
            return Ok(None);
        };
        match read_manifest(layout, Some(&entry.media_type), &entry.digest) {
            Ok(m) => Ok(Some(m)),
            // A dangling tag is rebuilt from scratch rather than blocking every push.
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.context(format!("reading referrers tag {tag}"))),
        }
    }

    /// The index entry a reference names (by digest or tag), and the digest to read.
    fn resolve(&self, r: &Reference, layout: &Layout) -> Result<(Option<Descriptor>, Digest)> {
        let (idx, _) = layout.read_index()?;
        if !r.digest.is_empty() {
            let d = Digest::parse(&r.digest)?;
            return Ok((index::find_digest(&idx, &d).cloned(), d));
        }
        let tag = r.tag_or_latest();
        let entry = index::find_tag(&idx, tag)
            .ok_or_else(|| not_found(format!("tag {tag} not found in {}", layout.name)))?;
        Ok((Some(entry.clone()), entry.digest.clone()))
    }
}

impl Scheme for OciDir {
    fn manifest_get(&self, r: &Reference) -> Result<Manifest> {
        let layout = Layout::new(&r.path);
        let (entry, digest) = self.resolve(r, &layout)?;
        read_manifest(
            &layout,
            entry.as_ref().map(|e| e.media_type.as_str()),
            &digest,
        )
    }

    fn manifest_head(&self, r: &Reference) -> Result<ManifestHead> {
        let layout = Layout::new(&r.path);
        let (entry, digest) = self.resolve(r, &layout)?;
        let desc = match entry {
            Some(e) if !e.media_type.is_empty() => {
                let meta = std::fs::metadata(layout.blob_path(&digest)).map_err(|_| {
                    not_found(format!("manifest {digest} not found in {}", layout.name))
                })?;
                Descriptor {
                    size: if e.size > 0 {
                        e.size
                    } else {
                        meta.len() as i64
                    },
                    ..e
                }
            }
            // No usable entry: read the blob and sniff its type.
            _ => read_manifest(&layout, None, &digest)?.descriptor(),
        };
        Ok(ManifestHead {
            media_type: desc.media_type,
            digest: Some(desc.digest),
            size: Some(desc.size),
            headers: Vec::new(),
        })
    }

    fn manifest_put(&self, r: &Reference, m: &Manifest, opts: PutOpts) -> Result<()> {
        let layout = Layout::new(&r.path);
        let ctx = || format!("writing manifest to {}", r.common_name());
        // A reference digest with another algorithm re-digests the same bytes; a different
        // digest of the same algorithm is a mismatch (from_bytes checks both).
        let rebuilt;
        let m = match Digest::parse(&r.digest) {
            Ok(d) if &d != m.digest() => {
                rebuilt = Manifest::from_bytes(
                    m.raw().to_vec(),
                    Source {
                        descriptor_type: Some(m.media_type()),
                        digest: Some(&d),
                        ..Default::default()
                    },
                )
                .with_context(ctx)?;
                &rebuilt
            }
            Ok(_) => m,
            Err(e) if !r.digest.is_empty() => return Err(e.context(ctx())),
            Err(_) => m,
        };
        m.check_push_size().map_err(|e| e.context(ctx()))?;
        layout.ensure().with_context(ctx)?;
        self.hold_writer(&layout, r).with_context(ctx)?;
        self.mark_modified(r);
        write_blob_bytes(&layout, m.digest(), m.raw()).with_context(ctx)?;
        let tag = if !r.tag.is_empty() {
            Some(r.tag.as_str())
        } else if r.digest.is_empty() {
            Some("latest")
        } else {
            None
        };
        if opts.child && m.subject().is_none() && layout.index_path().is_file() {
            // Children are not indexed: nothing to update, so skip the lock.
            return Ok(());
        }
        let created = self.created();
        self.update_index(&layout, |idx| {
            let mut changed = false;
            if !opts.child {
                let desc = m.descriptor();
                match tag {
                    Some(tag) => {
                        index::set_tag(idx, tag, &desc, &created);
                        changed = true;
                    }
                    None => changed |= index::add_untagged(idx, &desc, &created),
                }
            }
            // Referrers are listed even when pushed as children: the fallback tag is how
            // they are found, whatever pushed them.
            if m.subject().is_some() {
                self.referrer_add(&layout, idx, m)?;
                changed = true;
            }
            Ok(((), changed))
        })
        .with_context(ctx)
    }

    fn manifest_delete(&self, r: &Reference, _opts: DeleteOpts) -> Result<()> {
        let layout = Layout::new(&r.path);
        if r.digest.is_empty() {
            return Err(Error::new(
                ErrorKind::MissingTagOrDigest,
                format!(
                    "deleting a manifest from {} needs a digest",
                    r.common_name()
                ),
            ));
        }
        let ctx = || format!("deleting manifest {}", r.common_name());
        let digest = Digest::parse(&r.digest).with_context(ctx)?;
        // Fail on a missing layout before creating anything.
        let (idx, _) = layout.read_index().with_context(ctx)?;
        let entry_type = index::find_digest(&idx, &digest).map(|e| e.media_type.clone());
        // The referrers fallback is always fixed (not only with `check_referrers`): a layout
        // has no API to drift from, and a stale entry would list a deleted manifest. An
        // unreadable manifest can still be deleted; it just has no subject to clean up.
        let existing = read_manifest(&layout, entry_type.as_deref(), &digest).ok();
        self.mark_modified(r);
        let removed = self
            .update_index(&layout, |idx| {
                let mut removed = index::remove_digest(idx, &digest);
                if let Some(m) = &existing {
                    if self.referrer_remove(&layout, idx, m)? {
                        removed += 1;
                    }
                }
                Ok((removed, removed > 0))
            })
            .with_context(ctx)?;
        let blob = layout.blob_path(&digest);
        match std::fs::remove_file(&blob) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && removed > 0 => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found(format!(
                "manifest {digest} not found in {}",
                layout.name
            ))),
            Err(e) => Err(Error::io(e, format!("removing {}", blob.display())).context(ctx())),
        }
    }

    fn blob_get(&self, r: &Reference, d: &Descriptor) -> Result<BlobReader> {
        let layout = Layout::new(&r.path);
        let path = layout.blob_path(&d.digest);
        let file = std::fs::File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                not_found(format!("blob {} not found in {}", d.digest, layout.name))
            } else {
                Error::io(e, format!("opening {}", path.display()))
            }
        })?;
        let mut desc = d.clone();
        if desc.size <= 0 {
            // Callers that do not know the size get the stored one; the digest still guards
            // the content.
            let len = file
                .metadata()
                .map_err(|e| Error::io(e, format!("reading {}", path.display())))?
                .len();
            desc.size = len as i64;
        }
        Ok(BlobReader::seekable(desc, Box::new(file)))
    }

    fn blob_head(&self, r: &Reference, d: &Descriptor) -> Result<Descriptor> {
        let layout = Layout::new(&r.path);
        let meta = std::fs::metadata(layout.blob_path(&d.digest))
            .map_err(|_| not_found(format!("blob {} not found in {}", d.digest, layout.name)))?;
        Ok(Descriptor {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: meta.len() as i64,
            ..Default::default()
        })
    }

    fn blob_put(
        &self,
        r: &Reference,
        expect: &BlobExpect,
        rdr: &mut dyn Read,
    ) -> Result<Descriptor> {
        let layout = Layout::new(&r.path);
        let ctx = || format!("writing blob to {}", layout.name);
        if let Some(d) = &expect.digest {
            // Content-addressed: an existing file with this digest is this blob.
            if let Ok(meta) = std::fs::metadata(layout.blob_path(d)) {
                if meta.is_file() {
                    return Ok(Descriptor {
                        media_type: expect.media_type.clone(),
                        digest: d.clone(),
                        size: meta.len() as i64,
                        ..Default::default()
                    });
                }
            }
        }
        layout.ensure().with_context(ctx)?;
        self.hold_writer(&layout, r).with_context(ctx)?;
        if !layout.index_path().exists() {
            // Keep the layout valid even when only blobs were written.
            self.update_index(&layout, |_| Ok(((), false)))
                .with_context(ctx)?;
        }
        // A blob put alone does not make the layout "modified": `regctl blob put` followed by
        // `blob get` must find the blob, as upstream's does. Manifest writes mark it, so a copy
        // still collects what it replaced.
        let algo = expect
            .digest
            .as_ref()
            .map(|d| d.algorithm())
            .unwrap_or_default();
        let dir = layout.alg_dir(algo);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut tmp = TempFile::create(&dir, "blob").with_context(ctx)?;
        let mut verify = VerifyReader::new(rdr, expect.digest.clone(), expect.size);
        // The verifier fails at EOF on a wrong digest or size, before the rename below.
        let size = io::copy(&mut verify, tmp.file())
            .map_err(|e| Error::io(e, "copying blob content").context(ctx()))?;
        let digest = match &expect.digest {
            Some(d) => d.clone(),
            None => verify.computed(),
        };
        tmp.persist(&layout.blob_path(&digest)).with_context(ctx)?;
        Ok(Descriptor {
            media_type: expect.media_type.clone(),
            digest,
            size: size as i64,
            ..Default::default()
        })
    }

    fn blob_delete(&self, r: &Reference, d: &Descriptor) -> Result<()> {
        let layout = Layout::new(&r.path);
        let path = layout.blob_path(&d.digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found(format!(
                "blob {} not found in {}",
                d.digest, layout.name
            ))),
            Err(e) => Err(Error::io(e, format!("removing {}", path.display()))),
        }
    }

    fn tag_list(&self, r: &Reference, _opts: &TagOpts) -> Result<TagList> {
        let layout = Layout::new(&r.path);
        let (idx, raw) = layout.read_index()?;
        Ok(TagList {
            name: r.path.clone(),
            tags: index::tags(&idx),
            raw,
            media_type: mt::OCI1_INDEX.to_string(),
            headers: Vec::new(),
        })
    }

    fn tag_delete(&self, r: &Reference) -> Result<()> {
        let layout = Layout::new(&r.path);
        if r.tag.is_empty() {
            return Err(Error::new(
                ErrorKind::MissingTagOrDigest,
                format!("deleting a tag from {} needs a tag", r.common_name()),
            ));
        }
        // Fail on a missing layout before creating anything.
        layout.read_index()?;
        self.mark_modified(r);
        let removed = self
            .update_index(&layout, |idx| {
                let n = index::remove_tag(idx, &r.tag);
                Ok((n, n > 0))
            })
            .with_context(|| format!("deleting tag {}", r.common_name()))?;
        if removed == 0 {
            return Err(not_found(format!(
                "tag {} not found in {}",
                r.tag, layout.name
            )));
        }
        Ok(())
    }

    fn manifest_scan(&self, r: &Reference) -> Result<Option<Vec<Descriptor>>> {
        let layout = Layout::new(&r.path);
        let (idx, _) = layout.read_index()?;
        Ok(Some(idx.manifests))
    }

    fn ping(&self, r: &Reference) -> Result<()> {
        Layout::new(&r.path).read_index().map(|_| ())
    }

    fn close(&self, r: &Reference) -> Result<()> {
        // Our writes are done: release our hold so GC (ours or another process's) can run.
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&r.path);
        if !self.opts.gc {
            return Ok(());
        }
        let was_modified = self
            .modified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&r.path);
        if !was_modified {
            return Ok(());
        }
        let layout = Layout::new(&r.path);
        let _guard = self.locks.lock(&layout)?;
        // Another writer is active: its blobs may not be referenced yet, so leave GC to it.
        let Some(_gc) = lock::try_gc_lock(&layout)? else {
            return Ok(());
        };
        gc::run(&layout).with_context(|| format!("garbage-collecting {}", layout.name))
    }
}

#[cfg(test)]
mod tests;
