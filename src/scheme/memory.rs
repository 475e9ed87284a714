//! An in-memory scheme for unit tests: repositories keyed by [`Reference::repo_name`], call
//! counters per method, a log of manifest puts, and switches for faults (corrupted blobs, blob
//! mount on/off, HEAD without digest).
//!
//! It keeps the referrers fallback tag up to date on every manifest put with a subject, as a
//! layout or a registry without the referrers API would, so referrer copies can be tested.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::descriptor::Descriptor;
use crate::digest::{Digest, VerifyReader};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Body, Index, Manifest, Source};
use crate::mediatype as mt;
use crate::reference::Reference;
use crate::scheme::{
    BlobExpect, BlobReader, DeleteOpts, ManifestHead, PutOpts, Scheme, TagList, TagOpts,
};

#[derive(Default)]
struct Repo {
    /// Media type and bytes by digest.
    manifests: HashMap<Digest, (String, Vec<u8>)>,
    tags: BTreeMap<String, Digest>,
    blobs: HashMap<Digest, Arc<[u8]>>,
}

/// One manifest put, as recorded by [`MemScheme::puts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PutRecord {
    /// Repository name.
    pub repo: String,
    /// Tag written, empty for a put by digest.
    pub tag: String,
    /// Digest of the manifest.
    pub digest: Digest,
    /// The child flag of the put.
    pub child: bool,
}

/// The in-memory backend.
#[derive(Default)]
pub(crate) struct MemScheme {
    repos: Mutex<HashMap<String, Repo>>,
    calls: Mutex<HashMap<&'static str, usize>>,
    puts: Mutex<Vec<PutRecord>>,
    corrupt: Mutex<HashSet<Digest>>,
    mount: AtomicBool,
    head_without_digest: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the real failure behind a poison error.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn not_found(what: String) -> Error {
    Error::new(ErrorKind::NotFound, format!("{what} not found"))
}

impl MemScheme {
    /// An empty backend (mount disabled).
    pub fn new() -> MemScheme {
        MemScheme::default()
    }

    /// Enables or disables `blob_mount`.
    pub fn set_mount(&self, on: bool) {
        self.mount.store(on, Ordering::SeqCst);
    }

    /// Makes `manifest_head` omit the digest (registries may).
    pub fn set_head_without_digest(&self, on: bool) {
        self.head_without_digest.store(on, Ordering::SeqCst);
    }

    /// Serves the blob `d` with its first byte flipped from now on.
    pub fn corrupt_blob(&self, d: &Digest) {
        lock(&self.corrupt).insert(d.clone());
    }

    /// Calls of one method since the last reset.
    pub fn calls(&self, method: &str) -> usize {
        lock(&self.calls).get(method).copied().unwrap_or(0)
    }

    /// Calls of every method since the last reset.
    pub fn total_calls(&self) -> usize {
        lock(&self.calls).values().sum()
    }

    /// Clears counters and the put log.
    pub fn reset_calls(&self) {
        lock(&self.calls).clear();
        lock(&self.puts).clear();
    }

    /// Manifest puts in order.
    pub fn puts(&self) -> Vec<PutRecord> {
        lock(&self.puts).clone()
    }

    /// Stores a blob in `r`'s repository without counting a call.
    pub fn add_blob(&self, r: &Reference, media_type: &str, data: &[u8]) -> Descriptor {
        let d = Descriptor::for_bytes(media_type, data);
        lock(&self.repos)
            .entry(r.repo_name())
            .or_default()
            .blobs
            .insert(d.digest.clone(), data.into());
        d
    }

    /// Stores a manifest (and its tag when `r` has one) without counting a call.
    pub fn add_manifest(&self, r: &Reference, m: &Manifest) {
        let mut repos = lock(&self.repos);
        store_manifest(repos.entry(r.repo_name()).or_default(), &r.tag, m);
    }

    /// Digest the tag of `r` points at.
    pub fn tag_digest(&self, r: &Reference) -> Option<Digest> {
        lock(&self.repos)
            .get(&r.repo_name())
            .and_then(|repo| repo.tags.get(r.tag_or_latest()).cloned())
    }

    /// Is manifest `d` stored in `r`'s repository?
    pub fn has_manifest(&self, r: &Reference, d: &Digest) -> bool {
        lock(&self.repos)
            .get(&r.repo_name())
            .is_some_and(|repo| repo.manifests.contains_key(d))
    }

    /// Is blob `d` stored in `r`'s repository?
    pub fn has_blob(&self, r: &Reference, d: &Digest) -> bool {
        lock(&self.repos)
            .get(&r.repo_name())
            .is_some_and(|repo| repo.blobs.contains_key(d))
    }

    /// Tags of `r`'s repository.
    pub fn tags(&self, r: &Reference) -> Vec<String> {
        lock(&self.repos)
            .get(&r.repo_name())
            .map(|repo| repo.tags.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn count(&self, method: &'static str) {
        *lock(&self.calls).entry(method).or_default() += 1;
    }

    /// Resolves `r` to a digest and the stored manifest.
    fn find(&self, r: &Reference) -> Result<(Digest, String, Vec<u8>)> {
        let repos = lock(&self.repos);
        let repo = repos
            .get(&r.repo_name())
            .ok_or_else(|| not_found(format!("repository {}", r.repo_name())))?;
        let d = if r.digest.is_empty() {
            repo.tags
                .get(r.tag_or_latest())
                .cloned()
                .ok_or_else(|| not_found(format!("manifest {}", r.common_name())))?
        } else {
            Digest::parse(&r.digest)?
        };
        let (media_type, raw) = repo
            .manifests
            .get(&d)
            .cloned()
            .ok_or_else(|| not_found(format!("manifest {}", r.common_name())))?;
        Ok((d, media_type, raw))
    }
}

fn store_manifest(repo: &mut Repo, tag: &str, m: &Manifest) {
    repo.manifests.insert(
        m.digest().clone(),
        (m.media_type().to_string(), m.raw().to_vec()),
    );
    if !tag.is_empty() {
        repo.tags.insert(tag.to_string(), m.digest().clone());
    }
}

/// Appends `m` to the fallback referrers index of its subject, as `<alg>-<hex>`.
fn add_referrer(repo: &mut Repo, subject: &Digest, m: &Manifest) -> Result<()> {
    let tag = subject.fallback_tag();
    let mut index = match repo.tags.get(&tag).and_then(|d| repo.manifests.get(d)) {
        Some((_, raw)) => match Manifest::from_bytes(raw.clone(), Source::default())?.body() {
            Body::Index(i) => i.clone(),
            _ => return Err(Error::new(ErrorKind::Mismatch, "fallback tag is no index")),
        },
        None => Index {
            schema_version: 2,
            media_type: mt::OCI1_INDEX.to_string(),
            ..Default::default()
        },
    };
    if index.manifests.iter().any(|d| &d.digest == m.digest()) {
        return Ok(());
    }
    let mut desc = m.descriptor();
    desc.artifact_type = m.referrer_artifact_type();
    desc.annotations = m.annotations();
    index.manifests.push(desc);
    let idx = Manifest::from_body(Body::Index(index), subject.algorithm())?;
    store_manifest(repo, &tag, &idx);
    Ok(())
}

impl Scheme for MemScheme {
    fn manifest_get(&self, r: &Reference) -> Result<Manifest> {
        self.count("manifest_get");
        let (d, media_type, raw) = self.find(r)?;
        Manifest::from_bytes(
            raw,
            Source {
                descriptor_type: Some(&media_type),
                content_type: None,
                digest: Some(&d),
            },
        )
    }

    fn manifest_head(&self, r: &Reference) -> Result<ManifestHead> {
        self.count("manifest_head");
        let (d, media_type, raw) = self.find(r)?;
        let digest = (!self.head_without_digest.load(Ordering::SeqCst)).then_some(d);
        Ok(ManifestHead {
            media_type,
            digest,
            size: Some(raw.len() as i64),
            headers: Vec::new(),
        })
    }

    fn manifest_put(&self, r: &Reference, m: &Manifest, opts: PutOpts) -> Result<()> {
        self.count("manifest_put");
        if !r.digest.is_empty() && r.digest != m.digest().to_string() {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("put of {} to {}", m.digest(), r.common_name()),
            ));
        }
        let mut repos = lock(&self.repos);
        let repo = repos.entry(r.repo_name()).or_default();
        let tag = if r.digest.is_empty() {
            r.tag_or_latest()
        } else {
            ""
        };
        store_manifest(repo, tag, m);
        if let Some(subject) = m.subject() {
            add_referrer(repo, &subject.digest, m)?;
        }
        lock(&self.puts).push(PutRecord {
            repo: r.repo_name(),
            tag: tag.to_string(),
            digest: m.digest().clone(),
            child: opts.child,
        });
        Ok(())
    }

    fn manifest_delete(&self, r: &Reference, _opts: DeleteOpts) -> Result<()> {
        self.count("manifest_delete");
        let d = Digest::parse(&r.digest)?;
        let mut repos = lock(&self.repos);
        let repo = repos
            .get_mut(&r.repo_name())
            .ok_or_else(|| not_found(r.common_name()))?;
        repo.manifests
            .remove(&d)
            .ok_or_else(|| not_found(r.common_name()))?;
        repo.tags.retain(|_, v| v != &d);
        Ok(())
    }

    fn blob_get(&self, r: &Reference, d: &Descriptor) -> Result<BlobReader> {
        self.count("blob_get");
        let data = lock(&self.repos)
            .get(&r.repo_name())
            .and_then(|repo| repo.blobs.get(&d.digest).cloned())
            .ok_or_else(|| not_found(format!("blob {}", d.digest)))?;
        let data: Arc<[u8]> = if lock(&self.corrupt).contains(&d.digest) && !data.is_empty() {
            let mut v = data.to_vec();
            v[0] ^= 0xff;
            v.into()
        } else {
            data
        };
        Ok(BlobReader::new(d.clone(), Box::new(Cursor::new(data))))
    }

    fn blob_head(&self, r: &Reference, d: &Descriptor) -> Result<Descriptor> {
        self.count("blob_head");
        let size = lock(&self.repos)
            .get(&r.repo_name())
            .and_then(|repo| repo.blobs.get(&d.digest).map(|b| b.len()))
            .ok_or_else(|| not_found(format!("blob {}", d.digest)))?;
        Ok(Descriptor {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: size as i64,
            ..Default::default()
        })
    }

    fn blob_put(
        &self,
        r: &Reference,
        expect: &BlobExpect,
        rdr: &mut dyn Read,
    ) -> Result<Descriptor> {
        self.count("blob_put");
        let mut v = VerifyReader::new(rdr, expect.digest.clone(), expect.size);
        let mut data = Vec::new();
        v.read_to_end(&mut data)?;
        let digest = v.computed();
        let desc = Descriptor {
            media_type: expect.media_type.clone(),
            digest: digest.clone(),
            size: data.len() as i64,
            ..Default::default()
        };
        lock(&self.repos)
            .entry(r.repo_name())
            .or_default()
            .blobs
            .insert(digest, data.into());
        Ok(desc)
    }

    fn blob_mount(&self, src: &Reference, tgt: &Reference, d: &Descriptor) -> Result<bool> {
        self.count("blob_mount");
        if !self.mount.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let mut repos = lock(&self.repos);
        let Some(data) = repos
            .get(&src.repo_name())
            .and_then(|repo| repo.blobs.get(&d.digest).cloned())
        else {
            return Ok(false);
        };
        repos
            .entry(tgt.repo_name())
            .or_default()
            .blobs
            .insert(d.digest.clone(), data);
        Ok(true)
    }

    fn blob_delete(&self, r: &Reference, d: &Descriptor) -> Result<()> {
        self.count("blob_delete");
        lock(&self.repos)
            .get_mut(&r.repo_name())
            .and_then(|repo| repo.blobs.remove(&d.digest))
            .map(|_| ())
            .ok_or_else(|| not_found(format!("blob {}", d.digest)))
    }

    fn tag_list(&self, r: &Reference, _opts: &TagOpts) -> Result<TagList> {
        self.count("tag_list");
        Ok(TagList {
            name: r.repo_name(),
            tags: self.tags(r),
            media_type: "application/json".to_string(),
            ..Default::default()
        })
    }

    fn tag_delete(&self, r: &Reference) -> Result<()> {
        self.count("tag_delete");
        lock(&self.repos)
            .get_mut(&r.repo_name())
            .and_then(|repo| repo.tags.remove(&r.tag))
            .map(|_| ())
            .ok_or_else(|| not_found(r.common_name()))
    }

    fn ping(&self, _r: &Reference) -> Result<()> {
        self.count("ping");
        Ok(())
    }

    fn close(&self, _r: &Reference) -> Result<()> {
        self.count("close");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fallback_tag() {
        let s = MemScheme::new();
        let r = Reference::parse("reg.example/a:v1").unwrap();
        let cfg = s.add_blob(&r, mt::OCI1_IMAGE_CONFIG, b"{}");
        let img = Manifest::from_body(
            Body::Image(crate::manifest::ImageManifest {
                schema_version: 2,
                media_type: mt::OCI1_MANIFEST.into(),
                config: Some(cfg.clone()),
                ..Default::default()
            }),
            Default::default(),
        )
        .unwrap();
        s.manifest_put(&r, &img, PutOpts::default()).unwrap();
        assert_eq!(s.manifest_get(&r).unwrap().digest(), img.digest());
        let sig = Manifest::from_body(
            Body::Image(crate::manifest::ImageManifest {
                schema_version: 2,
                media_type: mt::OCI1_MANIFEST.into(),
                config: Some(cfg),
                subject: Some(img.descriptor()),
                ..Default::default()
            }),
            Default::default(),
        )
        .unwrap();
        s.manifest_put(
            &r.set_digest(&sig.digest().to_string()),
            &sig,
            PutOpts::default(),
        )
        .unwrap();
        let fb = s
            .manifest_get(&r.set_tag(&img.digest().fallback_tag()))
            .unwrap();
        assert_eq!(fb.manifests().len(), 1);
        assert_eq!(&fb.manifests()[0].digest, sig.digest());

        s.corrupt_blob(&Digest::sha256(b"{}"));
        let d = Descriptor::for_bytes(mt::OCI1_IMAGE_CONFIG, b"{}");
        let e = s.blob_get(&r, &d).unwrap().read_all(10).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DigestMismatch);
    }
}
