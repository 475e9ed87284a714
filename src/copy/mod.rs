//! The image copy engine: copies an image (index, children, configs, layers, optionally
//! referrers and digest tags) between any two [`Scheme`]s.
//!
//! A copy runs in three phases, all on the caller's pool:
//! 1. **Walk**: read source manifests (children, referrers and digest tags in parallel) and
//!    build a graph keyed by (target repository, digest). A manifest reached twice (shared
//!    child, referrer loop, self-pointing digest tag) becomes one node with several roles, so
//!    loops end and nothing is copied twice. The walk never waits for another task, which is
//!    why it cannot deadlock even on a one-thread pool.
//! 2. **Blobs**: every distinct blob of the graph is copied once, in parallel; the first
//!    failure raises an abort flag that stops the rest (including streams in progress).
//! 3. **Manifests**: pushed in dependency order (children before their index), in parallel
//!    per level. The top manifest goes last; only manifests that themselves depend on it (an
//!    index referrer listing its own subject) follow it. Any error stops the pushes, so a
//!    target tag never points at missing content.

mod blob;
#[cfg(test)]
mod tests;

pub use blob::blob_copy;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rayon::prelude::*;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::image_config::{ImageConfig, MAX_CONFIG};
use crate::manifest::{Body, Manifest};
use crate::mediatype as mt;
use crate::platform::{self, Platform};
use crate::reference::Reference;
use crate::referrer::{self, ListOpts, MatchOpts};
use crate::scheme::{PutOpts, Scheme, TagOpts};

/// Deepest chain of manifests (index levels, referrers of referrers, digest tags) followed.
const MAX_DEPTH: usize = 16;
/// Deepest index nesting followed when resolving a single platform.
const MAX_PLATFORM_NESTING: usize = 8;

/// Options of [`image_copy`].
#[derive(Debug, Clone, Default)]
pub struct CopyOpts {
    /// Resolve the source index to this platform and copy only that manifest to the target
    /// tag (the target becomes single-platform).
    pub platform: Option<Platform>,
    /// Keep the index but copy only children whose platform matches one of these exactly;
    /// an empty platform selects children without one. Empty: copy every child.
    pub platforms: Vec<Platform>,
    /// Also copy digest tags (`sha256-<hex>.sig`, ...) of every manifest copied.
    pub digest_tags: bool,
    /// Also copy referrers of every manifest copied, recursively.
    pub referrers: bool,
    /// Referrers to keep: those matching any of the filters; empty keeps all.
    pub referrer_filters: Vec<MatchOpts>,
    /// Read referrers from this repository instead of the source's (same backend).
    pub referrer_src: Option<Reference>,
    /// Write referrers to this repository instead of the target's (same backend).
    pub referrer_tgt: Option<Reference>,
    /// Skip the referrers and digest tag checks when the target already holds a manifest.
    pub fast: bool,
    /// Walk and re-push every manifest even when the target has it (blobs present at the
    /// target are still skipped).
    pub force_recursive: bool,
    /// Copy layers that carry `urls` (foreign layers); skipped otherwise.
    pub include_external: bool,
    /// List referrers with the slow search too (OCI layouts: scan every manifest of the
    /// layout for a matching subject, finding referrers pushed without a fallback tag).
    pub referrer_slow: bool,
    /// What the caller already learned by a HEAD of the target reference: `Some(None)` it is
    /// absent, `Some(Some(d))` it holds `d`. Saves the copy its own HEAD.
    pub target_head: Option<Option<Digest>>,
    /// Manifests known to be at the target, shared by the copies of one run.
    pub seen: Option<Arc<Seen>>,
    /// The source manifest, when the caller already fetched it (by the source reference, as
    /// given): the copy then does not read it again.
    pub source_manifest: Option<Manifest>,
    /// Stop (error kind `Canceled`) once this passes: checked between manifests and blobs
    /// and on every read of a blob stream. Nothing is tagged after it.
    pub deadline: Option<std::time::Instant>,
}

/// Manifests and blobs known to be present at targets, shared by the copies of one run (a
/// regsync pass over a repository's tags, which mostly share their children and layers), so
/// each is checked at most once. Only presence is recorded: from a HEAD that found the digest
/// or a write that stored it. Keep one for a short run only; content deleted behind its back
/// is not noticed.
#[derive(Debug, Default)]
pub struct Seen(Mutex<std::collections::HashSet<String>>);

impl Seen {
    fn key(kind: Kind, r: &Reference) -> String {
        // Kind, registry, repository (or layout path) and digest: the identity of stored content.
        format!(
            "{kind:?}|{}|{}|{}|{}",
            r.registry, r.repository, r.path, r.digest
        )
    }

    /// Whether manifest `r` (by digest) is known to be at its target.
    pub fn has(&self, r: &Reference) -> bool {
        self.has_kind(Kind::Manifest, r)
    }

    /// Records manifest `r` (by digest) as present.
    pub fn add(&self, r: &Reference) {
        self.add_kind(Kind::Manifest, r)
    }

    fn has_kind(&self, kind: Kind, r: &Reference) -> bool {
        !r.digest.is_empty() && lock(&self.0).contains(&Self::key(kind, r))
    }

    fn add_kind(&self, kind: Kind, r: &Reference) {
        if !r.digest.is_empty() {
            lock(&self.0).insert(Self::key(kind, r));
        }
    }
}

/// What an [`Event`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A manifest.
    Manifest,
    /// A blob (config or layer).
    Blob,
}

/// Progress of a copy, delivered to the caller's callback (possibly from several threads).
#[derive(Debug, Clone)]
pub enum Event {
    /// The walk is done: this many distinct manifests and blobs take part (some may turn out
    /// to be present already).
    Plan {
        /// Distinct manifests.
        manifests: usize,
        /// Distinct blobs.
        blobs: usize,
    },
    /// Already at the target; nothing transferred.
    Skipped {
        /// Manifest or blob.
        kind: Kind,
        /// Its digest.
        digest: Digest,
        /// Its size (-1 when unknown).
        size: i64,
    },
    /// A blob transfer (mount or stream) begins.
    Started {
        /// Blob digest.
        digest: Digest,
        /// Blob size (-1 when unknown).
        size: i64,
    },
    /// Bytes of a blob streamed so far (at most every 100 ms or 8 MiB).
    Progress {
        /// Blob digest.
        digest: Digest,
        /// Bytes read from the source so far.
        bytes_done: u64,
        /// Blob size (-1 when unknown).
        size: i64,
    },
    /// A blob is at the target.
    Finished {
        /// Blob digest.
        digest: Digest,
        /// Blob size (-1 when unknown).
        size: i64,
        /// Mounted from another repository rather than streamed.
        mounted: bool,
    },
    /// A manifest was written at the target.
    ManifestPushed {
        /// Where (tag or digest reference).
        reference: Reference,
        /// Manifest digest.
        digest: Digest,
    },
}

/// What [`image_copy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Digest of the manifest copied to the target reference.
    pub digest: Digest,
    /// The target already had it and nothing was transferred.
    pub skipped: bool,
    /// Manifest puts made (a manifest written to two tags counts twice).
    pub manifests_copied: usize,
    /// Blobs streamed or mounted.
    pub blobs_copied: usize,
    /// Blobs already at the target.
    pub blobs_skipped: usize,
    /// Bytes streamed.
    pub bytes_copied: u64,
}

/// Copies the image `src` (read through `src_scheme`) to `tgt` (written through
/// `tgt_scheme`), following [`CopyOpts`]. Parallel work runs on `pool`; `progress` receives
/// [`Event`]s. `referrer_src` must use the source's backend and `referrer_tgt` the
/// target's.
///
/// When the target already holds the source digest and nothing forces a deeper look, this
/// costs two scheme calls (target HEAD, source HEAD). The first error is returned and the
/// target reference is then left unchanged.
pub fn image_copy(
    src_scheme: &dyn Scheme,
    src: &Reference,
    tgt_scheme: &dyn Scheme,
    tgt: &Reference,
    opts: &CopyOpts,
    pool: &rayon::ThreadPool,
    progress: &(dyn Fn(&Event) + Sync),
) -> Result<CopyReport> {
    for (r, base, what) in [
        (&opts.referrer_src, src, "source"),
        (&opts.referrer_tgt, tgt, "target"),
    ] {
        if let Some(r) = r {
            if r.scheme != base.scheme {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "referrers {what} {} must use the same backend as {}",
                        r.common_name(),
                        base.common_name()
                    ),
                ));
            }
        }
    }
    let copier = Copier {
        src_scheme,
        tgt_scheme,
        opts,
        pool,
        progress,
        graph: Mutex::default(),
        tags: Mutex::default(),
        abort: AtomicBool::new(false),
        first_err: Mutex::new(None),
        manifests: AtomicUsize::new(0),
        blobs_copied: AtomicUsize::new(0),
        blobs_skipped: AtomicUsize::new(0),
        bytes: AtomicU64::new(0),
    };
    pool.install(|| copier.run(src, tgt))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere already fails the copy; the data behind the lock stays usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a manifest is written at the target.
#[derive(Debug, Clone)]
enum Role {
    /// By digest; `child` keeps it out of a layout's `index.json`.
    ByDigest { child: bool },
    /// To a tag; `present` when the tag already points at this digest.
    Tag { r: Reference, present: bool },
}

/// One manifest of the copy graph.
struct Node {
    /// Source, by digest.
    src: Reference,
    /// Target, by digest.
    tgt: Reference,
    digest: Digest,
    size: i64,
    /// The source manifest, once read.
    manifest: Option<Manifest>,
    /// The target already has this digest (set by the walker that claimed the node).
    exists: bool,
    /// A by-digest put was asked for; the value is the merged child flag.
    by_digest: Option<bool>,
    /// Tag puts asked for.
    tags: Vec<(Reference, bool)>,
    /// Nodes that must be pushed first (children of an index).
    deps: Vec<usize>,
    top: bool,
}

impl Node {
    fn add_role(&mut self, role: Role) {
        match role {
            // Listed in a layout's index when any role wants it listed.
            Role::ByDigest { child } => {
                self.by_digest = Some(self.by_digest.map_or(child, |c| c && child));
            }
            Role::Tag { r, present } => {
                if !self.tags.iter().any(|(t, _)| t == &r) {
                    self.tags.push((r, present));
                }
            }
        }
    }
}

/// A blob to copy.
struct BlobJob {
    src: Reference,
    tgt: Reference,
    desc: Descriptor,
    /// "config", "layer" or "blob", for error messages.
    what: &'static str,
    /// The manifest that referenced it first, for error messages.
    of: String,
}

#[derive(Default)]
struct Graph {
    keys: HashMap<(String, Digest), usize>,
    nodes: Vec<Node>,
    blob_keys: HashSet<(String, Digest)>,
    blobs: Vec<BlobJob>,
}

/// A request to walk one manifest.
struct Visit {
    src: Reference,
    tgt: Reference,
    digest: Digest,
    size: i64,
    role: Role,
    top: bool,
    /// Known target state (the top was checked already).
    exists: Option<bool>,
    /// Already read from the source.
    manifest: Option<Manifest>,
    /// Part of the image itself (platform filters apply), not a referrer or digest tag.
    main: bool,
    /// How to name it in messages.
    name: String,
}

/// A unit of parallel walk work.
enum Job {
    Visit(Box<Visit>),
    /// A digest tag whose manifest digest must be looked up first.
    /// Source and target tag references.
    DigestTag(Box<(Reference, Reference)>),
}

struct Copier<'a> {
    src_scheme: &'a dyn Scheme,
    tgt_scheme: &'a dyn Scheme,
    opts: &'a CopyOpts,
    pool: &'a rayon::ThreadPool,
    progress: &'a (dyn Fn(&Event) + Sync),
    graph: Mutex<Graph>,
    /// Source tags by repository, listed once per copy.
    tags: Mutex<HashMap<String, Arc<Vec<String>>>>,
    abort: AtomicBool,
    first_err: Mutex<Option<Error>>,
    manifests: AtomicUsize,
    blobs_copied: AtomicUsize,
    blobs_skipped: AtomicUsize,
    bytes: AtomicU64,
}

impl Copier<'_> {
    fn run(&self, src: &Reference, tgt: &Reference) -> Result<CopyReport> {
        // The target may well be missing; any real problem shows again when writing.
        let tgt_digest = match &self.opts.target_head {
            Some(known) => known.clone(),
            None => self
                .tgt_scheme
                .manifest_head(tgt)
                .ok()
                .and_then(|h| h.digest),
        };
        let (digest, size, manifest) = match &self.opts.platform {
            Some(p) => self.resolve_platform(src, p)?,
            // Nothing at the target to compare with: the source manifest is needed anyway, so
            // one GET replaces a HEAD followed by a GET by digest.
            None if tgt_digest.is_none() => {
                let m = match &self.opts.source_manifest {
                    Some(m) => m.clone(),
                    None => self.get(src)?,
                };
                (m.digest().clone(), m.raw().len() as i64, Some(m))
            }
            None => self.source_digest(src)?,
        };
        if !tgt.digest.is_empty() && tgt.digest != digest.to_string() {
            return Err(Error::new(
                ErrorKind::Mismatch,
                format!(
                    "target {} does not match source digest {digest}",
                    tgt.common_name()
                ),
            ));
        }
        let exists = tgt_digest.as_ref() == Some(&digest);
        let o = self.opts;
        if exists && (o.fast || !(o.force_recursive || o.referrers || o.digest_tags)) {
            (self.progress)(&Event::Skipped {
                kind: Kind::Manifest,
                digest: digest.clone(),
                size,
            });
            return Ok(CopyReport {
                digest,
                skipped: true,
                manifests_copied: 0,
                blobs_copied: 0,
                blobs_skipped: 0,
                bytes_copied: 0,
            });
        }
        let role = if tgt.tag.is_empty() && !tgt.digest.is_empty() {
            Role::ByDigest { child: false }
        } else {
            Role::Tag {
                r: tgt.set_tag(tgt.tag_or_latest()),
                present: exists,
            }
        };
        let d = digest.to_string();
        let top = Visit {
            src: src.set_digest(&d),
            tgt: tgt.set_digest(&d),
            digest: digest.clone(),
            size,
            role,
            top: true,
            exists: Some(exists),
            manifest,
            main: true,
            name: src.common_name(),
        };
        if let Err(e) = self.visit(top, 0) {
            return Err(self.fail(e));
        }
        let graph = std::mem::take(&mut *lock(&self.graph));
        (self.progress)(&Event::Plan {
            manifests: graph.nodes.len(),
            blobs: graph.blobs.len(),
        });
        self.copy_blobs(&graph.blobs)?;
        self.push_all(&graph.nodes)?;
        let manifests_copied = self.manifests.load(Ordering::SeqCst);
        let blobs_copied = self.blobs_copied.load(Ordering::SeqCst);
        Ok(CopyReport {
            digest,
            skipped: exists && manifests_copied == 0 && blobs_copied == 0,
            manifests_copied,
            blobs_copied,
            blobs_skipped: self.blobs_skipped.load(Ordering::SeqCst),
            bytes_copied: self.bytes.load(Ordering::SeqCst),
        })
    }

    /// Records the first error and stops further work; returns the first error.
    fn fail(&self, e: Error) -> Error {
        let mut first = lock(&self.first_err);
        let first = first.get_or_insert(e).clone();
        self.abort.store(true, Ordering::SeqCst);
        first
    }

    fn stop(&self) -> blob::Stop<'_> {
        blob::Stop {
            flag: Some(&self.abort),
            deadline: self.opts.deadline,
        }
    }

    fn check_abort(&self) -> Result<()> {
        match self.stop().reason() {
            Some(why) => Err(Error::new(ErrorKind::Canceled, why)),
            None => Ok(()),
        }
    }

    fn get(&self, r: &Reference) -> Result<Manifest> {
        self.src_scheme
            .manifest_get(r)
            .with_context(|| format!("getting manifest {}", r.common_name()))
    }

    /// Digest of the source by HEAD, falling back to a GET when the HEAD has none.
    fn source_digest(&self, src: &Reference) -> Result<(Digest, i64, Option<Manifest>)> {
        let head = self
            .src_scheme
            .manifest_head(src)
            .with_context(|| format!("getting manifest {}", src.common_name()))?;
        match head.digest {
            Some(d) => Ok((d, head.size.unwrap_or(-1), None)),
            None => {
                let m = self.get(src)?;
                Ok((m.digest().clone(), m.raw().len() as i64, Some(m)))
            }
        }
    }

    /// The manifest of `src` for platform `p`: the selected child of an index, or the image
    /// itself when its config does not say it is for another platform.
    fn resolve_platform(
        &self,
        src: &Reference,
        p: &Platform,
    ) -> Result<(Digest, i64, Option<Manifest>)> {
        let mut m = self.get(src)?;
        if !m.is_index() {
            self.check_image_platform(src, &m, p)?;
        }
        for _ in 0..MAX_PLATFORM_NESTING {
            if !m.is_index() {
                return Ok((m.digest().clone(), m.raw().len() as i64, Some(m)));
            }
            let d = m.select_platform(p).with_context(|| src.common_name())?;
            // The entry names an image: its digest is all the no-op check needs.
            if mt::is_image(&d.media_type) {
                return Ok((d.digest.clone(), d.size, None));
            }
            m = self.get(&src.set_digest(&d.digest.to_string()))?;
        }
        Err(Error::new(
            ErrorKind::Loop,
            format!(
                "{}: index nesting deeper than {MAX_PLATFORM_NESTING} levels",
                src.common_name()
            ),
        ))
    }

    fn check_image_platform(&self, src: &Reference, m: &Manifest, p: &Platform) -> Result<()> {
        let Some(cd) = m.config() else {
            return Ok(());
        };
        if cd.media_type != mt::OCI1_IMAGE_CONFIG && cd.media_type != mt::DOCKER2_IMAGE_CONFIG {
            return Ok(());
        }
        let raw = match cd.embedded_data() {
            Some(raw) => raw,
            None => self
                .src_scheme
                .blob_get(src, cd)
                .and_then(|b| b.read_all(MAX_CONFIG))
                .with_context(|| format!("reading config of {}", src.common_name()))?,
        };
        let have = ImageConfig::parse(&raw)?.platform();
        if !have.is_empty() && !platform::compatible(p, &have) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "{}: platform not found: {p} (available: {have})",
                    src.common_name()
                ),
            ));
        }
        Ok(())
    }

    /// Adds `v` to the graph; the first caller for a (target repository, digest) walks it,
    /// later ones only add their role. Returns the node index.
    fn visit(&self, v: Visit, depth: usize) -> Result<usize> {
        self.check_abort()?;
        if depth > MAX_DEPTH {
            return Err(Error::new(
                ErrorKind::Loop,
                format!(
                    "{}: manifests nested deeper than {MAX_DEPTH} levels",
                    v.name
                ),
            ));
        }
        let key = (v.tgt.repo_name(), v.digest.clone());
        let idx = {
            let mut g = lock(&self.graph);
            if let Some(&i) = g.keys.get(&key) {
                g.nodes[i].add_role(v.role);
                return Ok(i);
            }
            let i = g.nodes.len();
            let mut node = Node {
                src: v.src.clone(),
                tgt: v.tgt.clone(),
                digest: v.digest.clone(),
                size: v.size,
                manifest: None,
                exists: false,
                by_digest: None,
                tags: Vec::new(),
                deps: Vec::new(),
                top: v.top,
            };
            node.add_role(v.role.clone());
            g.nodes.push(node);
            g.keys.insert(key, i);
            i
        };
        self.walk(idx, v, depth)?;
        Ok(idx)
    }

    /// Decides what a new node needs, reads it and queues its blobs, children, referrers and
    /// digest tags.
    fn walk(&self, idx: usize, mut v: Visit, depth: usize) -> Result<()> {
        let o = self.opts;
        let same_repo = v.src.equal_repository(&v.tgt);
        let seen = self.opts.seen.as_deref();
        let exists = match v.exists {
            Some(e) => e,
            None if same_repo => true,
            None if seen.is_some_and(|s| s.has(&v.tgt)) => true,
            None => match self.tgt_scheme.manifest_head(&v.tgt) {
                Ok(h) => {
                    let found = h.digest.as_ref().is_none_or(|d| d == &v.digest);
                    if found {
                        seen.inspect(|s| s.add(&v.tgt));
                    }
                    found
                }
                Err(_) => false,
            },
        };
        lock(&self.graph).nodes[idx].exists = exists;
        // Within one repository everything referenced is there already (a retag).
        let need_content = !same_repo && (!exists || o.force_recursive);
        let need_extras = (o.referrers || o.digest_tags) && !(exists && o.fast);
        if !need_content && !need_extras {
            return Ok(());
        }
        let m = match v.manifest.take() {
            Some(m) => m,
            None => self.get(&v.src)?,
        };
        if m.digest() != &v.digest {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("{}: source returned manifest {}", v.name, m.digest()),
            ));
        }
        let mut jobs = Vec::new();
        match m.body() {
            Body::Index(index) => {
                for d in &index.manifests {
                    if v.main && !self.platform_wanted(d) {
                        continue;
                    }
                    let r = v.src.set_digest(&d.digest.to_string());
                    if self.is_manifest(&r, d) {
                        let child = Visit {
                            src: r.clone(),
                            tgt: v.tgt.set_digest(&d.digest.to_string()),
                            digest: d.digest.clone(),
                            size: d.size,
                            role: Role::ByDigest { child: true },
                            top: false,
                            exists: None,
                            manifest: None,
                            main: v.main,
                            name: r.common_name(),
                        };
                        jobs.push((Job::Visit(Box::new(child)), true));
                    } else if need_content {
                        self.add_blob(&v, d, "blob");
                    }
                }
            }
            _ if need_content => {
                if let Some(c) = m.config() {
                    self.add_blob(&v, c, "config");
                }
                for l in m.layers() {
                    if l.urls.is_empty() || o.include_external {
                        self.add_blob(&v, &l, "layer");
                    }
                }
            }
            _ => {}
        }
        if need_extras && o.referrers {
            self.referrer_jobs(&v, &mut jobs)?;
        }
        if need_extras && o.digest_tags {
            self.digest_tag_jobs(&v, &mut jobs)?;
        }
        lock(&self.graph).nodes[idx].manifest = Some(m);
        let deps = self.pool.install(|| {
            jobs.into_par_iter()
                .with_max_len(1)
                .map(|(job, dep)| {
                    let i = self.run_job(job, depth + 1).map_err(|e| self.fail(e))?;
                    Ok(dep.then_some(i))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        lock(&self.graph).nodes[idx].deps = deps.into_iter().flatten().collect();
        Ok(())
    }

    fn run_job(&self, job: Job, depth: usize) -> Result<usize> {
        match job {
            Job::Visit(v) => self.visit(*v, depth),
            Job::DigestTag(refs) => {
                let (src, tgt) = *refs;
                self.check_abort()?;
                let (digest, size, manifest) = self
                    .source_digest(&src)
                    .with_context(|| format!("copying digest tag {}", src.common_name()))?;
                let present = self
                    .tgt_scheme
                    .manifest_head(&tgt)
                    .ok()
                    .and_then(|h| h.digest)
                    .as_ref()
                    == Some(&digest);
                let d = digest.to_string();
                let v = Visit {
                    src: src.set_digest(&d),
                    tgt: tgt.set_digest(&d),
                    digest,
                    size,
                    role: Role::Tag { r: tgt, present },
                    top: false,
                    exists: None,
                    manifest,
                    main: false,
                    name: src.common_name(),
                };
                self.visit(v, depth)
            }
        }
    }

    /// Does `--platforms` keep this index entry?
    fn platform_wanted(&self, d: &Descriptor) -> bool {
        let want = &self.opts.platforms;
        if want.is_empty() {
            return true;
        }
        match &d.platform {
            Some(p) => {
                let mut p = p.clone();
                p.normalize();
                want.iter()
                    .any(|w| !w.is_empty() && platform::matches(w, &p))
            }
            None => want.iter().any(|w| w.is_empty()),
        }
    }

    /// Is an index entry a manifest (else it is copied as a blob)? Unknown types are probed.
    fn is_manifest(&self, r: &Reference, d: &Descriptor) -> bool {
        if mt::is_manifest(&d.media_type) {
            return true;
        }
        d.media_type.is_empty() && self.src_scheme.manifest_head(r).is_ok()
    }

    fn add_blob(&self, v: &Visit, d: &Descriptor, what: &'static str) {
        let mut g = lock(&self.graph);
        if g.blob_keys.insert((v.tgt.repo_name(), d.digest.clone())) {
            g.blobs.push(BlobJob {
                src: v.src.clone(),
                tgt: v.tgt.clone(),
                desc: d.clone(),
                what,
                of: v.name.clone(),
            });
        }
    }

    fn referrer_jobs(&self, v: &Visit, jobs: &mut Vec<(Job, bool)>) -> Result<()> {
        let d = v.digest.to_string();
        let rsrc = match &self.opts.referrer_src {
            Some(r) => r.set_digest(&d),
            None => v.src.clone(),
        };
        let rtgt = self.opts.referrer_tgt.as_ref().unwrap_or(&v.tgt);
        let list = referrer::list(
            self.src_scheme,
            &rsrc,
            &v.src,
            &v.digest,
            &ListOpts {
                slow_search: self.opts.referrer_slow,
                ..Default::default()
            },
        )
        .with_context(|| format!("listing referrers of {}", v.name))?;
        let filters = &self.opts.referrer_filters;
        for d in list.descriptors {
            if !filters.is_empty() && !filters.iter().any(|f| f.matches(&d)) {
                continue;
            }
            let r = rsrc.set_digest(&d.digest.to_string());
            let visit = Visit {
                src: r.clone(),
                tgt: rtgt.set_digest(&d.digest.to_string()),
                digest: d.digest.clone(),
                size: d.size,
                role: Role::ByDigest { child: false },
                top: false,
                exists: None,
                manifest: None,
                main: false,
                name: r.common_name(),
            };
            jobs.push((Job::Visit(Box::new(visit)), false));
        }
        Ok(())
    }

    fn digest_tag_jobs(&self, v: &Visit, jobs: &mut Vec<(Job, bool)>) -> Result<()> {
        let tags = self.source_tags(&v.src)?;
        // The bare fallback tag is the referrers index, maintained by the target itself.
        let prefix = v.digest.fallback_tag();
        for t in tags
            .iter()
            .filter(|t| t.starts_with(&prefix) && **t != prefix)
        {
            jobs.push((
                Job::DigestTag(Box::new((v.src.set_tag(t), v.tgt.set_tag(t)))),
                false,
            ));
        }
        Ok(())
    }

    /// Tags of `r`'s repository, listed once per copy.
    fn source_tags(&self, r: &Reference) -> Result<Arc<Vec<String>>> {
        // Held during the listing so parallel walkers wait for one listing instead of
        // repeating it; the listing itself never waits on the pool.
        let mut cache = lock(&self.tags);
        if let Some(t) = cache.get(&r.repo_name()) {
            return Ok(t.clone());
        }
        let list = self
            .src_scheme
            .tag_list(r, &TagOpts::default())
            .with_context(|| format!("listing tags of {}", r.repo_name()))?;
        let tags = Arc::new(list.tags);
        cache.insert(r.repo_name(), tags.clone());
        Ok(tags)
    }

    fn copy_blobs(&self, jobs: &[BlobJob]) -> Result<()> {
        self.pool.install(|| {
            jobs.par_iter().with_max_len(1).for_each(|j| {
                if self.abort.load(Ordering::SeqCst) {
                    return;
                }
                if let Err(e) = self.check_abort() {
                    self.fail(e);
                    return;
                }
                let at = j.tgt.set_digest(&j.desc.digest.to_string());
                let seen = self.opts.seen.as_deref();
                if seen.is_some_and(|s| s.has_kind(Kind::Blob, &at)) {
                    (self.progress)(&Event::Skipped {
                        kind: Kind::Blob,
                        digest: j.desc.digest.clone(),
                        size: j.desc.size,
                    });
                    self.blobs_skipped.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                let res = blob::copy_blob(
                    self.src_scheme,
                    &j.src,
                    self.tgt_scheme,
                    &j.tgt,
                    &j.desc,
                    self.progress,
                    self.stop(),
                );
                match res {
                    Ok(blob::Outcome::Skipped) => {
                        self.blobs_skipped.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(blob::Outcome::Mounted) => {
                        self.blobs_copied.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(blob::Outcome::Copied(n)) => {
                        self.blobs_copied.fetch_add(1, Ordering::SeqCst);
                        self.bytes.fetch_add(n, Ordering::SeqCst);
                    }
                    Err(e) => {
                        self.fail(
                            e.context(format!("copying {} {} of {}", j.what, j.desc.digest, j.of)),
                        );
                        return;
                    }
                }
                if let Some(s) = seen {
                    s.add_kind(Kind::Blob, &at);
                }
            })
        });
        match lock(&self.first_err).clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Pushes manifests level by level: a node goes once everything it depends on is done;
    /// the top waits until nothing else is ready.
    fn push_all(&self, nodes: &[Node]) -> Result<()> {
        let mut done = vec![false; nodes.len()];
        let mut remaining = nodes.len();
        while remaining > 0 {
            let ready: Vec<usize> = (0..nodes.len())
                .filter(|&i| !done[i] && nodes[i].deps.iter().all(|&d| done[d]))
                .collect();
            let batch: Vec<usize> = if ready.iter().any(|&i| !nodes[i].top) {
                ready.into_iter().filter(|&i| !nodes[i].top).collect()
            } else {
                ready
            };
            if batch.is_empty() {
                // Content addressing makes index cycles impossible; this guards bad input.
                return Err(self.fail(Error::new(
                    ErrorKind::Loop,
                    "manifests depend on each other in a loop",
                )));
            }
            self.pool.install(|| {
                batch
                    .par_iter()
                    .with_max_len(1)
                    .try_for_each(|&i| self.push(&nodes[i]).map_err(|e| self.fail(e)))
            })?;
            for i in batch {
                done[i] = true;
                remaining -= 1;
            }
        }
        Ok(())
    }

    fn push(&self, node: &Node) -> Result<()> {
        self.check_abort()?;
        let force = self.opts.force_recursive;
        let mut puts: Vec<(Reference, bool)> = node
            .tags
            .iter()
            .filter(|(_, present)| !present || force)
            .map(|(r, _)| (r.clone(), false))
            .collect();
        // A tag put makes the manifest reachable by digest too.
        if node.tags.is_empty() {
            if let Some(child) = node.by_digest {
                if !node.exists || force {
                    puts.push((node.tgt.clone(), child));
                }
            }
        }
        if puts.is_empty() {
            (self.progress)(&Event::Skipped {
                kind: Kind::Manifest,
                digest: node.digest.clone(),
                size: node.size,
            });
            return Ok(());
        }
        let fetched;
        let m = match &node.manifest {
            Some(m) => m,
            None => {
                fetched = self.get(&node.src)?;
                &fetched
            }
        };
        for (r, child) in puts {
            self.tgt_scheme
                .manifest_put(&r, m, PutOpts { child })
                .with_context(|| format!("putting manifest {}", r.common_name()))?;
            if let Some(s) = &self.opts.seen {
                s.add(&node.tgt);
            }
            self.manifests.fetch_add(1, Ordering::SeqCst);
            (self.progress)(&Event::ManifestPushed {
                reference: r,
                digest: node.digest.clone(),
            });
        }
        Ok(())
    }
}
